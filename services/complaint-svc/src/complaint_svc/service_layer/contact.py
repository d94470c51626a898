"""Complaints reported during a contact (COMP-CHANNELS, contact channel) and the read model
that links every ticket to its case, debtor and agent and to the debtor's recordings, SMS
and letters.

A complaint reported in a call opens one ticket per call: the consumer skips a redelivered
event (``processed_events``), and ``complaint_tickets.call_id`` is unique, so the same call
reported again under another event id opens nothing either. The call's recording is the
ticket's first evidence; the debtor's other recordings of the last
``evidence_recording_days`` follow (``open_ticket``).

An SMS sent and a letter dispatched, delivered or returned are kept as contact records
(ids and references only) and attached to the debtor's tickets (``domain.evidence``):
when one opens, and, to those not closed, when the record arrives.
"""

from __future__ import annotations

from datetime import datetime

from collect_common.db import UnitOfWork
from collect_common.events.contact import (
    ComplaintReported,
    LetterDelivered,
    LetterDispatched,
    LetterReturned,
    SmsSent,
)
from collect_common.events.types import CallCompleted, CaseAssigned, CaseImported
from complaint_svc.adapters.read_model import ReadModel, Recording
from complaint_svc.adapters.repository import TicketRepository
from complaint_svc.domain.evidence import ContactRecord, RecordKind
from complaint_svc.domain.model import Channel, ComplaintType, Evidence, Ticket
from complaint_svc.service_layer.tickets import (
    ComplaintContext,
    Intake,
    contact_recorded,
    open_ticket,
    recording_evidence,
)

UNKNOWN = "(unknown)"


def intake_of(event: ComplaintReported, now: datetime) -> Intake:
    """COMP-RECORD from the event: ids only (no names on the bus, SEC-PII); the handler
    completes the complainant's details when calling back, and sets the type."""
    evidence: tuple[Evidence, ...] = ()
    if event.recording_uri:
        evidence = (recording_evidence(event.recording_uri, event.call_id, now, event.reported_at),)
    return Intake(
        channel=Channel.CONTACT,
        type=ComplaintType.OTHER,
        complainant_name=UNKNOWN,
        complainant_contact=f"debtor {event.debtor_id}",
        content=(
            f"Complaint reported during call {event.call_id} "
            f"(agent {event.agent_id}) at {event.reported_at.isoformat()}"
        ),
        case_id=event.case_id,
        agent_id=event.agent_id,
        debtor_id=event.debtor_id,
        call_id=event.call_id,
        evidence=evidence,
    )


async def file_reported_complaint(
    ctx: ComplaintContext, uow: UnitOfWork, event: ComplaintReported, now: datetime
) -> tuple[Ticket, bool]:
    """The ticket of the call's complaint and whether it is new (False: filed before)."""
    repo = TicketRepository(uow.session)
    existing = await repo.id_by_call_id(event.call_id)
    if existing is not None:
        ticket = await repo.get(existing)
        assert ticket is not None
        return ticket, False
    if event.recording_uri:  # kept for the debtor's later tickets too
        await ReadModel(uow.session).add_recording(
            Recording(
                call_id=event.call_id,
                debtor_id=event.debtor_id,
                case_id=event.case_id,
                agent_id=event.agent_id,
                recording_uri=event.recording_uri,
                recorded_at=event.reported_at,
            )
        )
    return await open_ticket(ctx, uow, intake_of(event, now), now), True


async def case_imported(uow: UnitOfWork, event: CaseImported, now: datetime) -> None:
    await ReadModel(uow.session).case_seen(
        event.case_id, event.debtor_id, now, bank_id=event.bank_id
    )


async def case_assigned(uow: UnitOfWork, event: CaseAssigned, now: datetime) -> None:
    await ReadModel(uow.session).case_seen(
        event.case_id, event.debtor_id, now, agent_id=event.agent_id
    )


async def call_completed(uow: UnitOfWork, event: CallCompleted) -> None:
    """Keep the call's recording (if it was recorded) for the debtor's tickets."""
    if not event.recording_uri:
        return
    await ReadModel(uow.session).add_recording(
        Recording(
            call_id=event.contact_id,
            debtor_id=event.debtor_id,
            case_id=event.case_id,
            agent_id=event.agent_id,
            recording_uri=event.recording_uri,
            recorded_at=event.started_at,
        )
    )


LetterEvent = LetterDispatched | LetterDelivered | LetterReturned


def record_of(event: SmsSent | LetterEvent) -> ContactRecord:
    """The contact record an SMS or letter event tells of: ids and references only."""
    if isinstance(event, SmsSent):
        return ContactRecord(
            kind=RecordKind.SMS,
            reference=event.message_id,
            debtor_id=event.debtor_id,
            case_id=event.case_id,
            agent_id=event.agent_id,
            occurred_at=event.sent_at,
        )
    if isinstance(event, LetterDispatched):
        kind, at, proof = RecordKind.LETTER_DISPATCHED, event.dispatched_at, None
    elif isinstance(event, LetterDelivered):
        kind, at, proof = RecordKind.LETTER_DELIVERED, event.delivered_at, event.proof_ref
    else:
        kind, at, proof = RecordKind.LETTER_RETURNED, event.returned_at, event.proof_ref
    return ContactRecord(
        kind=kind,
        reference=event.letter_id,
        debtor_id=event.debtor_id,
        case_id=event.case_id,
        agent_id=None,
        occurred_at=at,
        proof_ref=proof,
    )


async def contact_made(
    ctx: ComplaintContext, uow: UnitOfWork, event: SmsSent | LetterEvent, now: datetime
) -> list[str]:
    """COMP-SLA-EVIDENCE: keep the SMS or letter event; attach it to the debtor's open
    tickets. Returns the tickets it was attached to."""
    return await contact_recorded(ctx, uow, record_of(event), now)
