"""Complaints reported during a contact, and the read model, through the service's own
handlers on PostgreSQL (a HandlerContext over a real unit of work, as the consumer runs them)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from collect_common.bus.consumer import HandlerContext
from collect_common.events.catalogue import Event
from collect_common.events.codec import wrap
from collect_common.events.contact import ComplaintReported
from collect_common.events.types import CallCompleted, CaseAssigned, CaseImported
from complaint_svc.entrypoints.consumer import SUBSCRIBE, handlers

NOW = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)  # the conftest's clock start

pytestmark = pytest.mark.postgres


async def deliver(api: httpx.AsyncClient, event: Event) -> None:
    """Apply one event through its handler in a real unit of work, as the consumer does."""
    app: Any = api._transport.app  # type: ignore[attr-defined]
    runtime = app.state.runtime
    complaint_context = app.state.complaint_context
    envelope = wrap(event, source="/test", time=NOW)
    async with runtime.uow() as uow:
        ctx = HandlerContext(uow=uow, envelope=envelope, record=None)  # type: ignore[arg-type]
        await handlers(lambda: complaint_context)[event.type_name](event, ctx)
        await uow.commit()


async def rows(api: httpx.AsyncClient, query: str, **params: object) -> list[Any]:
    app: Any = api._transport.app  # type: ignore[attr-defined]
    async with app.state.runtime.engine.connect() as conn:
        return list((await conn.execute(text(query), params)).all())


def reported(call_id: str = "call-1", uri: str | None = "s3://rec/call-1.wav") -> ComplaintReported:
    return ComplaintReported(
        debtor_id="debtor-1",
        case_id="case-1",
        call_id=call_id,
        agent_id="agent-7",
        recording_uri=uri,
        reported_at=NOW - timedelta(minutes=1),
    )


def imported(case_id: str = "case-1", debtor_id: str = "debtor-1") -> CaseImported:
    return CaseImported(
        case_id=case_id,
        debtor_id=debtor_id,
        bank_id="bank-a",
        overdue_total=Decimal("5000.00"),
        overdue_since=datetime(2026, 8, 1).date(),
        bucket="M3",
        debtor_timezone="Asia/Shanghai",
    )


def completed(debtor_id: str, days_ago: int, uri: str | None) -> CallCompleted:
    return CallCompleted(
        debtor_id=debtor_id,
        case_id="case-1",
        contact_id=uuid.uuid4().hex,
        agent_id="agent-7",
        started_at=NOW - timedelta(days=days_ago),
        duration_seconds=120,
        disposition="answered",
        recording_uri=uri,
    )


async def the_ticket(api: httpx.AsyncClient, call_id: str) -> dict[str, Any]:
    found = await rows(api, "SELECT id FROM complaint_tickets WHERE call_id = :c", c=call_id)
    assert len(found) == 1
    r = await api.get(f"/v1/tickets/{found[0][0]}")
    assert r.status_code == 200
    body: dict[str, Any] = r.json()
    return body


def test_the_service_subscribes_to_case_and_contact_events() -> None:
    assert set(SUBSCRIBE) == {"case.events", "contact.events"}


async def test_a_reported_complaint_opens_a_linked_ticket_with_its_recording(
    api: httpx.AsyncClient,
) -> None:
    await deliver(api, reported())
    t = await the_ticket(api, "call-1")
    assert (t["channel"], t["type"], t["state"]) == ("contact", "other", "received")
    assert (t["case_id"], t["debtor_id"], t["agent_id"], t["call_id"]) == (
        "case-1",
        "debtor-1",
        "agent-7",
        "call-1",
    )
    assert [(e["kind"], e["recording_uri"], e["call_id"]) for e in t["evidence"]] == [
        ("recording", "s3://rec/call-1.wav", "call-1")
    ]
    # the normal SLA chain: every step from acceptance runs, with its timers
    assert [s["status"] for s in t["steps"]] == ["running"] * 5 + ["not_started"]
    assert t["steps"][0]["deadline"] == "2026-11-28T02:10:00Z"
    timers = await rows(api, "SELECT count(*) FROM timers WHERE subject = :t", t=t["id"])
    assert timers[0][0] == 15
    opened = await rows(api, "SELECT count(*) FROM outbox WHERE event_type = 'complaint.opened.v1'")
    assert opened[0][0] == 1


async def test_the_same_call_reported_twice_opens_one_ticket(api: httpx.AsyncClient) -> None:
    await deliver(api, reported())
    await deliver(api, reported())  # another event id, the same call
    assert (await rows(api, "SELECT count(*) FROM complaint_tickets"))[0][0] == 1
    assert (await rows(api, "SELECT count(*) FROM complaint_evidence"))[0][0] == 1


async def test_without_a_recording_the_ticket_is_still_opened(api: httpx.AsyncClient) -> None:
    await deliver(api, reported(call_id="call-2", uri=None))
    t = await the_ticket(api, "call-2")
    assert t["evidence"] == []


async def test_the_debtors_recent_recordings_are_attached(api: httpx.AsyncClient) -> None:
    await deliver(api, imported())
    await deliver(
        api,
        CaseAssigned(case_id="case-1", debtor_id="debtor-1", agent_id="agent-9", assigned_at=NOW),
    )
    await deliver(api, completed("debtor-1", 10, "s3://rec/recent.wav"))
    await deliver(api, completed("debtor-1", 40, "s3://rec/old.wav"))  # beyond 30 days
    await deliver(api, completed("debtor-1", 1, None))  # not recorded
    await deliver(api, completed("debtor-2", 1, "s3://rec/other.wav"))  # another debtor
    await deliver(api, reported())
    t = await the_ticket(api, "call-1")
    assert sorted(e["recording_uri"] for e in t["evidence"]) == [
        "s3://rec/call-1.wav",
        "s3://rec/recent.wav",
    ]
    known = await rows(
        api,
        "SELECT debtor_id, bank_id, agent_id FROM complaint_known_cases WHERE case_id = 'case-1'",
    )
    assert known == [("debtor-1", "bank-a", "agent-9")]


async def test_a_hotline_ticket_on_a_known_case_is_linked_through_the_read_model(
    api: httpx.AsyncClient,
) -> None:
    await deliver(api, imported())
    await deliver(
        api,
        CaseAssigned(case_id="case-1", debtor_id="debtor-1", agent_id="agent-9", assigned_at=NOW),
    )
    await deliver(api, completed("debtor-1", 3, "s3://rec/recent.wav"))
    r = await api.post(
        "/v1/tickets",
        json={
            "type": "attitude",
            "complainant_name": "张三",
            "complainant_contact": "13812345678",
            "content": "The agent was rude on the phone.",
            "case_id": "case-1",
        },
    )
    assert r.status_code == 201, r.text
    t = r.json()
    assert (t["debtor_id"], t["agent_id"]) == ("debtor-1", "agent-9")
    assert [e["recording_uri"] for e in t["evidence"]] == ["s3://rec/recent.wav"]
