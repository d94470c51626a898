"""The joint investigation of a complaint and its outcome, per investigation cycle
(COMP-JOINT, COMP-SANCTION, COMP-ESCALATE).

Collection, compliance and customer service each add their findings to the cycle under
way; the outcome (substantiated or not, remedies, a sanction request against the
agent, an apology) is recorded once all three have. An escalation (COMP-ESCALATE)
starts a new cycle that needs its own three findings and its own outcome. The ticket
keeps each cycle's SLA steps (:class:`StepRecord`) when a new cycle restarts them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Final


class Department(StrEnum):
    COLLECTION = "collection"
    COMPLIANCE = "compliance"
    CUSTOMER_SERVICE = "customer_service"


# rule: COMP-JOINT (every department investigates; each contributes findings)
DEPARTMENTS: Final[tuple[Department, ...]] = tuple(Department)


class Remedy(StrEnum):
    CHANGE_OF_APPROACH = "change_of_approach"
    FEE_WAIVER = "fee_waiver"
    NEW_PLAN = "new_plan"


class SanctionSeverity(StrEnum):
    MINOR = "minor"
    SERIOUS = "serious"


class OutcomeInvalid(ValueError):
    """An outcome that breaks a rule (422, naming the field and the rule)."""

    def __init__(self, field: str, rule: str, detail: str) -> None:
        self.field = field
        self.rule = rule
        super().__init__(detail)


@dataclass(frozen=True)
class Finding:
    """One department's findings in one cycle. ``text`` may hold personal data: it is
    stored encrypted and never leaves complaint-svc in an event."""

    id: str
    cycle: int
    department: Department
    author: str
    text: str
    added_at: datetime


@dataclass(frozen=True)
class Outcome:
    """What the joint investigation of one cycle concluded (COMP-JOINT, COMP-SANCTION)."""

    cycle: int
    substantiated: bool
    remedies: tuple[Remedy, ...]
    fee_waiver_amount: Decimal | None
    sanction_severity: SanctionSeverity | None  # None: no sanction requested
    apology_recorded: bool
    decided_by: str
    decided_at: datetime

    @property
    def sanction_requested(self) -> bool:
        return self.sanction_severity is not None

    @classmethod
    def decide(
        cls,
        *,
        cycle: int,
        substantiated: bool,
        remedies: tuple[Remedy, ...],
        fee_waiver_amount: Decimal | None,
        sanction_severity: SanctionSeverity | None,
        apology_recorded: bool,
        decided_by: str,
        decided_at: datetime,
        fee_waiver_max: Decimal,
    ) -> Outcome:
        """The outcome, checked: a fee waiver names its amount, within ``fee_waiver_max``
        (COMP-SANCTION, the bank's policy); an amount only with a fee waiver; a sanction
        only against a substantiated complaint."""
        if len(set(remedies)) != len(remedies):
            raise OutcomeInvalid("remedies", "COMP-SANCTION", "a remedy is listed twice")
        if Remedy.FEE_WAIVER in remedies:
            if fee_waiver_amount is None:
                raise OutcomeInvalid(
                    "fee_waiver_amount", "COMP-SANCTION", "a fee waiver needs its amount"
                )
            if fee_waiver_amount <= 0:
                raise OutcomeInvalid(
                    "fee_waiver_amount", "COMP-SANCTION", "a fee waiver's amount must be positive"
                )
            if fee_waiver_amount > fee_waiver_max:
                raise OutcomeInvalid(
                    "fee_waiver_amount",
                    "COMP-SANCTION",
                    f"a fee waiver of {fee_waiver_amount} exceeds the bank policy's limit "
                    f"of {fee_waiver_max}",
                )
        elif fee_waiver_amount is not None:
            raise OutcomeInvalid(
                "fee_waiver_amount", "COMP-SANCTION", "an amount is only given with a fee waiver"
            )
        if sanction_severity is not None and not substantiated:
            raise OutcomeInvalid(
                "sanction_severity",
                "COMP-SANCTION",
                "a sanction is only requested when the complaint is substantiated",
            )
        return cls(
            cycle=cycle,
            substantiated=substantiated,
            remedies=remedies,
            fee_waiver_amount=fee_waiver_amount,
            sanction_severity=sanction_severity,
            apology_recorded=apology_recorded,
            decided_by=decided_by,
            decided_at=decided_at,
        )


@dataclass(frozen=True)
class StepRecord:
    """A step of a finished cycle, as it ended when a new cycle restarted it."""

    cycle: int
    step: str
    rule_id: str
    started_at: datetime | None
    deadline: datetime | None
    completed_at: datetime | None
    warned_first_at: datetime | None
    warned_second_at: datetime | None
    breached_at: datetime | None

    @property
    def within_sla(self) -> bool | None:
        return within_sla(self.deadline, self.completed_at)


def within_sla(deadline: datetime | None, completed_at: datetime | None) -> bool | None:
    """Done by its deadline; None while not done."""
    if deadline is None or completed_at is None:
        return None
    return completed_at <= deadline


def sanction_of(requested: bool, severity: SanctionSeverity | None) -> SanctionSeverity | None:
    """A sanction request names its severity; a severity comes only with a request."""
    if requested and severity is None:
        raise OutcomeInvalid(
            "sanction_severity", "COMP-SANCTION", "a sanction request names its severity"
        )
    if not requested and severity is not None:
        raise OutcomeInvalid(
            "sanction_severity", "COMP-SANCTION", "a severity is only given with a sanction request"
        )
    return severity


def pending_departments(findings: list[Finding], cycle: int) -> list[Department]:
    """The departments that have not yet added findings to ``cycle`` (COMP-JOINT)."""
    done = {f.department for f in findings if f.cycle == cycle}
    return [d for d in DEPARTMENTS if d not in done]
