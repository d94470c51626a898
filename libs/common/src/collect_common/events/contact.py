"""contact-svc's own events (topic ``contact.events``, keyed by debtor id).

Ids, codes and instants only: never names, phones or addresses (SEC-PII).
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal

from pydantic import Field

from collect_common.events.catalogue import Event


class ContactDecisionEvent(Event):
    topic: ClassVar[str] = "contact.events"
    key_field: ClassVar[str] = "debtor_id"
    debtor_id: str


class ContactDenied(ContactDecisionEvent):
    """The contact-policy engine refused a contact before it happened (auditors see what
    was prevented), naming the rules behind the refusal."""

    type_name: ClassVar[str] = "contact.denied.v1"
    decision_id: str
    case_id: str | None
    channel: Literal["call", "sms", "letter", "visit"]
    agent_id: str | None = None
    rules: list[str] = Field(min_length=1, examples=[["CALL-QUIET", "CALL-DAILY-CAP"]])
    denied_at: datetime
    next_allowed_at: datetime | None = None


class SmsSent(ContactDecisionEvent):
    """An SMS from an approved, filed template (SMS-TEMPLATE) went to the provider.
    Neither the text nor the phone number travels: only the text's hash."""

    type_name: ClassVar[str] = "contact.sms_sent.v1"
    message_id: str
    case_id: str
    template_id: str
    template_version: int
    filing_number: str
    agent_id: str | None = None
    text_sha256: str
    provider: str
    provider_id: str
    sent_at: datetime


class CallEvent(Event):
    """A call the dialer reported through its signed webhooks (keyed by debtor id)."""

    topic: ClassVar[str] = "contact.events"
    key_field: ClassVar[str] = "debtor_id"
    debtor_id: str
    case_id: str
    call_id: str
    agent_id: str


class ComplaintReported(CallEvent):
    """The debtor complained during a call (disposition ``complaint``); complaint-svc opens a
    ticket from it. The recording is the evidence."""

    type_name: ClassVar[str] = "contact.complaint_reported.v1"
    recording_uri: str | None = None
    reported_at: datetime


class CallFlagged(CallEvent):
    """A call happened that the contact policy would have denied at its start (CALL-QUIET,
    CALL-DAILY-CAP, QA-SANCTION, ...): recorded anyway, and flagged for auditors."""

    type_name: ClassVar[str] = "contact.call_flagged.v1"
    rules: list[str] = Field(min_length=1, examples=[["CALL-QUIET"]])
    started_at: datetime
    flagged_at: datetime


class LetterEvent(Event):
    """A formal letter (LETTER), keyed by debtor id. Neither the text nor the address travels:
    the text's hash, the carrier and its tracking number."""

    topic: ClassVar[str] = "contact.events"
    key_field: ClassVar[str] = "debtor_id"
    debtor_id: str
    case_id: str
    letter_id: str


class LetterDispatched(LetterEvent):
    """A letter from a bank-approved template was handed to a tracked carrier (registered
    mail or express) after the contact policy allowed the letter channel."""

    type_name: ClassVar[str] = "contact.letter_dispatched.v1"
    contact_id: str
    template_id: str
    template_version: int
    approval_number: str
    text_sha256: str
    carrier: str = Field(examples=["registered_mail"])
    tracking_number: str
    dispatched_at: datetime


class LetterDelivered(LetterEvent):
    """The carrier delivered the letter; ``proof_ref`` names the signed receipt kept."""

    type_name: ClassVar[str] = "contact.letter_delivered.v1"
    carrier: str
    tracking_number: str
    proof_ref: str
    delivered_at: datetime


class LetterReturned(LetterEvent):
    """The letter came back undelivered (CASE-SKIP may follow an unknown address)."""

    type_name: ClassVar[str] = "contact.letter_returned.v1"
    carrier: str
    tracking_number: str
    reason: Literal["refused", "unknown_address", "moved", "unclaimed", "other"]
    proof_ref: str | None = None
    returned_at: datetime


class VisitEvent(Event):
    """A field visit (VISIT-TEAM), keyed by debtor id; never the place."""

    topic: ClassVar[str] = "contact.events"
    key_field: ClassVar[str] = "debtor_id"
    debtor_id: str
    case_id: str
    visit_id: str


class VisitPlanned(VisitEvent):
    """A visit by at least two staff in good standing, at a time the contact policy allows."""

    type_name: ClassVar[str] = "contact.visit_planned.v1"
    staff: list[str] = Field(min_length=2, examples=[["a-1", "a-2"]])
    planned_at: datetime
    decision_id: str


class VisitCompleted(VisitEvent):
    """The visit happened: its outcome and the references of its audio/video recordings."""

    type_name: ClassVar[str] = "contact.visit_completed.v1"
    contact_id: str
    staff: list[str] = Field(min_length=2)
    outcome: Literal[
        "debtor_met", "promise_made", "debtor_absent", "access_refused", "address_invalid"
    ]
    recording_refs: list[str] = Field(min_length=1)
    completed_at: datetime
