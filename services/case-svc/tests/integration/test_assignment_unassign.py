"""Taking cases from agents (ops, QA suspension) over PostgreSQL: CaseUnassigned and
CaseAssigned are recorded consistently, and every hand-over is in the audit trail."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from case_svc.entrypoints.qa_handlers import QA_HANDLERS
from collect_common.bus.consumer import HandlerContext
from collect_common.clock import FrozenClock
from collect_common.events.codec import wrap
from collect_common.events.types import AgentSuspended
from collect_common.settings import DEV_API_KEYS

pytestmark = pytest.mark.postgres

BANK = {"X-API-Key": DEV_API_KEYS["bank-core"][1]}
OPS = {"X-API-Key": DEV_API_KEYS["ops-dashboard"][1]}
AUDITOR = {"X-API-Key": DEV_API_KEYS["bank-auditor"][1]}


def account(contract: str) -> dict[str, object]:
    return {
        "contract_no": contract,
        "name": "张三",
        "national_id": "11010519491231002X",
        "phones": ["13812345678"],
        "principal": "1200.00",
        "overdue_since": "2026-11-10",
        "history": "good",
    }


async def _cases(api: httpx.AsyncClient, *contracts: str) -> list[str]:
    r = await api.post("/v1/accounts/import", json={"accounts": [account(c) for c in contracts]})
    assert r.status_code == 200, r.text
    return [str(row["case_id"]) for row in r.json()["rows"]]


async def _agent(api: httpx.AsyncClient, agent_id: str, team: str, capacity: int = 5) -> None:
    body = {"team_id": team, "skills": ["gentle"], "capacity": capacity}
    r = await api.put(f"/v1/agents/{agent_id}", json=body, headers=OPS)
    assert r.status_code == 200, r.text


async def _assign(api: httpx.AsyncClient, case_id: str, agent_id: str) -> httpx.Response:
    return await api.post(f"/v1/cases/{case_id}/assign", json={"agent_id": agent_id}, headers=OPS)


async def _events(api: httpx.AsyncClient, case_id: str) -> list[tuple[str, dict[str, Any]]]:
    runtime = api.app.state.runtime  # type: ignore[attr-defined]
    async with runtime.sessions() as s:
        rows = (
            await s.execute(
                text(
                    "SELECT event_type, payload FROM outbox WHERE key = :id "
                    "AND event_type IN ('case.assigned.v1', 'case.unassigned.v1') ORDER BY id"
                ),
                {"id": case_id},
            )
        ).all()
    return [(r.event_type, json.loads(r.payload)["data"]) for r in rows]


async def _trail(api: httpx.AsyncClient, case_id: str, **params: Any) -> dict[str, Any]:
    r = await api.get(f"/v1/cases/{case_id}/assignments", headers=AUDITOR, params=params)
    assert r.status_code == 200, r.text
    return dict(r.json())


async def test_ops_unassign_records_the_event_the_feed_and_the_trail(
    case_api: httpx.AsyncClient,
) -> None:
    (case_id,) = await _cases(case_api, "LN-U1")
    await _agent(case_api, "a-1", "team-1")
    assert (await _assign(case_api, case_id, "a-1")).status_code == 200

    r = await case_api.post(f"/v1/cases/{case_id}/unassign", headers=OPS)
    assert r.status_code == 200, r.text
    assert (r.json()["agent_id"], r.json()["team_id"]) == (None, None)
    again = await case_api.post(f"/v1/cases/{case_id}/unassign", headers=OPS)
    assert again.status_code == 200  # nothing to take: no second event

    events = await _events(case_api, case_id)
    assert [t for t, _ in events] == ["case.assigned.v1", "case.unassigned.v1"]
    gone = events[1][1]
    assert (gone["previous_agent_id"], gone["previous_team_id"], gone["reason"]) == (
        "a-1",
        "team-1",
        "ops",
    )
    feed = (await case_api.get("/v1/changes")).json()["items"]
    assert [c["change"] for c in feed if c["case_id"] == case_id][-1] == "case.unassigned.v1"
    trail = (await _trail(case_api, case_id))["items"]
    assert [(e["action"], e["agent_id"], e["previous_agent_id"], e["reason"]) for e in trail] == [
        ("assigned", "a-1", None, "ops"),
        ("unassigned", None, "a-1", "ops"),
    ]
    assert {e["actor"] for e in trail} == {"ops-dashboard"}
    loads = (await case_api.get("/v1/agents", headers=OPS)).json()["items"]
    assert loads[0]["load"] == 0


async def test_suspension_records_assigned_or_unassigned_for_each_case(
    case_api: httpx.AsyncClient, clock: FrozenClock
) -> None:
    first, second = await _cases(case_api, "LN-U2", "LN-U3")
    await _agent(case_api, "a-1", "team-1")
    for case_id in (first, second):
        assert (await _assign(case_api, case_id, "a-1")).status_code == 200
    await _agent(case_api, "a-2", "team-2", capacity=1)  # room for one of them

    event = AgentSuspended(
        agent_id="a-1", suspended_at=clock.now(), rule_id="QA-SANCTION", reason="repeated"
    )
    runtime = case_api.app.state.runtime  # type: ignore[attr-defined]
    async with runtime.uow() as uow:
        envelope = wrap(event, source="/qa-svc", time=clock.now())
        ctx = HandlerContext(uow=uow, envelope=envelope, record=None)  # type: ignore[arg-type]
        await QA_HANDLERS[event.type_name](event, ctx)
        await uow.commit()

    last = {case_id: (await _events(case_api, case_id))[-1] for case_id in (first, second)}
    kinds = sorted(t for t, _ in last.values())
    assert kinds == ["case.assigned.v1", "case.unassigned.v1"]  # a-2 had room for one
    for case_id, (kind, data) in last.items():
        if kind == "case.assigned.v1":
            assert (data["agent_id"], data["previous_agent_id"]) == ("a-2", "a-1")
        else:
            assert (data["previous_agent_id"], data["reason"], data["rule_id"]) == (
                "a-1",
                "agent_suspended",
                "QA-SANCTION",
            )
        entry = (await _trail(case_api, case_id))["items"][-1]
        assert (entry["action"], entry["reason"], entry["rule_id"], entry["actor"]) == (
            kind.split(".")[1],
            "agent_suspended",
            "QA-SANCTION",
            "qa-svc",
        )


async def test_a_settled_case_cannot_be_assigned_or_unassigned_409_naming_the_state(
    case_api: httpx.AsyncClient, clock: FrozenClock
) -> None:
    (case_id,) = await _cases(case_api, "LN-U4")
    await _agent(case_api, "a-1", "team-1")
    assert (await _assign(case_api, case_id, "a-1")).status_code == 200
    r = await case_api.post(
        f"/v1/cases/{case_id}/payments",
        json={"payment_id": "P-ALL", "amount": "1200.00", "paid_at": clock.now().isoformat()},
    )
    assert r.status_code == 201, r.text

    for path, body in (("unassign", None), ("assign", {"agent_id": "a-1"})):
        r = await case_api.post(f"/v1/cases/{case_id}/{path}", json=body, headers=OPS)
        assert r.status_code == 409, (path, r.text)
        assert r.json()["current_state"] == "settled"
        assert "case is settled" in r.json()["detail"]


async def test_the_trail_is_paginated_and_read_by_ops_and_auditors_only(
    case_api: httpx.AsyncClient,
) -> None:
    (case_id,) = await _cases(case_api, "LN-U5")
    for n in range(3):
        await _agent(case_api, f"a-{n}", "team-1")
        assert (await _assign(case_api, case_id, f"a-{n}")).status_code == 200
    first = await _trail(case_api, case_id, limit=2)
    assert [e["agent_id"] for e in first["items"]] == ["a-0", "a-1"]
    rest = await _trail(case_api, case_id, limit=2, cursor=first["next_cursor"])
    assert [(e["agent_id"], e["previous_agent_id"]) for e in rest["items"]] == [("a-2", "a-1")]
    assert (await case_api.get(f"/v1/cases/{case_id}/assignments")).status_code == 403
    assert (await case_api.post(f"/v1/cases/{case_id}/unassign")).status_code == 403
