"""Corrective actions (COMP-STATS) on PostgreSQL: from a ticket or a finding, tracked to done,
who changed what, the overdue filter and gauge under a moved clock."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from collect_common.clock import FrozenClock
from collect_common.security.auth import Role, TokenService
from collect_common.settings import DEV_TOKEN_SECRET
from complaint_svc.service_layer.stats import overdue_gauge

pytestmark = pytest.mark.postgres


def auth(clock: FrozenClock, role: Role, subject: str) -> dict[str, str]:
    token = TokenService(DEV_TOKEN_SECRET, "collect-platform", clock).issue(subject, [role])
    return {"Authorization": f"Bearer {token}"}


def iso(at: datetime) -> str:
    return at.isoformat()


async def a_ticket(api: httpx.AsyncClient, clock: FrozenClock) -> str:
    body = {
        "type": "attitude",
        "complainant_name": "张三",
        "complainant_contact": "13812345678",
        "content": "rude",
    }
    r = await api.post("/v1/tickets", json=body, headers=auth(clock, Role.COMPLAINT, "h-1"))
    assert r.status_code == 201, r.text
    ticket_id: str = r.json()["id"]
    return ticket_id


async def create(
    api: httpx.AsyncClient, clock: FrozenClock, days: float, **source: Any
) -> dict[str, Any]:
    body = {
        "description": "retrain agent 7 on call conduct",
        "owner": "lead-1",
        "deadline": iso(clock.now() + timedelta(days=days)),
        **source,
    }
    r = await api.post("/v1/corrective-actions", json=body, headers=auth(clock, Role.OPS, "ops-1"))
    assert r.status_code == 201, r.text
    created: dict[str, Any] = r.json()
    return created


def overdue_metric(text: str) -> str | None:
    for line in text.splitlines():
        if line.startswith('complaint_corrective_actions_overdue{service="complaint-svc"}'):
            return line.rsplit(" ", 1)[1]
    return None


async def test_an_action_from_a_ticket_is_tracked_to_done_with_who_changed_what(
    api: httpx.AsyncClient, clock: FrozenClock
) -> None:
    ticket_id = await a_ticket(api, clock)
    action = await create(api, clock, 7, ticket_id=ticket_id)
    assert (action["source"], action["ticket_id"], action["status"]) == (
        "ticket",
        ticket_id,
        "open",
    )
    assert action["overdue"] is False and action["created_by"] == "ops-1"
    aid = action["id"]

    clock.advance(timedelta(hours=1))
    lead = auth(clock, Role.COMPLAINT, "lead-1")
    r = await api.patch(
        f"/v1/corrective-actions/{aid}",
        json={"status": "in_progress", "owner": "lead-2"},
        headers=lead,
    )
    assert r.status_code == 200, r.text
    clock.advance(timedelta(hours=1))
    r = await api.patch(
        f"/v1/corrective-actions/{aid}",
        json={"status": "done"},
        headers=auth(clock, Role.COMPLAINT, "lead-2"),
    )
    assert r.status_code == 200, r.text
    done = r.json()
    assert done["status"] == "done" and done["done_at"] == "2026-11-28T04:00:00Z"
    assert [(h["kind"], h["actor"], h["changes"]) for h in done["history"]] == [
        (
            "created",
            "ops-1",
            {
                "status": [None, "open"],
                "owner": [None, "lead-1"],
                "deadline": [None, "2026-12-05T02:00:00+00:00"],
            },
        ),
        ("updated", "lead-1", {"status": ["open", "in_progress"], "owner": ["lead-1", "lead-2"]}),
        ("updated", "lead-2", {"status": ["in_progress", "done"]}),
    ]
    assert [h["at"] for h in done["history"]] == [
        "2026-11-28T02:00:00Z",
        "2026-11-28T03:00:00Z",
        "2026-11-28T04:00:00Z",
    ]
    # done is final; the auditor reads it all but changes nothing
    again = await api.patch(f"/v1/corrective-actions/{aid}", json={"owner": "lead-3"}, headers=lead)
    assert again.status_code == 409
    assert (again.json()["rule"], again.json()["current_status"]) == ("COMP-STATS", "done")
    auditor = auth(clock, Role.AUDITOR, "bank-auditor")
    assert (await api.get(f"/v1/corrective-actions/{aid}", headers=auditor)).status_code == 200
    denied = await api.post(
        "/v1/corrective-actions",
        json={
            "ticket_id": ticket_id,
            "description": "x",
            "owner": "y",
            "deadline": iso(clock.now() + timedelta(days=1)),
        },
        headers=auditor,
    )
    assert denied.status_code == 403


async def test_an_action_from_a_finding_and_the_refusals_naming_field_and_rule(
    api: httpx.AsyncClient, clock: FrozenClock
) -> None:
    finding = {"report": "weekly", "period": "2026-W48", "dimension": "type", "key": "attitude"}
    action = await create(api, clock, 3, finding=finding)
    assert action["source"] == "finding" and action["ticket_id"] is None
    assert action["finding"] == {**finding, "observation": None}

    ops = auth(clock, Role.OPS, "ops-1")
    base = {"description": "d", "owner": "o", "deadline": iso(clock.now() + timedelta(days=1))}
    neither = await api.post("/v1/corrective-actions", json=base, headers=ops)
    assert neither.status_code == 422
    unknown = await api.post(
        "/v1/corrective-actions", json={**base, "ticket_id": "no-such-ticket"}, headers=ops
    )
    assert unknown.status_code == 422
    assert (unknown.json()["field"], unknown.json()["rule"]) == ("ticket_id", "COMP-STATS")
    past = await api.post(
        "/v1/corrective-actions",
        json={**base, "finding": finding, "deadline": iso(clock.now() - timedelta(hours=1))},
        headers=ops,
    )
    assert past.status_code == 422
    assert (past.json()["field"], past.json()["rule"]) == ("deadline", "COMP-STATS")
    skip = await api.patch(
        f"/v1/corrective-actions/{action['id']}", json={"status": "done"}, headers=ops
    )
    assert skip.status_code == 409 and skip.json()["current_status"] == "open"
    missing = await api.get("/v1/corrective-actions/nope", headers=ops)
    assert missing.status_code == 404


async def test_a_retried_create_with_the_same_key_opens_one_action(
    api: httpx.AsyncClient, clock: FrozenClock
) -> None:
    ops = {**auth(clock, Role.OPS, "ops-1"), "Idempotency-Key": "ca-2026-11-28-001"}
    body = {
        "finding": {"report": "sla", "period": "2026-11-01..2026-11-30", "dimension": "step"},
        "description": "staff the call-back queue at noon",
        "owner": "lead-1",
        "deadline": iso(clock.now() + timedelta(days=2)),
    }
    first = await api.post("/v1/corrective-actions", json=body, headers=ops)
    second = await api.post("/v1/corrective-actions", json=body, headers=ops)
    assert first.status_code == second.status_code == 201
    assert first.json()["id"] == second.json()["id"]
    listed = await api.get("/v1/corrective-actions", headers=ops)
    assert len(listed.json()["items"]) == 1


async def test_overdue_filter_and_gauge_follow_the_clock_and_done(
    api: httpx.AsyncClient, clock: FrozenClock
) -> None:
    finding = {"report": "monthly", "period": "2026-11", "dimension": "region", "key": "310000"}
    soon = await create(api, clock, 1, finding=finding)
    later = await create(api, clock, 3, finding=finding)
    ops = auth(clock, Role.OPS, "ops-1")
    r = await api.get("/v1/corrective-actions?overdue=true", headers=ops)
    assert r.json()["items"] == []
    gauge = overdue_gauge(api.app.state.runtime)  # type: ignore[attr-defined]
    assert await gauge.refresh() == 0

    clock.advance(timedelta(days=2))
    ops = auth(clock, Role.OPS, "ops-1")
    r = await api.get("/v1/corrective-actions?overdue=true", headers=ops)
    assert [(a["id"], a["overdue"]) for a in r.json()["items"]] == [(soon["id"], True)]
    r = await api.get("/v1/corrective-actions?overdue=false", headers=ops)
    assert [(a["id"], a["overdue"]) for a in r.json()["items"]] == [(later["id"], False)]
    assert await gauge.refresh() == 1
    metrics = await api.get("/metrics")
    assert overdue_metric(metrics.text) == "1.0"

    for status in ("in_progress", "done"):
        r = await api.patch(
            f"/v1/corrective-actions/{soon['id']}", json={"status": status}, headers=ops
        )
        assert r.status_code == 200, r.text
    assert overdue_metric((await api.get("/metrics")).text) == "0.0"  # refreshed on write
    r = await api.get("/v1/corrective-actions?overdue=true", headers=ops)
    assert r.json()["items"] == []


async def test_the_listing_pages_and_filters_by_status_owner_and_ticket(
    api: httpx.AsyncClient, clock: FrozenClock
) -> None:
    ticket_id = await a_ticket(api, clock)
    made = []
    for _ in range(3):
        made.append((await create(api, clock, 5, ticket_id=ticket_id))["id"])
        clock.advance(timedelta(minutes=1))
    made.append(
        (await create(api, clock, 5, finding={"report": "weekly", "period": "2026-W48"}))["id"]
    )
    ops = auth(clock, Role.OPS, "ops-1")
    first = await api.get("/v1/corrective-actions?limit=2", headers=ops)
    second = await api.get(
        f"/v1/corrective-actions?limit=2&cursor={first.json()['next_cursor']}", headers=ops
    )
    assert [a["id"] for a in first.json()["items"] + second.json()["items"]] == made
    assert second.json()["next_cursor"] is None
    by_ticket = await api.get(f"/v1/corrective-actions?ticket_id={ticket_id}", headers=ops)
    assert [a["id"] for a in by_ticket.json()["items"]] == made[:3]
    await api.patch(
        f"/v1/corrective-actions/{made[1]}",
        json={"status": "in_progress", "owner": "lead-9"},
        headers=ops,
    )
    busy = await api.get("/v1/corrective-actions?status=in_progress", headers=ops)
    assert [a["id"] for a in busy.json()["items"]] == [made[1]]
    mine = await api.get("/v1/corrective-actions?owner=lead-9", headers=ops)
    assert [a["id"] for a in mine.json()["items"]] == [made[1]]
