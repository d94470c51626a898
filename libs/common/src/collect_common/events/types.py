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

# CASE-BUCKET: M0 is "current" (not yet past due: days past due <= 0), then M1 (1-30),
# M2 (31-60), M3 (61-90), M3+ (>90) by default; the bounds are per-contract policy.
Bucket = Literal["M0", "M1", "M2", "M3", "M3+"]
# CASE-STRATEGY: the track a case is worked on, and the channels a track allows.
Track = Literal["gentle", "standard", "firm", "legal"]
Channel = Literal["call", "sms", "letter", "visit", "legal"]
# The case lifecycle (case-svc domain.lifecycle).
CaseStatus = Literal["active", "skip_tracing", "legal", "plan", "settled", "recalled", "closed"]


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
    # COMP-STATS dimensions: codes the bank assigns, never an address or a name
    region: str | None = Field(
        default=None,
        max_length=32,
        description="Region code of the account (province or city level, e.g. GB/T 2260), "
        "for statistics; never an address",
        examples=["310000"],
    )
    customer_group: str | None = Field(
        default=None,
        max_length=64,
        description="The bank's customer group (segment) code of the account",
        examples=["retail-standard"],
    )
    case_type: str | None = Field(
        default=None,
        max_length=64,
        description="The kind of case: the bank's product code of the account",
        examples=["credit_card", "consumer_loan"],
    )


class CaseRecalled(CaseEvent):
    """The bank withdrew the account: all contact must stop."""

    type_name: ClassVar[str] = "case.recalled.v1"
    recalled_at: datetime
    reason: str | None = None


class CaseSettled(CaseEvent):
    """The balance is paid in full: collection ends; the case awaits closing."""

    type_name: ClassVar[str] = "case.settled.v1"
    settled_at: datetime


class CaseUpdated(CaseEvent):
    """The bank re-sent the account (CASE-INTAKE: same contract, updated, never duplicated).

    Names the fields that changed, never their values (they may be personal data).
    """

    type_name: ClassVar[str] = "case.updated.v1"
    changed_fields: list[str] = Field(examples=[["phones", "interest"]])
    updated_at: datetime


class CaseBucketChanged(CaseEvent):
    """The daily recomputation moved the case to another delinquency bucket (CASE-BUCKET)."""

    type_name: ClassVar[str] = "case.bucket_changed.v1"
    previous: Bucket
    bucket: Bucket
    days_past_due: int = Field(ge=0)
    as_of: date = Field(description="The debtor's local calendar day the bucket was computed for")


class CaseStrategyChanged(CaseEvent):
    """The case's collection track, hence its allowed channels, changed (CASE-STRATEGY).

    Also recorded when a case opens (``previous_track`` null). ``channels`` are in
    their order of use; ``rule_name`` is null when no rule of the table matched and
    its default track applied.
    """

    type_name: ClassVar[str] = "case.strategy_changed.v1"
    previous_track: Track | None
    track: Track
    channels: list[Channel]
    rule_name: str | None
    table_version: str
    reason: str = Field(
        examples=[
            "CASE-STRATEGY: bucket M1, history good, willingness high matched rule "
            "'gentle-good-record-early' of table v1 -> gentle track (sms, call)"
        ]
    )


class CaseStatusChanged(CaseEvent):
    """A lifecycle move that has no event of its own: skip tracing, legal, back to active,
    repayment plan (CASE-SKIP, CASE-HARDSHIP). Settled, recalled and closed have theirs."""

    type_name: ClassVar[str] = "case.status_changed.v1"
    previous_status: CaseStatus
    status: CaseStatus
    rule_id: str | None = Field(default=None, examples=["CASE-SKIP"])
    changed_at: datetime


class CaseAssigned(CaseEvent):
    type_name: ClassVar[str] = "case.assigned.v1"
    agent_id: str
    team_id: str | None = None
    previous_agent_id: str | None = None
    assigned_at: datetime


class CaseUnassigned(CaseEvent):
    """The case was taken from its agent and left without one, until the next assignment
    run or ops hand it on: by ops, or because QA suspended the agent (QA-SANCTION)."""

    type_name: ClassVar[str] = "case.unassigned.v1"
    previous_agent_id: str
    previous_team_id: str | None = None
    reason: Literal["ops", "agent_suspended"]
    rule_id: str | None = Field(default=None, examples=["QA-SANCTION"])
    unassigned_at: datetime


class PromiseMade(CaseEvent):
    """The debtor promised to pay ``amount`` by ``due_date``."""

    type_name: ClassVar[str] = "case.promise_made.v1"
    promise_id: str
    amount: Decimal = Field(gt=0)
    due_date: date
    agent_id: str | None = None
    made_at: datetime


class PromiseKept(CaseEvent):
    type_name: ClassVar[str] = "case.promise_kept.v1"
    promise_id: str
    kept_at: datetime


class PromiseBroken(CaseEvent):
    type_name: ClassVar[str] = "case.promise_broken.v1"
    promise_id: str
    due_date: date
    amount_due: Decimal = Field(ge=0, description="What remained unpaid of the promise")


class PlanCreated(CaseEvent):
    """A hardship repayment plan was agreed and signed (CASE-HARDSHIP)."""

    type_name: ClassVar[str] = "case.plan_created.v1"
    plan_id: str
    installments: int = Field(ge=1)
    total: Decimal = Field(gt=0)
    first_due_date: date
    created_at: datetime


class InstallmentMissed(CaseEvent):
    """A plan installment fell due unpaid (CASE-HARDSHIP: missed installments are tracked)."""

    type_name: ClassVar[str] = "case.installment_missed.v1"
    plan_id: str
    installment_no: int = Field(ge=1)
    due_date: date
    amount: Decimal = Field(gt=0)


class PlanBroken(CaseEvent):
    """A repayment plan was broken under the contract's policy (CASE-HARDSHIP): too many
    installments missed and not made good, or one left unpaid too long after its day.
    The case goes back to ``active`` (a CaseStatusChanged follows)."""

    type_name: ClassVar[str] = "case.plan_broken.v1"
    plan_id: str
    reason: Literal["missed_installments", "installment_late"]
    missed_installments: int = Field(ge=0, description="Installments missed and still unpaid")
    amount_overdue: Decimal = Field(ge=0, description="What those installments still lack")
    paid: Decimal = Field(ge=0, description="What was paid towards the plan in all")
    broken_at: datetime


class PaymentReceived(CaseEvent):
    """A payment on the case; ``balance`` is what remains owed after it (negative: overpaid)."""

    type_name: ClassVar[str] = "case.payment_received.v1"
    payment_id: str
    amount: Decimal = Field(gt=0)
    paid_at: datetime
    balance: Decimal


class CaseClosed(CaseEvent):
    """The case is closed for good; nothing more happens on it."""

    type_name: ClassVar[str] = "case.closed.v1"
    reason: str = Field(
        description="A reason code, never personal data", examples=["settled", "recalled"]
    )
    closed_at: datetime


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
    speech_rate_wpm: float | None = Field(
        default=None, ge=0, description="The agent's measured speech rate, when the dialer has it"
    )
    volume_db: float | None = Field(
        default=None, description="The call's measured volume, dB, when the dialer has it"
    )


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
