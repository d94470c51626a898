"""Filing a complaint e-mail (COMP-CHANNELS): one ticket per message, malformed ones for triage.

The Message-ID is unique on ``complaint_tickets.message_id``: the same message forwarded
twice files one ticket (the second answer is the first ticket, replayed). A message with
no Message-ID is keyed by the SHA-256 of its raw bytes, so an identical resend is also
filed once.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from collect_common.db import UnitOfWork
from complaint_svc.adapters.repository import TicketRepository
from complaint_svc.domain.mail import ParsedMail
from complaint_svc.domain.model import Channel, ComplaintType, Evidence, Ticket
from complaint_svc.service_layer.tickets import ComplaintContext, Intake, open_ticket

UNKNOWN = "(unknown)"


def intake_of(mail: ParsedMail, now: datetime) -> Intake:
    """COMP-RECORD from a parsed message: name and phone from the subject, the sender's
    address as the contact, the text as the content, the message and its attachments as
    evidence (names, sizes, SHA-256)."""
    evidence = [
        Evidence(
            id=str(uuid.uuid4()),
            kind="email",
            name="message.eml",
            content_type="message/rfc822",
            size_bytes=mail.raw_size,
            sha256=mail.raw_sha256,
            added_at=now,
        )
    ]
    evidence += [
        Evidence(
            id=str(uuid.uuid4()),
            kind="attachment",
            name=a.name,
            content_type=a.content_type,
            size_bytes=a.size_bytes,
            sha256=a.sha256,
            added_at=now,
        )
        for a in mail.attachments
    ]
    return Intake(
        channel=Channel.EMAIL,
        type=ComplaintType.OTHER,  # the handler sets the type at triage/verification
        complainant_name=mail.name or UNKNOWN,
        complainant_contact=mail.sender or mail.phone or UNKNOWN,
        complainant_phone=mail.phone,
        content=mail.content or UNKNOWN,
        message_id=mail.message_id,
        triage_reasons=tuple(mail.triage_reasons),
        evidence=tuple(evidence),
    )


async def file_mail(
    ctx: ComplaintContext, uow: UnitOfWork, mail: ParsedMail, now: datetime
) -> tuple[Ticket, bool]:
    """The ticket for ``mail`` and whether it is new (False: the message was filed before)."""
    repo = TicketRepository(uow.session)
    existing = await repo.id_by_message_id(mail.message_id)
    if existing is not None:
        ticket = await repo.get(existing)
        assert ticket is not None
        return ticket, False
    return await open_ticket(ctx, uow, intake_of(mail, now), now), True


async def filed_ticket(uow: UnitOfWork, message_id: str) -> Ticket | None:
    repo = TicketRepository(uow.session)
    existing = await repo.id_by_message_id(message_id)
    return None if existing is None else await repo.get(existing)
