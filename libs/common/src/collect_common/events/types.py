"""The platform's catalogued events, by producing service.

This is the first version of the contracts between services; each service's
own work adds the events it needs here, with a new ``.vN`` when a shape changes
incompatibly. Amounts are Decimal (serialised as strings), instants aware UTC.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import ClassVar, Literal

from pydantic import Field

from collect_common.events.catalogue import Event

Bucket = Literal["M1", "M2", "M3", "M3+"]


class CaseEvent(Event):
    topic: ClassVar[str] = "case.events"
    key_field: ClassVar[str] = "case_id"
    case_id: str
    debtor_id: str


class CaseImported(CaseEvent):
    """A bank account arrived (CASE-INTAKE) and became a case."""

    type_name: ClassVar[str] = "case.imported.v1"
    bank_id: str
    overdue_total: Decimal = Field(ge=0)
    overdue_since: date
    bucket: Bucket
    debtor_timezone: str = Field(examples=["Asia/Shanghai"])


class CaseRecalled(CaseEvent):
    """The bank withdrew the account: all contact must stop."""

    type_name: ClassVar[str] = "case.recalled.v1"
    recalled_at: datetime
    reason: str | None = None


class CaseSettled(CaseEvent):
    type_name: ClassVar[str] = "case.settled.v1"
    settled_at: datetime


class ContactEvent(Event):
    topic: ClassVar[str] = "contact.events"
    key_field: ClassVar[str] = "debtor_id"
    debtor_id: str
    case_id: str


class ContactAttempted(ContactEvent):
    type_name: ClassVar[str] = "contact.attempted.v1"
    contact_id: str
    channel: Literal["call", "sms", "letter", "visit"]
    agent_id: str | None
    attempted_at: datetime


class CallCompleted(ContactEvent):
    type_name: ClassVar[str] = "contact.call_completed.v1"
    contact_id: str
    agent_id: str
    started_at: datetime
    duration_seconds: int = Field(ge=0)
    disposition: str
    recording_uri: str | None = None


class ComplaintEvent(Event):
    topic: ClassVar[str] = "complaint.events"
    key_field: ClassVar[str] = "ticket_id"
    ticket_id: str


class ComplaintOpened(ComplaintEvent):
    type_name: ClassVar[str] = "complaint.opened.v1"
    channel: Literal["hotline", "email", "portal", "contact"]
    case_id: str | None = None
    agent_id: str | None = None
    opened_at: datetime


class QaEvent(Event):
    topic: ClassVar[str] = "qa.events"
    key_field: ClassVar[str] = "agent_id"
    agent_id: str


class AgentSuspended(QaEvent):
    """QA-SANCTION: the agent may not collect until reinstated."""

    type_name: ClassVar[str] = "qa.agent_suspended.v1"
    suspended_at: datetime
    rule_id: str = Field(examples=["QA-SANCTION"])
    reason: str


class AgentReinstated(QaEvent):
    type_name: ClassVar[str] = "qa.agent_reinstated.v1"
    reinstated_at: datetime
    exam_ref: str
