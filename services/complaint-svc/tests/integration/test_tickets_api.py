"""Complaint tickets on PostgreSQL with a moved clock: intake, SLA timers, pause, portal."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from collect_common.clock import FrozenClock

NOW = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)  # the conftest's clock start
Api = Callable[[], AbstractAsyncContextManager[httpx.AsyncClient]]

pytestmark = pytest.mark.postgres

COMPLAINT = {
    "type": "attitude",
    "complainant_name": "张三",
    "complainant_contact": "13812345678",
    "content": "The agent was rude on the phone.",
    "case_id": "case-42",
}


def at(value: str) -> datetime:
    return datetime.fromisoformat(value)


async def fire(api: httpx.AsyncClient) -> int:
    count: int = await api.app.state.runtime.scheduler.fire_due()  # type: ignore[attr-defined]
    return count


async def sql(api: httpx.AsyncClient, query: str, **params: Any) -> list[Any]:
    engine = api.app.state.runtime.engine  # type: ignore[attr-defined]
    async with engine.connect() as conn:
        return list((await conn.execute(text(query), params)).all())


async def event_types(api: httpx.AsyncClient, ticket_id: str) -> list[str]:
    rows = await sql(api, "SELECT event_type FROM outbox WHERE key = :k ORDER BY id", k=ticket_id)
    return [r[0] for r in rows]


def alerts(api: httpx.AsyncClient, step: str, level: str) -> float:
    registry = api.app.state.runtime.registry  # type: ignore[attr-defined]
    value = registry.get_sample_value(
        "complaint_sla_alerts_total",
        {"service": "complaint-svc", "step": step, "level": level},
    )
    return float(value or 0.0)


def step(ticket: dict[str, Any], name: str) -> dict[str, Any]:
    return next(s for s in ticket["steps"] if s["step"] == name)


async def open_ticket(api: httpx.AsyncClient, **headers: str) -> dict[str, Any]:
    r = await api.post("/v1/tickets", json=COMPLAINT, headers=headers)
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


async def test_contact_step_warns_at_50_and_75_percent_then_breaches(
    api: httpx.AsyncClient, clock: FrozenClock
) -> None:
    t = await open_ticket(api)
    tid = t["id"]
    assert t["state"] == "received" and t["channel"] == "hotline"
    assert at(step(t, "contact")["deadline"]) == NOW + timedelta(minutes=10)
    assert step(t, "contact")["rule"] == "COMP-SLA-CONTACT"
    assert at(step(t, "resolve")["deadline"]) == NOW + timedelta(hours=24)
    assert step(t, "followup")["status"] == "not_started"
    assert await fire(api) == 0

    clock.advance(timedelta(minutes=5))
    assert await fire(api) == 1
    got = (await api.get(f"/v1/tickets/{tid}")).json()
    assert step(got, "contact")["warned_first_at"] is not None
    assert step(got, "contact")["warned_second_at"] is None

    clock.advance(timedelta(minutes=2, seconds=30))
    assert await fire(api) == 1
    clock.advance(timedelta(minutes=2, seconds=30))
    assert await fire(api) == 1
    got = (await api.get(f"/v1/tickets/{tid}")).json()
    contact = step(got, "contact")
    assert contact["breached"] and contact["warned_second_at"] is not None
    assert step(got, "verify")["breached"] is False

    types = await event_types(api, tid)
    assert types == [
        "complaint.opened.v1",
        "complaint.sla_warning.v1",
        "complaint.sla_warning.v1",
        "complaint.sla_breached.v1",
    ]
    assert alerts(api, "contact", "warn_first") == 1
    assert alerts(api, "contact", "breach") == 1
    metrics = (await api.get("/metrics")).text
    assert 'complaint_sla_alerts_total{level="breach",service="complaint-svc",step="contact"}' in (
        metrics
    )


async def test_completing_a_step_stops_its_timers(
    api: httpx.AsyncClient, clock: FrozenClock
) -> None:
    t = await open_ticket(api)
    tid = t["id"]
    clock.advance(timedelta(minutes=6))
    assert await fire(api) == 1  # contact at 50 %
    r = await api.post(f"/v1/tickets/{tid}/steps/contact/complete")
    assert r.status_code == 200 and r.json()["state"] == "contacted"
    states = await sql(
        api, "SELECT timer_key, state FROM timers WHERE timer_key LIKE :k", k=f"%{tid}:contact:%"
    )
    assert {s for _, s in states} == {"fired", "cancelled"}
    clock.advance(timedelta(minutes=10))  # past the contact deadline
    assert await fire(api) == 0
    got = (await api.get(f"/v1/tickets/{tid}")).json()
    assert step(got, "contact")["status"] == "done"
    assert step(got, "contact")["breached"] is False
    assert alerts(api, "contact", "breach") == 0
    assert "complaint.step_completed.v1" in await event_types(api, tid)


async def test_a_timer_due_while_the_service_was_down_fires_on_the_next_tick(
    start_api: Api, clock: FrozenClock
) -> None:
    async with start_api() as api:
        tid = (await open_ticket(api))["id"]
    clock.advance(timedelta(minutes=11))  # nobody running: three contact timers fall due
    async with start_api() as api:
        assert await fire(api) == 3
        got = (await api.get(f"/v1/tickets/{tid}")).json()
        assert step(got, "contact")["breached"] is True


async def test_pause_and_resume_shift_the_deadlines(
    api: httpx.AsyncClient, clock: FrozenClock
) -> None:
    tid = (await open_ticket(api))["id"]
    clock.advance(timedelta(minutes=2))
    assert (await api.post(f"/v1/tickets/{tid}/steps/contact/complete")).status_code == 200
    clock.advance(timedelta(minutes=28))
    r = await api.post(f"/v1/tickets/{tid}/pause")
    assert r.status_code == 200 and r.json()["paused"] is True
    clock.advance(timedelta(hours=3))  # verify's deadline (2 h) passes while paused
    assert await fire(api) == 0
    assert (await api.post(f"/v1/tickets/{tid}/steps/verify/complete")).status_code == 409
    r = await api.post(f"/v1/tickets/{tid}/resume")
    assert r.status_code == 200
    got = r.json()
    assert got["paused"] is False and got["paused_seconds"] == 3 * 3600
    assert at(step(got, "verify")["deadline"]) == NOW + timedelta(hours=5)
    assert at(step(got, "contact")["deadline"]) == NOW + timedelta(minutes=10)
    due = await sql(
        api, "SELECT due_at FROM timers WHERE timer_key = :k", k=f"complaint:{tid}:verify:breach"
    )
    assert due[0][0] == NOW + timedelta(hours=5)
    # verify at 50 % was 1 h after acceptance; 30 min ran before the pause: 30 min left
    clock.advance(timedelta(minutes=29))
    assert await fire(api) == 0
    clock.advance(timedelta(minutes=1))
    assert await fire(api) == 1
    got = (await api.get(f"/v1/tickets/{tid}")).json()
    assert step(got, "verify")["warned_first_at"] is not None
    assert "complaint.resumed.v1" in await event_types(api, tid)


async def test_illegal_transitions_are_409_naming_the_state(api: httpx.AsyncClient) -> None:
    tid = (await open_ticket(api))["id"]
    r = await api.post(f"/v1/tickets/{tid}/steps/resolve/complete")
    assert r.status_code == 409
    problem = r.json()
    assert problem["current_state"] == "received"
    assert "received" in problem["detail"] and problem["rule"] == "COMP-LIFECYCLE"
    assert (await api.post(f"/v1/tickets/{tid}/resume")).status_code == 409
    assert (await api.post(f"/v1/tickets/{tid}/steps/nope/complete")).status_code == 404
    assert (await api.get("/v1/tickets/unknown")).status_code == 404


async def investigate_jointly(api: httpx.AsyncClient, tid: str) -> None:
    """COMP-JOINT: the three departments' findings, then the cycle's outcome."""
    for department in ("collection", "compliance", "customer_service"):
        r = await api.post(
            f"/v1/tickets/{tid}/findings", json={"department": department, "text": "checked"}
        )
        assert r.status_code == 201, r.text
    r = await api.post(f"/v1/tickets/{tid}/outcome", json={"substantiated": False})
    assert r.status_code == 200, r.text


async def test_resolve_starts_the_follow_up_clock(
    api: httpx.AsyncClient, clock: FrozenClock
) -> None:
    tid = (await open_ticket(api))["id"]
    for name in ("contact", "verify", "evidence", "investigate"):
        assert (await api.post(f"/v1/tickets/{tid}/steps/{name}/complete")).status_code == 200
    clock.advance(timedelta(hours=1))
    await investigate_jointly(api, tid)
    r = await api.post(f"/v1/tickets/{tid}/steps/resolve/complete")
    assert r.json()["state"] == "resolved"
    follow = step(r.json(), "followup")
    assert at(follow["deadline"]) == NOW + timedelta(hours=49)
    clock.advance(timedelta(hours=48))
    assert await fire(api) == 3  # follow-up at 50 %, 75 %, breach
    assert alerts(api, "followup", "breach") == 1


async def test_hotline_intake_is_idempotent_and_needs_the_complaint_role(
    api: httpx.AsyncClient,
) -> None:
    first = await open_ticket(api, **{"Idempotency-Key": "k-1"})
    again = await api.post("/v1/tickets", json=COMPLAINT, headers={"Idempotency-Key": "k-1"})
    assert again.status_code == 201 and again.json()["id"] == first["id"]
    assert (await sql(api, "SELECT count(*) FROM complaint_tickets"))[0][0] == 1
    anonymous = await api.post("/v1/tickets", json=COMPLAINT, headers={"Authorization": ""})
    assert anonymous.status_code == 401


async def test_personal_data_is_ciphertext_in_the_database(api: httpx.AsyncClient) -> None:
    tid = (await open_ticket(api))["id"]
    row = (
        await sql(
            api,
            "SELECT complainant_name, complainant_contact, content FROM complaint_tickets"
            " WHERE id = :id",
            id=tid,
        )
    )[0]
    assert "张三" not in row[0] and "13812345678" not in row[1] and "rude" not in row[2]
    got = (await api.get(f"/v1/tickets/{tid}")).json()
    assert got["complainant_name"] == "张三" and got["complainant_contact"] == "13812345678"
    payloads = await sql(api, "SELECT payload FROM outbox")
    assert all(b"13812345678" not in bytes(p[0]) for p in payloads)


async def test_portal_answers_with_the_number_and_expected_time(
    api: httpx.AsyncClient,
) -> None:
    public = {"Authorization": ""}
    r = await api.post("/v1/portal/complaints", json=COMPLAINT, headers=public)
    assert r.status_code == 201, r.text
    receipt = r.json()
    assert receipt["number"].startswith("CP-20261128-")
    assert at(receipt["expected_result_by"]) == NOW + timedelta(hours=24)
    assert receipt["expected_handling_hours"] == 24
    row = await sql(
        api, "SELECT channel, state FROM complaint_tickets WHERE number = :n", n=receipt["number"]
    )
    assert row == [("portal", "received")]
    timers = await sql(api, "SELECT count(*) FROM timers WHERE state = 'scheduled'")
    assert timers[0][0] == 15  # 5 steps from acceptance x (50 %, 75 %, breach)

    big = {**COMPLAINT, "content": "x" * 20000}
    r = await api.post("/v1/portal/complaints", json=big, headers=public)
    assert r.status_code == 413 and r.json()["rule"] == "COMP-CHANNELS"
    bad = await api.post("/v1/portal/complaints", json={"type": "nope"}, headers=public)
    assert bad.status_code == 422
