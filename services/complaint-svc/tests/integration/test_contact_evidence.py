"""The debtor's SMS and letters as a ticket's evidence (COMP-RECORD, COMP-SLA-EVIDENCE), and
``complaint.closed.v1`` when a ticket is closed: through the service's own handlers and API
on PostgreSQL (a HandlerContext over a real unit of work, as the consumer runs them)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from collect_common.bus.consumer import HandlerContext
from collect_common.events.catalogue import Event
from collect_common.events.codec import wrap
from collect_common.events.contact import (
    LetterDelivered,
    LetterDispatched,
    LetterReturned,
    SmsSent,
)
from collect_common.events.types import CaseImported
from complaint_svc.domain.handling import DEPARTMENTS
from complaint_svc.entrypoints.consumer import handlers

NOW = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)  # the conftest's clock start

pytestmark = pytest.mark.postgres


async def deliver(api: httpx.AsyncClient, event: Event) -> None:
    """Apply one event through its handler in a real unit of work, as the consumer does
    (each call under a new event id, as a redelivery from another producer run would be)."""
    app: Any = api._transport.app  # type: ignore[attr-defined]
    complaint_context = app.state.complaint_context
    envelope = wrap(event, source="/contact-svc", time=NOW)
    async with app.state.runtime.uow() as uow:
        ctx = HandlerContext(uow=uow, envelope=envelope, record=None)  # type: ignore[arg-type]
        await handlers(lambda: complaint_context)[event.type_name](event, ctx)
        await uow.commit()


async def rows(api: httpx.AsyncClient, query: str, **params: object) -> list[Any]:
    app: Any = api._transport.app  # type: ignore[attr-defined]
    async with app.state.runtime.engine.connect() as conn:
        return list((await conn.execute(text(query), params)).all())


def imported(case_id: str, debtor_id: str) -> CaseImported:
    return CaseImported(
        case_id=case_id,
        debtor_id=debtor_id,
        bank_id="bank-a",
        overdue_total=Decimal("5000.00"),
        overdue_since=datetime(2026, 8, 1).date(),
        bucket="M3",
        debtor_timezone="Asia/Shanghai",
    )


def sms(message_id: str, at: datetime, debtor_id: str = "debtor-1") -> SmsSent:
    return SmsSent(
        debtor_id=debtor_id,
        message_id=message_id,
        case_id="case-1",
        template_id="tpl-remind",
        template_version=2,
        filing_number="F-2026-001",
        agent_id="agent-7",
        text_sha256="0" * 64,
        provider="sandbox",
        provider_id=f"p-{message_id}",
        sent_at=at,
    )


def dispatched(letter_id: str, at: datetime) -> LetterDispatched:
    return LetterDispatched(
        debtor_id="debtor-1",
        case_id="case-1",
        letter_id=letter_id,
        contact_id=f"contact-{letter_id}",
        template_id="tpl-letter",
        template_version=1,
        approval_number="BANK-A-7",
        text_sha256="1" * 64,
        carrier="registered_mail",
        tracking_number=f"RR{letter_id}CN",
        dispatched_at=at,
    )


def delivered(letter_id: str, at: datetime) -> LetterDelivered:
    return LetterDelivered(
        debtor_id="debtor-1",
        case_id="case-1",
        letter_id=letter_id,
        carrier="registered_mail",
        tracking_number=f"RR{letter_id}CN",
        proof_ref=f"receipt-{letter_id}",
        delivered_at=at,
    )


async def open_hotline_ticket(api: httpx.AsyncClient) -> dict[str, Any]:
    r = await api.post(
        "/v1/tickets",
        json={
            "type": "frequency",
            "complainant_name": "张三",
            "complainant_contact": "13812345678",
            "content": "Too many messages and letters.",
            "case_id": "case-1",
        },
    )
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


async def the_ticket(api: httpx.AsyncClient, tid: str) -> dict[str, Any]:
    r = await api.get(f"/v1/tickets/{tid}")
    assert r.status_code == 200
    body: dict[str, Any] = r.json()
    return body


def records(ticket: dict[str, Any]) -> list[tuple[str, str, str, str | None]]:
    """The ticket's SMS and letter evidence as the view shows it: kind, reference, time,
    receipt."""
    return [
        (e["kind"], e["reference"], e["occurred_at"], e["proof_ref"])
        for e in ticket["evidence"]
        if e["reference"] is not None
    ]


async def close(api: httpx.AsyncClient, tid: str) -> None:
    """The whole chain to the complainant's satisfaction (the ticket's final state)."""
    for step in ("contact", "verify", "evidence", "investigate"):
        r = await api.post(f"/v1/tickets/{tid}/steps/{step}/complete")
        assert r.status_code == 200, r.text
    for department in DEPARTMENTS:
        r = await api.post(
            f"/v1/tickets/{tid}/findings", json={"department": department, "text": "checked"}
        )
        assert r.status_code == 201, r.text
    r = await api.post(f"/v1/tickets/{tid}/outcome", json={"substantiated": False})
    assert r.status_code == 200, r.text
    assert (await api.post(f"/v1/tickets/{tid}/steps/resolve/complete")).status_code == 200
    r = await api.post(f"/v1/tickets/{tid}/followup", json={"satisfied": True})
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "closed"


async def test_a_new_ticket_holds_the_debtors_recent_sms_and_letters(
    api: httpx.AsyncClient,
) -> None:
    await deliver(api, imported("case-1", "debtor-1"))
    await deliver(api, sms("m-recent", NOW - timedelta(days=2)))
    await deliver(api, sms("m-old", NOW - timedelta(days=31)))  # before the 30 days
    await deliver(api, sms("m-other", NOW - timedelta(days=1), debtor_id="debtor-2"))
    await deliver(api, dispatched("l-1", NOW - timedelta(days=9)))
    await deliver(api, delivered("l-1", NOW - timedelta(days=6)))
    t = await open_hotline_ticket(api)
    assert t["debtor_id"] == "debtor-1"
    assert records(t) == [
        ("letter_dispatched", "l-1", "2026-11-19T02:00:00Z", None),
        ("letter_delivered", "l-1", "2026-11-22T02:00:00Z", "receipt-l-1"),
        ("sms", "m-recent", "2026-11-26T02:00:00Z", None),
    ]
    assert records(await the_ticket(api, t["id"])) == records(t)
    # ids and references only: neither the text (nor its hash) nor the address is kept
    kept = await rows(api, "SELECT * FROM complaint_contact_records ORDER BY reference")
    assert len(kept) == 5
    assert set(kept[0]._fields) == {
        "kind",
        "reference",
        "debtor_id",
        "case_id",
        "agent_id",
        "occurred_at",
        "proof_ref",
    }


async def test_an_sms_or_letter_arriving_is_attached_to_the_open_ticket_once(
    api: httpx.AsyncClient,
) -> None:
    await deliver(api, imported("case-1", "debtor-1"))
    await deliver(api, imported("case-2", "debtor-2"))
    t = await open_hotline_ticket(api)
    assert records(t) == []
    later = NOW + timedelta(hours=1)
    await deliver(api, sms("m-1", later))
    await deliver(api, sms("m-1", later))  # redelivered under another event id
    await deliver(api, dispatched("l-1", later))
    returned = LetterReturned(
        debtor_id="debtor-1",
        case_id="case-1",
        letter_id="l-1",
        carrier="registered_mail",
        tracking_number="RRl-1CN",
        reason="unknown_address",
        proof_ref="slip-9",
        returned_at=later + timedelta(days=3),
    )
    await deliver(api, returned)
    await deliver(api, returned.model_copy())
    await deliver(api, sms("m-2", later, debtor_id="debtor-2"))  # another debtor's
    assert records(await the_ticket(api, t["id"])) == [
        ("letter_dispatched", "l-1", "2026-11-28T03:00:00Z", None),  # at the same instant:
        ("sms", "m-1", "2026-11-28T03:00:00Z", None),  # by kind
        ("letter_returned", "l-1", "2026-12-01T03:00:00Z", "slip-9"),
    ]
    count = await rows(
        api, "SELECT count(*) FROM complaint_evidence WHERE ticket_id = :t", t=t["id"]
    )
    assert count[0][0] == 3


async def test_a_closed_ticket_gains_nothing_and_emits_complaint_closed(
    api: httpx.AsyncClient,
) -> None:
    await deliver(api, imported("case-1", "debtor-1"))
    first = await open_hotline_ticket(api)
    await close(api, first["id"])
    payloads = await rows(
        api,
        "SELECT key, payload FROM outbox WHERE event_type = 'complaint.closed.v1'",
    )
    assert len(payloads) == 1 and payloads[0][0] == first["id"]
    data = json.loads(bytes(payloads[0][1]))["data"]
    assert data == {
        "ticket_id": first["id"],
        "case_id": "case-1",
        "debtor_id": "debtor-1",
        "closed_at": "2026-11-28T02:00:00Z",
    }
    await deliver(api, sms("m-after", NOW + timedelta(minutes=5)))
    assert records(await the_ticket(api, first["id"])) == []
    # the debtor's next ticket holds it from its opening on
    second = await open_hotline_ticket(api)
    assert [r[1] for r in records(second)] == ["m-after"]
