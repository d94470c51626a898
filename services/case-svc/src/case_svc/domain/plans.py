"""Hardship repayment plans (CASE-HARDSHIP): installments, agreed and signed.

A plan is a schedule of installments (due date, amount) that adds up to the
case's balance or less, backed by the reference of the signed agreement.
Payments are allocated to the installments in order (the oldest unpaid first).
When an installment's day ends (plus the contract's grace days) unpaid, the
``installment:<plan_id>:<n>`` timer records it as missed (InstallmentMissed).
Once every installment is paid the plan is completed.

When a plan counts as broken is the contract's policy (``CasePolicy``, rule
CASE-HARDSHIP), and either limit is enough:

- ``plan_break_missed_installments``: that many installments missed and not made
  good (an installment paid in full after its day no longer counts);
- ``plan_break_days_late``: one installment still unpaid that many days after
  its day. The missed installment's timer is moved to that instant to check it.

A broken plan takes no more payments (they count towards the case's balance
only); ``domain.hardship`` moves the case back to ``active``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from enum import StrEnum

from case_svc.domain.policy import CasePolicy
from case_svc.domain.validation import FieldError, InvalidField

RULE = "CASE-HARDSHIP"
CENT = Decimal("0.01")


class PlanStatus(StrEnum):
    ACTIVE = "active"
    COMPLETED = "completed"
    BROKEN = "broken"


class BreakReason(StrEnum):
    MISSED_INSTALLMENTS = "missed_installments"  # plan_break_missed_installments reached
    INSTALLMENT_LATE = "installment_late"  # one unpaid plan_break_days_late after its day


class InstallmentStatus(StrEnum):
    DUE = "due"
    PAID = "paid"
    MISSED = "missed"  # its day ended unpaid; payments still count towards it


@dataclass
class Installment:
    no: int  # 1-based
    due_date: date
    amount: Decimal
    paid: Decimal = Decimal("0.00")
    status: InstallmentStatus = InstallmentStatus.DUE

    @property
    def outstanding(self) -> Decimal:
        return max(self.amount - self.paid, Decimal("0.00"))


@dataclass(eq=False)
class Plan:
    id: str
    case_id: str
    agreement_ref: str
    installments: list[Installment]
    created_at: datetime
    status: PlanStatus = PlanStatus.ACTIVE
    new: bool = field(default=False, compare=False)
    dirty: bool = field(default=False, compare=False)

    @property
    def total(self) -> Decimal:
        return sum((i.amount for i in self.installments), Decimal("0.00"))

    @property
    def completed(self) -> bool:
        return self.status == PlanStatus.COMPLETED

    def timer_key(self, no: int) -> str:
        return f"installment:{self.id}:{no}"

    def installment(self, no: int) -> Installment:
        return self.installments[no - 1]

    @property
    def paid(self) -> Decimal:
        return sum((i.paid for i in self.installments), Decimal("0.00"))

    @property
    def missed(self) -> list[Installment]:
        """Installments missed and not made good since (still short of their amount)."""
        return [
            i
            for i in self.installments
            if i.status == InstallmentStatus.MISSED and i.outstanding > 0
        ]

    @property
    def amount_overdue(self) -> Decimal:
        return sum((i.outstanding for i in self.missed), Decimal("0.00"))

    def breach(self, policy: CasePolicy, today: date) -> BreakReason | None:
        """Why the plan counts as broken on the debtor's day ``today``; None if it does not.

        rule: CASE-HARDSHIP. Only a running plan can break."""
        if self.status != PlanStatus.ACTIVE:
            return None
        missed = self.missed
        if len(missed) >= policy.plan_break_missed_installments:
            return BreakReason.MISSED_INSTALLMENTS
        if any((today - i.due_date).days > policy.plan_break_days_late for i in missed):
            return BreakReason.INSTALLMENT_LATE
        return None

    def break_(self) -> None:
        if self.status != PlanStatus.ACTIVE:
            raise ValueError(f"plan {self.id} is {self.status}: only a running plan can break")
        self.status = PlanStatus.BROKEN
        self.dirty = True

    def allocate(self, amount: Decimal) -> Decimal:
        """Pay installments in order with ``amount``; returns what was left over."""
        left = amount
        for inst in self.installments:
            if left <= 0:
                break
            take = min(inst.outstanding, left)
            if take <= 0:
                continue
            inst.paid += take
            left -= take
            if inst.outstanding == 0:
                inst.status = InstallmentStatus.PAID
            self.dirty = True
        if all(i.status == InstallmentStatus.PAID for i in self.installments):
            self.status = PlanStatus.COMPLETED
        return left


def equal_installments(
    total: Decimal, count: int, first_due_date: date, interval_days: int
) -> list[tuple[date, Decimal]]:
    """``count`` installments ``interval_days`` apart sharing ``total`` (cents to the last)."""
    if count < 1:
        raise InvalidField(FieldError("count", RULE, "must be at least 1"))
    if interval_days < 1:
        raise InvalidField(FieldError("interval_days", RULE, "must be at least 1"))
    share = (total / count).quantize(CENT, rounding=ROUND_DOWN)
    amounts = [share] * (count - 1) + [total - share * (count - 1)]
    return [(first_due_date + timedelta(days=interval_days * n), amounts[n]) for n in range(count)]
