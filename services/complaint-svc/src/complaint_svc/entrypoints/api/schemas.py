"""Request and response bodies of the complaint API."""

from __future__ import annotations

from datetime import datetime
from typing import Literal, Self

from pydantic import BaseModel, Field

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


class EvidenceOut(BaseModel):
    id: str
    kind: str = Field(examples=["email", "attachment", "recording"])
    name: str | None
    content_type: str | None
    size_bytes: int | None
    sha256: str | None
    added_at: datetime
    recording_uri: str | None = None
    call_id: str | None = None


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
                )
                for c in t.steps.values()
            ],
        )


class PortalReceipt(BaseModel):
    """What the portal answers at once."""

    number: str = Field(
        description="The complaint number to quote", examples=["CP-20261128-3F9A1C2B"]
    )
    received_at: datetime
    expected_result_by: datetime = Field(description="When the result is due (COMP-SLA-RESOLVE)")
    expected_handling_hours: float = Field(examples=[24])
