"""Hardship repayment plans (CASE-HARDSHIP): installments, agreed and signed.

A plan is a schedule of installments (due date, amount) that adds up to the
case's balance or less, backed by the reference of the signed agreement.
Payments are allocated to the installments in order (the oldest unpaid first).
When an installment's day ends (plus the contract's grace days) unpaid, the
``installment:<plan_id>:<n>`` timer records it as missed (InstallmentMissed).
Once every installment is paid the plan is completed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from enum import StrEnum

from case_svc.domain.validation import FieldError, InvalidField

RULE = "CASE-HARDSHIP"
CENT = Decimal("0.01")


class PlanStatus(StrEnum):
    ACTIVE = "active"
    COMPLETED = "completed"


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
