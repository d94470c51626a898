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
