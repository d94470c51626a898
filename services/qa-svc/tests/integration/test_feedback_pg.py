"""Complaint outcomes feed QA on PostgreSQL (QA-FEEDBACK): a re-check task, a violation on
the sanction ladder, a risk pick in the next weekly sample; once per ticket and cycle."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from qa_test_helpers import NOW, attempt, deliver, settings_for
from scoring_test_helpers import OPS, STARTS, WEEK, Bearer, staff
from sqlalchemy import select

from collect_common.clock import FrozenClock
from collect_common.events.codec import unwrap
from collect_common.events.complaint import ComplaintOutcomeRecorded
from collect_common.events.envelope import EventEnvelope
from collect_common.security.auth import Role
from collect_common.testing.apps import service_client
from qa_svc.adapters.scoring_tables import complaint_outcomes
from qa_svc.adapters.tables import sample_picks
from qa_svc.entrypoints.consumer import SUBSCRIBE, handlers
from qa_svc.main import create_app
from qa_svc.service_layer.live_rules import LiveRules

pytestmark = pytest.mark.postgres


def outcome(
    ticket: str,
    cycle: int = 1,
    agent: str | None = "agent-x",
    *,
    substantiated: bool = True,
    sanction: str | None = None,
) -> ComplaintOutcomeRecorded:
    return ComplaintOutcomeRecorded(
        ticket_id=ticket,
        cycle=cycle,
        case_id="case-9",
        agent_id=agent,
        substantiated=substantiated,
        remedies=["change_of_approach"],
        sanction_requested=sanction is not None,
        sanction_severity=sanction,  # type: ignore[arg-type]
        decided_at=NOW,
    )


async def _outbox_types(runtime: Any) -> list[tuple[str, str]]:
    box = runtime.outbox
    async with runtime.sessions() as s:
        rows = (await s.execute(select(box).order_by(box.c.id))).all()
    return [(r.event_type, unwrap(EventEnvelope.from_bytes(r.payload)).type_name) for r in rows]


async def test_a_substantiated_complaint_opens_a_recheck_and_a_requested_sanction_counts_once(
    pg_url: str, clock: FrozenClock
) -> None:
    assert "complaint.events" in SUBSCRIBE
    async with service_client(create_app, settings_for(pg_url), clock) as api:
        runtime: Any = api.app.state.runtime  # type: ignore[attr-defined]
        h = handlers(lambda: runtime.context_of(LiveRules), clock)
        people = await staff(api, clock)

        await deliver(runtime, h, outcome("T-1", sanction="serious"))
        # the same outcome again, as a new event (a re-emission): nothing more happens
        await deliver(runtime, h, outcome("T-1", sanction="serious"))

        tasks = []
        for who in people.values():
            r = await api.get("/v1/reviews", params={"kind": "recheck"}, headers=who)
            tasks += r.json()["items"]
        assert len(tasks) == 1
        task = tasks[0]
        assert (task["agent_id"], task["ticket_id"], task["cycle"], task["case_id"]) == (
            "agent-x",
            "T-1",
            1,
            "case-9",
        )
        assert task["status"] == "open" and task["assignee"] in people
        agent_view = await api.get(
            f"/v1/reviews/{task['task_id']}", headers=Bearer(clock, "agent-x", Role.AGENT)
        )
        assert agent_view.status_code == 200

        ladder = (await api.get("/v1/agents/agent-x/sanctions", headers=OPS)).json()
        assert [(s["sanction"], s["reason"]) for s in ladder["items"]] == [("fine", "serious")]
        assert await _outbox_types(runtime) == [
            ("qa.sanction_applied.v1", "qa.sanction_applied.v1")
        ]

        # the next investigation cycle of the same ticket is a new outcome: a second serious
        # violation suspends the agent
        clock.advance(timedelta(days=1))
        await deliver(runtime, h, outcome("T-1", cycle=2, sanction="serious"))
        ladder = (await api.get("/v1/agents/agent-x/sanctions", headers=OPS)).json()
        assert [s["sanction"] for s in ladder["items"]] == ["fine", "suspension"]
        assert ladder["suspended"] is True
        assert [t for _, t in await _outbox_types(runtime)][-1] == "qa.agent_suspended.v1"


async def test_outcomes_that_are_not_substantiated_or_name_no_agent_open_nothing(
    pg_url: str, clock: FrozenClock
) -> None:
    async with service_client(create_app, settings_for(pg_url), clock) as api:
        runtime: Any = api.app.state.runtime  # type: ignore[attr-defined]
        h = handlers(lambda: runtime.context_of(LiveRules), clock)
        await deliver(runtime, h, outcome("T-2", substantiated=False))
        await deliver(runtime, h, outcome("T-3", agent=None, sanction="minor"))
        # no pool yet: a re-check waits unassigned, then the next assignment hands it out
        await deliver(runtime, h, outcome("T-4", agent="agent-y", sanction="minor"))
        listed = (await api.get("/v1/reviews", headers=OPS)).json()["items"]
        assert [(t["ticket_id"], t["assignee"]) for t in listed] == [("T-4", None)]
        ladder = (await api.get("/v1/agents/agent-y/sanctions", headers=OPS)).json()
        assert [s["sanction"] for s in ladder["items"]] == ["warning"]

        qa = Bearer(clock, "qa-late")
        assert (await api.post("/v1/qa-staff/me", headers=qa)).status_code == 200
        r = await api.post("/v1/reviews/assign", headers=qa)
        assert r.json() == {"assigned": 1}
        mine = (await api.get("/v1/reviews", headers=qa)).json()["items"]
        assert [t["ticket_id"] for t in mine] == ["T-4"]
        async with runtime.sessions() as s:
            kept = (await s.execute(select(complaint_outcomes.c.ticket_id))).scalars().all()
        assert sorted(kept) == ["T-2", "T-3", "T-4"]


async def test_a_substantiated_complaint_makes_the_agent_a_risk_pick_of_the_next_sample(
    pg_url: str, clock: FrozenClock
) -> None:
    async with service_client(create_app, settings_for(pg_url), clock) as api:
        runtime: Any = api.app.state.runtime  # type: ignore[attr-defined]
        h = handlers(lambda: runtime.context_of(LiveRules), clock)
        qa = Bearer(clock, "qa-1")
        assert (
            await api.post("/v1/samples/commitments", json={"week": WEEK}, headers=qa)
        ).status_code == 201
        await deliver(runtime, h, outcome("T-9", agent="agent-c"))
        await deliver(runtime, h, outcome("T-10", agent="agent-d", substantiated=False))
        # the week: calls in the debtors' daytime (no alert, so no other risk agent)
        clock.set(STARTS + timedelta(hours=9))
        for i in range(40):
            agent = ("agent-c", "agent-d", "agent-e", "agent-f")[i % 4]
            at = STARTS + timedelta(hours=10, minutes=10 * i)
            await deliver(runtime, h, attempt(f"D-{uuid.uuid4().hex[:6]}", at, agent=agent))
        clock.set(STARTS + timedelta(days=7, hours=1))
        drawn = await api.post(f"/v1/samples/{WEEK}/draw", headers=qa)
        assert drawn.status_code == 200, drawn.text
        body = drawn.json()
        assert body["risk_ids"], "the complained-of agent's records are risk picks"
        async with runtime.sessions() as s:
            picks = (
                await s.execute(
                    select(sample_picks.c.agent_id, sample_picks.c.risk).where(
                        sample_picks.c.week == WEEK
                    )
                )
            ).all()
            used = dict(
                (
                    await s.execute(
                        select(complaint_outcomes.c.ticket_id, complaint_outcomes.c.sample_week)
                    )
                ).all()
            )
        risky = [p.agent_id for p in picks if p.risk]
        drawn_c = sum(1 for p in picks if not p.risk and p.agent_id == "agent-c")
        assert set(risky) == {"agent-c"}
        assert len(risky) == min(5, 10 - drawn_c)  # policy: 5 per risk agent, not redrawn
        assert used == {"T-9": WEEK, "T-10": None}  # used once; an unfounded one never
        # the auditor's verification covers the random part and still holds
        ok = (await api.get(f"/v1/samples/{WEEK}/verify", headers=qa)).json()
        assert ok["ok"] is True
