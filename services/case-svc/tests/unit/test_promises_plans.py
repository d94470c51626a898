"""Promises to pay (CASE-PROMISE) and repayment plans (CASE-HARDSHIP) on the Case aggregate."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from case_svc.domain.lifecycle import ActionNotAllowed, CaseStatus, IllegalTransition
from case_svc.domain.model import Case, CaseIntake
from case_svc.domain.plans import InstallmentStatus, PlanStatus, equal_installments
from case_svc.domain.policy import CasePolicy
from case_svc.domain.promises import PromiseStatus, end_of_day, next_midnight
from case_svc.domain.strategy import DEFAULT_STRATEGY, History
from case_svc.domain.validation import InvalidField
from collect_common.events.types import (
    CaseStatusChanged,
    InstallmentMissed,
    PlanCreated,
    PromiseBroken,
    PromiseKept,
    PromiseMade,
)

POLICY = CasePolicy()
NOW = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)  # 10:00 on 1 March in Shanghai
D = Decimal


def opened(**policy: object) -> Case:
    intake = CaseIntake(
        bank_id="bank-a",
        contract_no="LN-1",
        name="张三",
        national_id="11010519491231002X",
        phones=("13800138000",),
        address=None,
        principal=D("1000.00"),
        interest=D("0.00"),
        fees=D("0.00"),
        overdue_since=date(2026, 1, 30),
        debtor_timezone="Asia/Shanghai",
        history=History.GOOD,
    )
    case = Case.open("c-1", "dbt-1", intake, now=NOW, policy=POLICY, table=DEFAULT_STRATEGY)
    case.events.clear()
    return case


def kinds(case: Case) -> list[type]:
    return [type(e) for e in case.events]


# -- calendar ------------------------------------------------------------------------------


def test_end_of_day_is_the_debtors_next_local_midnight() -> None:
    assert end_of_day(date(2026, 3, 1), "Asia/Shanghai") == datetime(2026, 3, 1, 16, tzinfo=UTC)
    assert end_of_day(date(2026, 3, 1), "Asia/Shanghai", grace_days=2) == datetime(
        2026, 3, 3, 16, tzinfo=UTC
    )
    # New York springs forward on 8 March 2026: that day has 23 hours
    assert end_of_day(date(2026, 3, 8), "America/New_York") == datetime(2026, 3, 9, 4, tzinfo=UTC)


def test_next_midnight_follows_the_debtors_calendar() -> None:
    assert next_midnight(NOW, "Asia/Shanghai") == datetime(2026, 3, 1, 16, tzinfo=UTC)
    at_midnight = datetime(2026, 3, 1, 16, tzinfo=UTC)
    assert next_midnight(at_midnight, "Asia/Shanghai") == datetime(2026, 3, 2, 16, tzinfo=UTC)
    assert next_midnight(NOW, "Europe/London") == datetime(2026, 3, 2, 0, tzinfo=UTC)


# -- promises --------------------------------------------------------------------------------


def test_a_promise_is_kept_by_payments_covering_it_by_its_deadline() -> None:
    case = opened()
    promise = case.make_promise("p-1", D("300.00"), date(2026, 3, 3), now=NOW, policy=POLICY)
    assert promise.due_at == datetime(2026, 3, 3, 16, tzinfo=UTC)
    made = case.events[-1]
    assert isinstance(made, PromiseMade) and made.amount == D("300.00")
    case.record_payment("pay-1", D("100.00"), NOW)
    assert promise.status == PromiseStatus.PENDING and PromiseKept not in kinds(case)
    case.record_payment("pay-2", D("200.00"), NOW + timedelta(days=1))
    assert promise.status == PromiseStatus.KEPT
    assert kinds(case).count(PromiseKept) == 1
    assert case.promise_deadline_passed("p-1", promise.due_at) is False  # nothing to break


def test_a_payment_after_the_deadline_does_not_keep_the_promise() -> None:
    case = opened()
    promise = case.make_promise("p-1", D("300.00"), date(2026, 3, 1), now=NOW, policy=POLICY)
    case.record_payment("late", D("300.00"), promise.due_at + timedelta(seconds=1))
    assert promise.status == PromiseStatus.PENDING
    assert case.promise_deadline_passed("p-1", promise.due_at) is True
    broken = case.events[-1]
    assert isinstance(broken, PromiseBroken) and broken.amount_due == D("300.00")


def test_grace_days_move_the_promise_deadline() -> None:
    case = opened()
    policy = CasePolicy(promise_grace_days=2)
    promise = case.make_promise("p-1", D("1.00"), date(2026, 3, 1), now=NOW, policy=policy)
    assert promise.due_at == datetime(2026, 3, 3, 16, tzinfo=UTC)


@pytest.mark.parametrize(
    ("amount", "due", "field"),
    [
        (D("0.00"), date(2026, 3, 2), "amount"),
        (D("1.00"), date(2026, 2, 28), "due_date"),
        (D("1.00"), date(2026, 4, 1), "due_date"),  # beyond promise_max_days (30)
    ],
)
def test_promises_refused_with_field_and_rule(amount: Decimal, due: date, field: str) -> None:
    with pytest.raises(InvalidField) as refused:
        opened().make_promise("p", amount, due, now=NOW, policy=POLICY)
    assert refused.value.error.field == field
    assert refused.value.error.rule in {"CASE-PROMISE", "CASE-INTAKE"}


def test_no_promise_on_a_case_out_of_collection() -> None:
    case = opened()
    case.recall(None, NOW)
    with pytest.raises(ActionNotAllowed) as refused:
        case.make_promise("p", D("1.00"), date(2026, 3, 2), now=NOW, policy=POLICY)
    assert refused.value.current == CaseStatus.RECALLED


# -- plans -----------------------------------------------------------------------------------


def test_equal_installments_put_the_cents_on_the_last() -> None:
    assert equal_installments(D("1000.00"), 3, date(2026, 3, 10), 30) == [
        (date(2026, 3, 10), D("333.33")),
        (date(2026, 4, 9), D("333.33")),
        (date(2026, 5, 9), D("333.34")),
    ]


def test_a_plan_moves_the_case_to_plan_and_allocates_payments_in_order() -> None:
    case = opened()
    plan = case.create_plan(
        "pl-1",
        [(date(2026, 3, 10), D("400.00")), (date(2026, 4, 10), D("400.00"))],
        "AGR-1",
        now=NOW,
        policy=POLICY,
    )
    assert case.status == CaseStatus.PLAN
    assert kinds(case) == [PlanCreated, CaseStatusChanged]
    case.record_payment("pay-1", D("500.00"), NOW)
    first, second = plan.installments
    assert (first.status, first.paid, second.paid) == (InstallmentStatus.PAID, D("400"), D("100"))
    assert case.installment_day_ended("pl-1", 1, NOW) is False  # paid: never missed
    assert case.installment_day_ended("pl-1", 2, NOW) is True
    missed = case.events[-1]
    assert isinstance(missed, InstallmentMissed) and missed.amount == D("300.00")
    case.record_payment("pay-2", D("300.00"), NOW)  # a missed installment can still be paid
    assert plan.status == PlanStatus.COMPLETED
    assert case.status == CaseStatus.ACTIVE  # the plan ended; 200 remains to collect
    assert case.balance == D("200.00")


def test_plan_installments_may_not_exceed_the_balance() -> None:
    case = opened()
    with pytest.raises(InvalidField) as refused:
        case.create_plan("pl", [(date(2026, 3, 10), D("1000.01"))], "AGR", now=NOW, policy=POLICY)
    assert (refused.value.error.field, refused.value.error.rule) == (
        "installments",
        "CASE-HARDSHIP",
    )
    assert case.status == CaseStatus.ACTIVE and case.events == []


@pytest.mark.parametrize(
    ("items", "ref", "field"),
    [
        ([], "AGR", "installments"),
        ([(date(2026, 3, 10), D("1.00"))], " ", "agreement_ref"),
        ([(date(2026, 2, 27), D("1.00"))], "AGR", "installments[0].due_date"),
        (
            [(date(2026, 3, 10), D("1.00")), (date(2026, 3, 10), D("1.00"))],
            "AGR",
            "installments[1].due_date",
        ),
        ([(date(2026, 3, 10), D("0.00"))], "AGR", "installments[0].amount"),
    ],
)
def test_plans_refused_with_field_and_rule(
    items: list[tuple[date, Decimal]], ref: str, field: str
) -> None:
    with pytest.raises(InvalidField) as refused:
        opened().create_plan("pl", items, ref, now=NOW, policy=POLICY)
    assert (refused.value.error.field, refused.value.error.rule) == (field, "CASE-HARDSHIP")


def test_no_plan_on_a_settled_case() -> None:
    case = opened()
    case.record_payment("all", D("1000.00"), NOW)
    with pytest.raises(ActionNotAllowed) as refused:
        case.create_plan("pl", [(date(2026, 3, 10), D("1.00"))], "AGR", now=NOW, policy=POLICY)
    assert refused.value.current == CaseStatus.SETTLED


def test_no_second_plan_while_one_runs() -> None:
    case = opened()
    case.create_plan("pl", [(date(2026, 3, 10), D("1.00"))], "AGR", now=NOW, policy=POLICY)
    with pytest.raises(IllegalTransition):
        case.create_plan("pl2", [(date(2026, 3, 10), D("1.00"))], "AGR", now=NOW, policy=POLICY)
