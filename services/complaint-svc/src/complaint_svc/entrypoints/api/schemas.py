"""Request and response bodies of the complaint API."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Literal, Self

from pydantic import BaseModel, Field

from complaint_svc.domain.handling import Finding, Outcome, StepRecord
from complaint_svc.domain.model import Ticket

TypeName = Literal["attitude", "frequency", "violation", "other"]


class ComplaintIn(BaseModel):
    """COMP-RECORD: who complains, how to reach them, what about, which case."""

    type: TypeName = Field(examples=["attitude"])
    complainant_name: str = Field(min_length=1, max_length=100, examples=["张三"])
    complainant_contact: str = Field(min_length=1, max_length=200, examples=["13812345678"])
    content: str = Field(min_length=1, max_length=8000)
    case_id: str | None = Field(default=None, max_length=64)


class HotlineComplaintIn(ComplaintIn):
    channel: Literal["hotline", "email", "contact"] = Field(
        default="hotline", description="Where the handler took the complaint"
    )
    agent_id: str | None = Field(default=None, max_length=64, description="The agent complained of")


class StepOut(BaseModel):
    step: str
    rule: str
    status: Literal["not_started", "running", "done"]
    started_at: datetime | None
    deadline: datetime | None
    completed_at: datetime | None
    warned_first_at: datetime | None
    warned_second_at: datetime | None
    breached_at: datetime | None
    breached: bool
    within_sla: bool | None = Field(
        default=None, description="Done by its deadline; null while not done"
    )


DepartmentName = Literal["collection", "compliance", "customer_service"]
RemedyName = Literal["change_of_approach", "fee_waiver", "new_plan"]


class FindingIn(BaseModel):
    """COMP-JOINT: one department's findings for the cycle under way."""

    department: DepartmentName = Field(examples=["compliance"])
    text: str = Field(min_length=1, max_length=8000, description="Kept encrypted")


class OutcomeIn(BaseModel):
    """COMP-JOINT, COMP-SANCTION: the cycle's outcome, after all three departments' findings."""

    substantiated: bool
    remedies: list[RemedyName] = Field(default_factory=list, max_length=3)
    fee_waiver_amount: Decimal | None = Field(
        default=None,
        max_digits=18,
        decimal_places=2,
        description="With the fee_waiver remedy: the fee waived, within the bank's policy limit",
        examples=["200.00"],
    )
    sanction_requested: bool = Field(
        default=False, description="Ask QA to sanction the agent (substantiated only)"
    )
    sanction_severity: Literal["minor", "serious"] | None = Field(
        default=None, description="With a sanction request"
    )
    apology_recorded: bool = False


class FindingOut(BaseModel):
    id: str
    cycle: int
    department: str
    author: str
    text: str
    added_at: datetime

    @classmethod
    def of(cls, f: Finding) -> Self:
        return cls(
            id=f.id,
            cycle=f.cycle,
            department=f.department.value,
            author=f.author,
            text=f.text,
            added_at=f.added_at,
        )


class OutcomeOut(BaseModel):
    substantiated: bool
    remedies: list[str]
    fee_waiver_amount: Decimal | None
    sanction_requested: bool
    sanction_severity: str | None
    apology_recorded: bool
    decided_by: str
    decided_at: datetime

    @classmethod
    def of(cls, o: Outcome) -> Self:
        return cls(
            substantiated=o.substantiated,
            remedies=[r.value for r in o.remedies],
            fee_waiver_amount=o.fee_waiver_amount,
            sanction_requested=o.sanction_requested,
            sanction_severity=None if o.sanction_severity is None else o.sanction_severity.value,
            apology_recorded=o.apology_recorded,
            decided_by=o.decided_by,
            decided_at=o.decided_at,
        )


class CycleStepOut(BaseModel):
    step: str
    rule: str
    started_at: datetime | None
    deadline: datetime | None
    completed_at: datetime | None
    within_sla: bool | None = Field(description="Done by its deadline; null while not done")
    breached_at: datetime | None

    @classmethod
    def of(cls, r: StepRecord) -> Self:
        return cls(
            step=r.step,
            rule=r.rule_id,
            started_at=r.started_at,
            deadline=r.deadline,
            completed_at=r.completed_at,
            within_sla=r.within_sla,
            breached_at=r.breached_at,
        )


class CycleOut(BaseModel):
    """One investigation cycle: its steps as they ran, findings and outcome (COMP-JOINT)."""

    cycle: int
    steps: list[CycleStepOut]
    findings: list[FindingOut]
    pending_departments: list[str] = Field(description="Departments yet to add findings")
    outcome: OutcomeOut | None

    @classmethod
    def of(cls, t: Ticket, cycle: int) -> Self:
        outcome = t.outcomes.get(cycle)
        return cls(
            cycle=cycle,
            steps=[CycleStepOut.of(r) for r in t.cycle_steps(cycle)],
            findings=[FindingOut.of(f) for f in t.findings if f.cycle == cycle],
            pending_departments=[d.value for d in t.pending_departments(cycle)],
            outcome=None if outcome is None else OutcomeOut.of(outcome),
        )


class EvidenceOut(BaseModel):
    id: str
    kind: str = Field(
        examples=["email", "attachment", "recording", "sms", "letter_delivered"],
        description="email, attachment, recording, or a contact record: sms, "
        "letter_dispatched, letter_delivered, letter_returned",
    )
    name: str | None
    content_type: str | None
    size_bytes: int | None
    sha256: str | None
    added_at: datetime
    recording_uri: str | None = None
    call_id: str | None = None
    reference: str | None = Field(
        default=None,
        description="An SMS's message id or a letter's id in contact-svc (the text stays there)",
    )
    occurred_at: datetime | None = Field(
        default=None,
        description="When the call was recorded, the SMS sent or the letter dispatched, "
        "delivered or returned",
    )
    proof_ref: str | None = Field(
        default=None, description="A letter delivered or returned: the carrier's receipt"
    )


class FollowUpIn(BaseModel):
    """COMP-SLA-FOLLOWUP: the complainant's satisfaction with the result."""

    satisfied: bool = Field(description="False escalates to senior management (COMP-ESCALATE)")
    note: str | None = Field(default=None, max_length=4000)


class TicketOut(BaseModel):
    id: str
    number: str
    channel: str
    type: str
    state: str
    complainant_name: str
    complainant_contact: str
    content: str
    case_id: str | None
    agent_id: str | None
    debtor_id: str | None = Field(default=None, description="From the case read model")
    call_id: str | None = Field(default=None, description="Contact intake: the call")
    accepted_at: datetime
    updated_at: datetime
    paused: bool
    paused_at: datetime | None
    paused_seconds: int = Field(description="Time spent paused so far (finished pauses)")
    expected_result_by: datetime | None
    cycle: int = Field(description="The investigation cycle: 1, then +1 per escalation")
    escalated_at: datetime | None
    followup_note: str | None
    complainant_phone: str | None
    message_id: str | None = Field(description="E-mail intake: the message filed")
    needs_triage: bool = Field(description="A message that could not be read (COMP-CHANNELS)")
    triage_reasons: list[str]
    evidence: list[EvidenceOut]
    steps: list[StepOut]
    pending_departments: list[str] = Field(
        default_factory=list,
        description="COMP-JOINT: departments yet to add findings to the current cycle",
    )
    cycles: list[CycleOut] = Field(
        default_factory=list, description="Every investigation cycle, the first one first"
    )

    @classmethod
    def of(cls, t: Ticket) -> Self:
        return cls(
            id=t.id,
            number=t.number,
            channel=t.channel.value,
            type=t.type.value,
            state=t.state.value,
            complainant_name=t.complainant_name,
            complainant_contact=t.complainant_contact,
            content=t.content,
            case_id=t.case_id,
            agent_id=t.agent_id,
            debtor_id=t.debtor_id,
            call_id=t.call_id,
            accepted_at=t.accepted_at,
            updated_at=t.updated_at,
            paused=t.paused,
            paused_at=t.paused_at,
            paused_seconds=int(t.paused_total.total_seconds()),
            expected_result_by=t.expected_result_by,
            cycle=t.cycle,
            escalated_at=t.escalated_at,
            followup_note=t.followup_note,
            complainant_phone=t.complainant_phone,
            message_id=t.message_id,
            needs_triage=t.needs_triage,
            triage_reasons=list(t.triage_reasons),
            evidence=[
                EvidenceOut(
                    id=e.id,
                    kind=e.kind,
                    name=e.name,
                    content_type=e.content_type,
                    size_bytes=e.size_bytes,
                    sha256=e.sha256,
                    added_at=e.added_at,
                    recording_uri=e.recording_uri,
                    call_id=e.call_id,
                    reference=e.reference,
                    occurred_at=e.occurred_at,
                    proof_ref=e.proof_ref,
                )
                for e in t.evidence
            ],
            steps=[
                StepOut(
                    step=c.step,
                    rule=c.rule_id,
                    status=c.status,  # type: ignore[arg-type]
                    started_at=c.started_at,
                    deadline=c.deadline,
                    completed_at=c.completed_at,
                    warned_first_at=c.warned_first_at,
                    warned_second_at=c.warned_second_at,
                    breached_at=c.breached_at,
                    breached=c.breached_at is not None,
                    within_sla=c.within_sla,
                )
                for c in t.steps.values()
            ],
            pending_departments=[d.value for d in t.pending_departments()],
            cycles=[CycleOut.of(t, n) for n in range(1, t.cycle + 1)],
        )


class PortalReceipt(BaseModel):
    """What the portal answers at once."""

    number: str = Field(
        description="The complaint number to quote", examples=["CP-20261128-3F9A1C2B"]
    )
    received_at: datetime
    expected_result_by: datetime = Field(description="When the result is due (COMP-SLA-RESOLVE)")
    expected_handling_hours: float = Field(examples=[24])
