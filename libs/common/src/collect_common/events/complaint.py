"""complaint-svc's SLA and lifecycle events (COMP-SLA-*), on ``complaint.events``.

Ids, step names, rule IDs and instants only: never the complainant's name,
contact or the complaint's content (personal data stays in complaint-svc,
encrypted). ``ComplaintOpened`` is in :mod:`collect_common.events.types`.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import ClassVar, Literal

from pydantic import Field

from collect_common.events.types import ComplaintEvent

# The COMP-SLA chain, in order.
SlaStep = Literal["contact", "verify", "evidence", "investigate", "resolve", "followup"]
# COMP-SANCTION: what a substantiated complaint may grant the complainant.
RemedyName = Literal["change_of_approach", "fee_waiver", "new_plan", "none"]


class ComplaintSlaWarning(ComplaintEvent):
    """A step of the SLA chain has used up ``percent`` of its time and is not done."""

    type_name: ClassVar[str] = "complaint.sla_warning.v1"
    step: SlaStep
    rule_id: str = Field(examples=["COMP-SLA-CONTACT"])
    percent: int = Field(ge=1, le=99, examples=[50, 75])
    deadline: datetime
    warned_at: datetime


class ComplaintSlaBreached(ComplaintEvent):
    """A step of the SLA chain passed its deadline undone."""

    type_name: ClassVar[str] = "complaint.sla_breached.v1"
    step: SlaStep
    rule_id: str = Field(examples=["COMP-SLA-CONTACT"])
    deadline: datetime
    breached_at: datetime


class ComplaintStepCompleted(ComplaintEvent):
    """A step of the SLA chain was completed; its remaining timers are stopped."""

    type_name: ClassVar[str] = "complaint.step_completed.v1"
    step: SlaStep
    rule_id: str
    state: str = Field(description="The ticket's state after the step", examples=["contacted"])
    deadline: datetime
    completed_at: datetime
    within_sla: bool


class ComplaintPaused(ComplaintEvent):
    """The ticket waits on the complainant: its SLA clocks are stopped."""

    type_name: ClassVar[str] = "complaint.paused.v1"
    paused_at: datetime


class ComplaintResumed(ComplaintEvent):
    """The complainant answered: SLA clocks run again, deadlines moved by the pause."""

    type_name: ClassVar[str] = "complaint.resumed.v1"
    resumed_at: datetime
    shifted_seconds: int = Field(ge=0)


class ComplaintEscalated(ComplaintEvent):
    """COMP-ESCALATE: the complainant was dissatisfied at follow-up; the ticket goes to senior
    management and a new investigation cycle starts, with its own SLA timers."""

    type_name: ClassVar[str] = "complaint.escalated.v1"
    rule_id: str = Field(default="COMP-ESCALATE", examples=["COMP-ESCALATE"])
    escalated_to: Literal["senior_management"] = "senior_management"
    cycle: int = Field(ge=2, description="The investigation cycle that starts", examples=[2])
    escalated_at: datetime


class ComplaintOutcomeRecorded(ComplaintEvent):
    """The joint investigation's outcome for one cycle (COMP-JOINT): substantiated or not, the
    remedy, and whether a sanction is requested against the agent.

    qa-svc consumes it: a substantiated complaint opens a re-check of the agent (QA-FEEDBACK)
    and counts as a risk pick in the weekly sample; ``sanction_requested`` records a violation
    on the agent's sanction ladder (QA-SANCTION).
    """

    type_name: ClassVar[str] = "complaint.outcome_recorded.v1"
    cycle: int = Field(ge=1, examples=[1])
    case_id: str | None = None
    debtor_id: str | None = None
    agent_id: str | None = None
    substantiated: bool
    remedies: list[RemedyName] = Field(default_factory=list)
    fee_waiver_amount: Decimal | None = Field(
        default=None,
        ge=0,
        description="The fee waived, with the fee_waiver remedy (within the bank's policy)",
        examples=["200.00"],
    )
    sanction_requested: bool = False
    sanction_severity: Literal["minor", "serious"] | None = Field(
        default=None, description="Set when a sanction is requested"
    )
    apology_recorded: bool = False
    rule_id: str = Field(default="COMP-JOINT", examples=["COMP-JOINT"])
    decided_at: datetime


class ComplaintClosed(ComplaintEvent):
    """The ticket reached its final state (the complainant satisfied at follow-up): the
    complaint is over. contact-svc lifts the ticket's complaint hold (CONTACT-CONDUCT)."""

    type_name: ClassVar[str] = "complaint.closed.v1"
    case_id: str | None = None
    debtor_id: str | None = None
    closed_at: datetime
