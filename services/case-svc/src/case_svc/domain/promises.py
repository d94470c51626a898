"""Promises to pay, and the debtor-local instants their timers fall on.

A promise is the debtor's word to pay ``amount`` by ``due_date`` (a day of the
debtor's own calendar). It is *kept* when payments recorded while it is pending,
paid no later than its deadline, add up to its amount; it is *broken* when its
deadline passes first (the ``promise:<id>`` timer). The deadline is the end of
``due_date`` plus the contract's grace days, in the debtor's time zone
(``CasePolicy.promise_grace_days``, rule CASE-PROMISE).

The Case aggregate records the events (PromiseMade, PromiseKept, PromiseBroken);
this module holds the promise's own state and the calendar arithmetic.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from enum import StrEnum
from zoneinfo import ZoneInfo

RULE = "CASE-PROMISE"


class PromiseStatus(StrEnum):
    PENDING = "pending"
    KEPT = "kept"
    BROKEN = "broken"


def end_of_day(day: date, timezone: str, *, grace_days: int = 0) -> datetime:
    """The instant (UTC) the debtor's day ``day`` (plus ``grace_days``) ends: the next
    local midnight."""
    local = datetime.combine(day + timedelta(days=1 + grace_days), time(0), ZoneInfo(timezone))
    return local.astimezone(UTC)


def next_midnight(now: datetime, timezone: str) -> datetime:
    """The next midnight of the debtor's calendar after ``now`` (UTC), when their day turns."""
    today = now.astimezone(ZoneInfo(timezone)).date()
    return end_of_day(today, timezone)


@dataclass(eq=False)
class Promise:
    id: str
    case_id: str
    amount: Decimal
    due_date: date
    due_at: datetime  # the deadline: end of due_date plus grace, debtor-local, as UTC
    made_at: datetime
    agent_id: str | None = None
    paid: Decimal = Decimal("0.00")
    status: PromiseStatus = PromiseStatus.PENDING
    resolved_at: datetime | None = None
    # persistence bookkeeping (the repository inserts new and updates changed promises)
    new: bool = field(default=False, compare=False)
    dirty: bool = field(default=False, compare=False)

    @property
    def timer_key(self) -> str:
        return f"promise:{self.id}"

    @property
    def is_pending(self) -> bool:
        return self.status == PromiseStatus.PENDING

    @property
    def outstanding(self) -> Decimal:
        return max(self.amount - self.paid, Decimal("0.00"))

    def apply(self, amount: Decimal, paid_at: datetime) -> bool:
        """Count a payment towards the promise; True when that makes it kept."""
        if not self.is_pending or paid_at > self.due_at:
            return False
        self.paid += amount
        self.dirty = True
        if self.paid >= self.amount:
            self.status = PromiseStatus.KEPT
            self.resolved_at = paid_at
            return True
        return False

    def break_(self, at: datetime) -> None:
        self.status = PromiseStatus.BROKEN
        self.resolved_at = at
        self.dirty = True
