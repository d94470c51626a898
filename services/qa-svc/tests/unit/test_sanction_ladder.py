"""The sanction ladder's decision (QA-SANCTION) at its edges, with policy values."""

from __future__ import annotations

from decimal import Decimal

from qa_svc.domain.policy import QaPolicy
from qa_svc.domain.sanctions import History, SanctionKind, Severity, next_step

MINOR, SERIOUS = Severity.MINOR, Severity.SERIOUS


def test_first_minor_is_a_warning_and_the_repeat_a_fine() -> None:
    p = QaPolicy()
    assert next_step(p, MINOR, History()).kind is SanctionKind.WARNING
    fine = next_step(p, MINOR, History(minor=1))
    assert (fine.kind, fine.amount, fine.reason) == (
        SanctionKind.FINE,
        Decimal("200.00"),
        "repeated_minor",
    )


def test_a_serious_violation_is_a_fine_and_a_second_one_a_suspension() -> None:
    p = QaPolicy()
    assert next_step(p, SERIOUS, History()).kind is SanctionKind.FINE
    assert next_step(p, SERIOUS, History(serious=1, fines=1)).kind is SanctionKind.SUSPENSION


def test_the_fine_step_becomes_a_suspension_once_enough_fines_are_in_the_window() -> None:
    p = QaPolicy(fines_before_suspension=2)
    assert next_step(p, MINOR, History(minor=2, fines=1)).kind is SanctionKind.FINE
    step = next_step(p, MINOR, History(minor=3, fines=2))
    assert (step.kind, step.amount) == (SanctionKind.SUSPENSION, None)
    # a minor that is still a warning step is not escalated by older fines
    assert next_step(QaPolicy(minor_repeat_count=5), MINOR, History(minor=1, fines=2)).kind is (
        SanctionKind.WARNING
    )


def test_policy_values_change_the_ladder() -> None:
    p = QaPolicy(
        minor_repeat_count=3,
        monetary_sanction="performance_deduction",
        fine_amount=Decimal("5.50"),
    )
    assert next_step(p, MINOR, History(minor=1)).kind is SanctionKind.WARNING
    step = next_step(p, MINOR, History(minor=2))
    assert (step.kind, step.amount) == (SanctionKind.PERFORMANCE_DEDUCTION, Decimal("5.50"))
    assert QaPolicy.rule_of("retraining_days") == "QA-SANCTION"
