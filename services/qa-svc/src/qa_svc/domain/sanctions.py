"""The sanction ladder (QA-SANCTION) as a pure decision over the agent's recent history.

The first minor violation is a warning; a repeated minor one, or a serious one, is a
fine (or a performance deduction, per policy); a serious one after another serious
one, or a fine step once enough fines are in the window, is a suspension with
retraining. An agent already suspended gets no further step: the violation is kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from qa_svc.domain.policy import QaPolicy

RULE = "QA-SANCTION"


class Severity(StrEnum):
    MINOR = "minor"
    SERIOUS = "serious"


class SanctionKind(StrEnum):
    WARNING = "warning"
    FINE = "fine"
    PERFORMANCE_DEDUCTION = "performance_deduction"
    SUSPENSION = "suspension"


MONETARY = frozenset({SanctionKind.FINE, SanctionKind.PERFORMANCE_DEDUCTION})


@dataclass(frozen=True, slots=True)
class History:
    """What precedes this violation within the policy's window."""

    minor: int = 0
    serious: int = 0
    fines: int = 0  # fines and performance deductions


@dataclass(frozen=True, slots=True)
class Step:
    kind: SanctionKind
    reason: str  # a code: first_minor, repeated_minor, serious, repeated_serious, ...
    amount: Decimal | None = None


def next_step(policy: QaPolicy, severity: Severity, history: History) -> Step:
    if severity is Severity.SERIOUS and history.serious >= 1:
        return Step(SanctionKind.SUSPENSION, "repeated_serious")
    if severity is Severity.MINOR and history.minor + 1 < policy.minor_repeat_count:
        return Step(SanctionKind.WARNING, "first_minor")
    if history.fines >= policy.fines_before_suspension:
        return Step(SanctionKind.SUSPENSION, "further_after_fines")
    reason = "serious" if severity is Severity.SERIOUS else "repeated_minor"
    return Step(SanctionKind(policy.monetary_sanction), reason, policy.fine_amount)
