"""When a repayment plan counts as broken (CASE-HARDSHIP) and what that does to the case:
back to ``active``, willingness low and the strategy decided again (CASE-STRATEGY)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from case_svc.domain.hardship import break_plan_if_due
from case_svc.domain.lifecycle import CaseStatus
from case_svc.domain.model import Case, CaseIntake
from case_svc.domain.plans import BreakReason, InstallmentStatus, PlanStatus
from case_svc.domain.policy import CasePolicy
from case_svc.domain.strategy import DEFAULT_STRATEGY, History, Track, Willingness
from collect_common.events.types import (
    CaseStatusChanged,
    CaseStrategyChanged,
    CaseUpdated,
    InstallmentMissed,
    PlanBroken,
)

POLICY = CasePolicy()  # 2 missed installments, or one 30 days late, break a plan
NOW = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)  # 10:00 on 1 March in Shanghai
D = Decimal


def in_plan(installments: int = 3) -> Case:
    intake = CaseIntake(
        bank_id="bank-a",
        contract_no="LN-1",
        name="张三",
        national_id="11010519491231002X",
        phones=("13800138000",),
        address=None,
        principal=D("900.00"),
        interest=D("0.00"),
        fees=D("0.00"),
        overdue_since=date(2026, 1, 30),
        debtor_timezone="Asia/Shanghai",
        history=History.GOOD,
    )
    case = Case.open("c-1", "dbt-1", intake, now=NOW, policy=POLICY, table=DEFAULT_STRATEGY)
    schedule = [(date(2026, 3, 10 * (n + 1)), D("300.00")) for n in range(installments)]
    case.create_plan("plan-1", schedule, "AGR-1", now=NOW, policy=POLICY)
    case.events.clear()
    return case


def at(day: date) -> datetime:
    """Noon in Shanghai on ``day``."""
    return datetime(day.year, day.month, day.day, 4, tzinfo=UTC)


def test_one_missed_installment_does_not_break_the_plan_by_default() -> None:
    case = in_plan()
    assert case.installment_day_ended("plan-1", 1, at(date(2026, 3, 11)))
    assert break_plan_if_due(case, POLICY, DEFAULT_STRATEGY, at(date(2026, 3, 11))) is None
    assert case.plan is not None and case.plan.status == PlanStatus.ACTIVE
    assert case.status == CaseStatus.PLAN
    assert [type(e) for e in case.events] == [InstallmentMissed]


def test_the_second_missed_installment_breaks_the_plan_and_reopens_collection() -> None:
    case = in_plan()
    case.record_payment("pay-1", D("100.00"), at(date(2026, 3, 5)))  # towards no. 1 only
    case.installment_day_ended("plan-1", 1, at(date(2026, 3, 11)))
    case.installment_day_ended("plan-1", 2, at(date(2026, 3, 21)))
    case.events.clear()

    reason = break_plan_if_due(case, POLICY, DEFAULT_STRATEGY, at(date(2026, 3, 21)))

    assert reason == BreakReason.MISSED_INSTALLMENTS
    assert case.plan is not None and case.plan.status == PlanStatus.BROKEN
    assert case.status == CaseStatus.ACTIVE
    broken = case.events[0]
    assert isinstance(broken, PlanBroken)
    assert (broken.reason, broken.missed_installments) == ("missed_installments", 2)
    assert (broken.amount_overdue, broken.paid) == (D("500.00"), D("100.00"))
    moved = case.events[1]
    assert isinstance(moved, CaseStatusChanged)
    assert (moved.previous_status, moved.status, moved.rule_id) == (
        "plan",
        "active",
        "CASE-HARDSHIP",
    )
    # rule: CASE-STRATEGY. A broken plan: willingness low, gentle becomes standard.
    assert case.willingness == Willingness.LOW
    assert case.strategy.track == Track.STANDARD
    assert isinstance(case.events[2], CaseUpdated)
    assert case.events[2].changed_fields == ["willingness"]
    assert isinstance(case.events[3], CaseStrategyChanged)
    assert (case.events[3].previous_track, case.events[3].track) == ("gentle", "standard")


def test_a_missed_installment_made_good_no_longer_counts() -> None:
    case = in_plan()
    case.installment_day_ended("plan-1", 1, at(date(2026, 3, 11)))
    case.record_payment("pay-1", D("300.00"), at(date(2026, 3, 12)))  # no. 1 caught up
    assert case.plan is not None
    assert case.plan.installment(1).status == InstallmentStatus.PAID
    case.installment_day_ended("plan-1", 2, at(date(2026, 3, 21)))
    assert break_plan_if_due(case, POLICY, DEFAULT_STRATEGY, at(date(2026, 3, 21))) is None
    assert case.plan.status == PlanStatus.ACTIVE and len(case.plan.missed) == 1


def test_one_installment_unpaid_past_the_late_limit_breaks_the_plan() -> None:
    case = in_plan()
    case.installment_day_ended("plan-1", 1, at(date(2026, 3, 11)))
    on_the_limit = date(2026, 3, 10) + timedelta(days=POLICY.plan_break_days_late)
    assert break_plan_if_due(case, POLICY, DEFAULT_STRATEGY, at(on_the_limit)) is None
    reason = break_plan_if_due(case, POLICY, DEFAULT_STRATEGY, at(on_the_limit + timedelta(days=1)))
    assert reason == BreakReason.INSTALLMENT_LATE
    assert case.status == CaseStatus.ACTIVE


def test_the_limits_are_the_contracts_policy() -> None:
    strict = CasePolicy(plan_break_missed_installments=1, plan_broken_lowers_willingness=False)
    case = in_plan()
    case.installment_day_ended("plan-1", 1, at(date(2026, 3, 11)))
    assert break_plan_if_due(case, strict, DEFAULT_STRATEGY, at(date(2026, 3, 11))) == (
        BreakReason.MISSED_INSTALLMENTS
    )
    assert case.willingness == Willingness.UNKNOWN  # not lowered under this contract
    assert not any(isinstance(e, CaseUpdated) for e in case.events)


def test_a_late_limit_within_the_grace_days_is_refused() -> None:
    with pytest.raises(ValueError, match="plan_break_days_late"):
        CasePolicy(installment_grace_days=5, plan_break_days_late=5)


def test_a_broken_plan_takes_no_more_payments_and_cannot_break_twice() -> None:
    case = in_plan()
    case.installment_day_ended("plan-1", 1, at(date(2026, 3, 11)))
    case.installment_day_ended("plan-1", 2, at(date(2026, 3, 21)))
    break_plan_if_due(case, POLICY, DEFAULT_STRATEGY, at(date(2026, 3, 21)))
    assert break_plan_if_due(case, POLICY, DEFAULT_STRATEGY, at(date(2026, 3, 22))) is None
    case.record_payment("pay-2", D("300.00"), at(date(2026, 3, 22)))
    assert case.plan is not None and case.plan.paid == D("0.00")
    assert case.balance == D("600.00")
    with pytest.raises(ValueError, match="only a running plan"):
        case.plan.break_()


def test_payments_pay_installments_in_order_and_complete_the_plan() -> None:
    case = in_plan()
    case.record_payment("pay-1", D("450.00"), at(date(2026, 3, 5)))
    assert case.plan is not None
    assert [(i.paid, i.status) for i in case.plan.installments] == [
        (D("300.00"), InstallmentStatus.PAID),
        (D("150.00"), InstallmentStatus.DUE),
        (D("0.00"), InstallmentStatus.DUE),
    ]
    case.record_payment("pay-2", D("450.00"), at(date(2026, 3, 6)))
    assert case.plan.status == PlanStatus.COMPLETED
    assert case.status == CaseStatus.SETTLED  # the plan paid the whole balance
    assert break_plan_if_due(case, POLICY, DEFAULT_STRATEGY, at(date(2026, 5, 1))) is None
