"""The sanction ladder over the API on PostgreSQL (QA-SANCTION), the clock moved by hand."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import timedelta
from typing import Any

import httpx
import pytest
from qa_test_helpers import settings_for
from sqlalchemy import select

from collect_common.clock import FrozenClock
from collect_common.events.codec import unwrap
from collect_common.events.envelope import EventEnvelope
from collect_common.security.auth import Role, TokenService
from collect_common.settings import DEV_API_KEYS, DEV_TOKEN_SECRET
from collect_common.testing.apps import service_client
from qa_svc.main import create_app

pytestmark = pytest.mark.postgres
DAY = timedelta(days=1)


class _qa(Mapping[str, str]):
    """A QA specialist's headers, the token issued afresh at each request (the clock moves)."""

    def __init__(self, clock: FrozenClock) -> None:
        self._tokens = TokenService(DEV_TOKEN_SECRET, "collect-platform", clock)

    def __getitem__(self, name: str) -> str:
        if name != "Authorization":
            raise KeyError(name)
        return f"Bearer {self._tokens.issue('qa-1', [Role.QA])}"

    def __iter__(self) -> Iterator[str]:
        return iter(["Authorization"])

    def __len__(self) -> int:
        return 1


OPS = {"X-API-Key": DEV_API_KEYS["ops-dashboard"][1]}


async def _violate(
    api: httpx.AsyncClient, qa: Mapping[str, str], agent: str, severity: str, evidence: str
) -> dict[str, Any]:
    r = await api.post(
        f"/v1/agents/{agent}/violations",
        json={"severity": severity, "rule_id": "QA-QUIET", "evidence": evidence},
        headers=qa,
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


async def _outbox(api: httpx.AsyncClient) -> list[tuple[str, str, dict[str, Any]]]:
    runtime = api.app.state.runtime  # type: ignore[attr-defined]
    box = runtime.outbox
    async with runtime.sessions() as s:
        rows = (await s.execute(select(box).order_by(box.c.id))).all()
    out = []
    for row in rows:
        event = unwrap(EventEnvelope.from_bytes(row.payload))
        out.append((row.event_type, row.key, event.model_dump(mode="json")))
    return out


async def test_the_ladder_step_by_step_then_reinstatement_after_exam_and_retraining(
    pg_url: str, clock: FrozenClock
) -> None:
    agent = "agent-ladder"
    async with service_client(create_app, settings_for(pg_url), clock) as api:
        qa = _qa(clock)
        first = await _violate(api, qa, agent, "minor", "alert-1")
        assert first["sanction"]["sanction"] == "warning"
        assert first["sanction"]["reason"] == "first_minor"
        assert first["sanction"]["amount"] is None

        clock.advance(DAY)
        second = await _violate(api, qa, agent, "minor", "alert-2")
        assert second["sanction"]["sanction"] == "fine"
        assert second["sanction"]["amount"] == "200.00"

        clock.advance(DAY)
        third = await _violate(api, qa, agent, "serious", "contact-3")
        assert third["sanction"]["sanction"] == "fine"
        assert third["sanction"]["reason"] == "serious"

        clock.advance(DAY)
        fourth = await _violate(api, qa, agent, "minor", "alert-4")
        suspension = fourth["sanction"]
        assert suspension["sanction"] == "suspension"
        assert suspension["reason"] == "further_after_fines"
        suspended_at = clock.now()
        assert suspension["retraining_until"] == (suspended_at + 7 * DAY).isoformat().replace(
            "+00:00", "Z"
        )

        # while suspended, a violation is kept but adds no step
        clock.advance(timedelta(hours=1))
        kept = await _violate(api, qa, agent, "minor", "alert-5")
        assert kept["sanction"] is None

        # no exam: refused, naming the rule
        r = await api.post(f"/v1/agents/{agent}/reinstate", headers=qa)
        assert r.status_code == 409, r.text
        assert r.json()["rule"] == "QA-SANCTION"

        # a failed exam does not count
        clock.advance(2 * DAY)
        r = await api.post(
            f"/v1/agents/{agent}/exams",
            json={"passed": False, "score": "55.00", "exam_ref": "EX-1"},
            headers=qa,
        )
        assert r.status_code == 201, r.text
        # a passed one, but the retraining week is not over
        clock.advance(DAY)
        r = await api.post(
            f"/v1/agents/{agent}/exams",
            json={"passed": True, "score": "91.5", "exam_ref": "EX-2"},
            headers=qa,
        )
        assert r.status_code == 201, r.text
        assert r.json()["passed"] is True
        clock.set(suspended_at + 7 * DAY - timedelta(seconds=1))
        r = await api.post(f"/v1/agents/{agent}/reinstate", headers=qa)
        assert r.status_code == 409, r.text
        body = r.json()
        assert body["rule"] == "QA-SANCTION" and body["reason"] == "retraining-not-over"

        # the week is over: reinstated, with the passed exam
        clock.set(suspended_at + 7 * DAY)
        r = await api.post(f"/v1/agents/{agent}/reinstate", headers=OPS)
        assert r.status_code == 403  # writes are QA's
        r = await api.post(f"/v1/agents/{agent}/reinstate", headers=qa)
        assert r.status_code == 200, r.text
        assert r.json()["exam_ref"] == "EX-2"
        r = await api.post(f"/v1/agents/{agent}/reinstate", headers=qa)
        assert r.status_code == 409 and r.json()["reason"] == "not-suspended"

        r = await api.get(f"/v1/agents/{agent}/sanctions", headers=OPS)
        assert r.status_code == 200, r.text
        history = r.json()
        assert history["suspended"] is False
        assert [s["sanction"] for s in history["items"]] == [
            "warning",
            "fine",
            "fine",
            "suspension",
        ]
        assert history["items"][3]["reinstated_at"] is not None

        events = await _outbox(api)
        assert [(t, k) for t, k, _ in events] == [
            ("qa.sanction_applied.v1", agent),
            ("qa.sanction_applied.v1", agent),
            ("qa.sanction_applied.v1", agent),
            ("qa.sanction_applied.v1", agent),
            ("qa.agent_suspended.v1", agent),
            ("qa.agent_reinstated.v1", agent),
        ]
        assert [e["sanction"] for t, _, e in events if t == "qa.sanction_applied.v1"] == [
            "warning",
            "fine",
            "fine",
            "suspension",
        ]
        assert events[1][2]["amount"] == "200.00"
        assert events[4][2]["rule_id"] == "QA-SANCTION"
        assert events[5][2]["exam_ref"] == "EX-2"


async def test_a_passed_exam_from_before_the_suspension_does_not_reinstate(
    pg_url: str, clock: FrozenClock
) -> None:
    agent = "agent-serious"
    async with service_client(create_app, settings_for(pg_url), clock) as api:
        qa = _qa(clock)
        r = await api.post(
            f"/v1/agents/{agent}/exams", json={"passed": True, "exam_ref": "OLD"}, headers=qa
        )
        assert r.status_code == 201
        clock.advance(DAY)
        assert (await _violate(api, qa, agent, "serious", "c-1"))["sanction"]["sanction"] == "fine"
        clock.advance(DAY)
        step = (await _violate(api, qa, agent, "serious", "c-2"))["sanction"]
        assert (step["sanction"], step["reason"]) == ("suspension", "repeated_serious")
        clock.advance(30 * DAY)  # retraining long over, but no exam since the suspension
        r = await api.post(f"/v1/agents/{agent}/reinstate", headers=qa)
        assert r.status_code == 409
        assert r.json()["rule"] == "QA-SANCTION" and r.json()["reason"] == "no-passed-exam"
        r = await api.get(f"/v1/agents/{agent}/sanctions", headers=qa)
        assert r.json()["suspended"] is True


async def test_minor_violations_outside_the_window_start_the_ladder_again(
    pg_url: str, clock: FrozenClock
) -> None:
    agent = "agent-window"
    async with service_client(create_app, settings_for(pg_url), clock) as api:
        qa = _qa(clock)
        assert (await _violate(api, qa, agent, "minor", "a"))["sanction"]["sanction"] == "warning"
        clock.advance(90 * DAY)  # the first one falls out of the 90-day window
        assert (await _violate(api, qa, agent, "minor", "b"))["sanction"]["sanction"] == "warning"
        clock.advance(DAY)
        assert (await _violate(api, qa, agent, "minor", "c"))["sanction"]["sanction"] == "fine"
        r = await api.get(f"/v1/agents/{agent}/sanctions")
        assert r.status_code == 401
