"""The debtor's SMS and letters as a complaint's evidence (COMP-RECORD, COMP-SLA-EVIDENCE).

contact-svc tells of every SMS sent and every letter dispatched, delivered or returned
(``contact.events``); complaint-svc keeps each as a *contact record*: its kind, its id in
contact-svc (the SMS's message id, the letter's id), the debtor, the case, when it
happened and, for a letter delivered or returned, the carrier's receipt. Ids and
references only: the text and the address stay in contact-svc.

A ticket of the debtor holds, as evidence, the debtor's records from
``evidence_contact_days`` before its acceptance on: those already kept are attached when
it opens, a later one when it arrives, as long as the ticket is not closed. Each record
is attached to a ticket once (by kind and reference), whatever is redelivered.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from complaint_svc.domain.model import FINAL_STATES, Evidence, Ticket


class RecordKind(StrEnum):
    SMS = "sms"
    LETTER_DISPATCHED = "letter_dispatched"
    LETTER_DELIVERED = "letter_delivered"
    LETTER_RETURNED = "letter_returned"


@dataclass(frozen=True)
class ContactRecord:
    """An SMS sent or a letter's dispatch, delivery or return (one per kind and reference)."""

    kind: RecordKind
    reference: str
    debtor_id: str
    case_id: str | None
    agent_id: str | None
    occurred_at: datetime
    proof_ref: str | None = None


def window_start(accepted_at: datetime, days: int) -> datetime:
    """The earliest instant a record of the debtor is evidence of a ticket accepted then."""
    return accepted_at - timedelta(days=days)


def as_evidence(record: ContactRecord, now: datetime) -> Evidence:
    return Evidence(
        id=str(uuid.uuid4()),
        kind=record.kind.value,
        name=None,
        content_type=None,
        size_bytes=None,
        sha256=None,
        added_at=now,
        reference=record.reference,
        occurred_at=record.occurred_at,
        proof_ref=record.proof_ref,
    )


def evidence_to_attach(
    ticket: Ticket, records: Iterable[ContactRecord], days: int, now: datetime
) -> list[Evidence]:
    """rule: COMP-SLA-EVIDENCE. The evidence ``ticket`` gains from ``records``: the debtor's
    records from ``days`` before its acceptance on, not yet attached; none once it is
    closed. The ticket's evidence list is extended with them."""
    if ticket.state in FINAL_STATES or ticket.debtor_id is None:
        return []
    since = window_start(ticket.accepted_at, days)
    attached = {(e.kind, e.reference) for e in ticket.evidence if e.reference is not None}
    new: list[Evidence] = []
    for record in sorted(records, key=lambda r: (r.occurred_at, r.kind, r.reference)):
        key = (record.kind.value, record.reference)
        if record.debtor_id != ticket.debtor_id or record.occurred_at < since or key in attached:
            continue
        attached.add(key)
        new.append(as_evidence(record, now))
    ticket.evidence.extend(new)
    return new
