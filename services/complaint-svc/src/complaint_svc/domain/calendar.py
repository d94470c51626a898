"""Business-hours calendars for the SLA chain (COMP-SLA-*): "a calendar of business hours
is possible per step, 24x7 by default".

A calendar is the working days of the week, the working hours of a working day (one or
more windows, e.g. 09:00-12:00 and 13:30-18:00) in a time zone (Asia/Shanghai by
default), the holidays (local dates off whatever the weekday) and the make-up working
days (local dates worked whatever the weekday, e.g. a Saturday worked in exchange for a
holiday). A step counted in a calendar spends its time only while the calendar is open:
8 working hours from Friday 16:00 end on Monday 15:00 (09:00-18:00, Monday to Friday).

Pure functions on aware datetimes; results are in UTC.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

DEFAULT_TIMEZONE = "Asia/Shanghai"
# how far a calendar is searched for working time before it is declared to have none
HORIZON_DAYS = 3 * 366


class CalendarError(ValueError):
    """A calendar that cannot count time (no working time, bad hours)."""


@dataclass(frozen=True)
class BusinessCalendar:
    """Working days (ISO weekdays, Monday 1 .. Sunday 7), hours windows, zone, holidays."""

    working_days: frozenset[int] = frozenset({1, 2, 3, 4, 5})
    hours: tuple[tuple[time, time], ...] = ((time(9, 0), time(18, 0)),)
    timezone: str = DEFAULT_TIMEZONE
    holidays: frozenset[date] = frozenset()
    extra_working_days: frozenset[date] = frozenset()
    _zone: ZoneInfo = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.working_days <= set(range(1, 8)):
            raise CalendarError("working_days are ISO weekdays, 1 (Monday) to 7 (Sunday)")
        if not self.hours:
            raise CalendarError("a calendar needs at least one window of working hours")
        previous_end: time | None = None
        for start, end in self.hours:
            if not start < end:
                raise CalendarError(
                    f"working hours {start}-{end}: the start must be before the end"
                )
            if previous_end is not None and start < previous_end:
                raise CalendarError("working hours windows must be in order and not overlap")
            previous_end = end
        if self.holidays & self.extra_working_days:
            raise CalendarError("a date cannot be both a holiday and a make-up working day")
        try:
            zone = ZoneInfo(self.timezone)
        except (KeyError, ValueError, OSError):
            raise CalendarError(f"unknown time zone {self.timezone!r}") from None
        object.__setattr__(self, "_zone", zone)
        if not self.working_days and not self.extra_working_days:
            raise CalendarError("a calendar needs at least one working day")

    # -- queries -------------------------------------------------------------------------
    def is_working_day(self, day: date) -> bool:
        if day in self.extra_working_days:
            return True
        return day.isoweekday() in self.working_days and day not in self.holidays

    def windows(self, day: date) -> list[tuple[datetime, datetime]]:
        """The open intervals of local ``day``, as UTC instants (none on a day off)."""
        if not self.is_working_day(day):
            return []
        return [(self._instant(day, start), self._instant(day, end)) for start, end in self.hours]

    def is_open(self, at: datetime) -> bool:
        t = _utc(at)
        return any(a <= t < b for a, b in self.windows(self._local_day(t)))

    # -- arithmetic ----------------------------------------------------------------------
    def add(self, start: datetime, working: timedelta) -> datetime:
        """The instant when ``working`` time of this calendar has passed since ``start``.

        Time outside the working hours does not count; a start outside them counts from
        the next opening. A span that ends exactly at a closing ends there (18:00, not
        the next morning)."""
        if working < timedelta(0):
            raise ValueError("working time must not be negative")
        t = _utc(start)
        remaining = working
        for day in self._days(self._local_day(t), +1):
            for a, b in self.windows(day):
                if b <= t:
                    continue
                begin = max(a, t)
                available = b - begin
                if remaining <= available:
                    return begin + remaining
                remaining -= available
        raise CalendarError(f"no working time within {HORIZON_DAYS} days")

    def subtract(self, end: datetime, working: timedelta) -> datetime:
        """The instant ``working`` time of this calendar before ``end`` (``add`` reversed)."""
        if working < timedelta(0):
            raise ValueError("working time must not be negative")
        t = _utc(end)
        remaining = working
        for day in self._days(self._local_day(t), -1):
            for a, b in reversed(self.windows(day)):
                if a >= t:
                    continue
                finish = min(b, t)
                available = finish - a
                if remaining <= available:
                    return finish - remaining
                remaining -= available
        raise CalendarError(f"no working time within {HORIZON_DAYS} days")

    def working_between(self, start: datetime, end: datetime) -> timedelta:
        """The working time from ``start`` to ``end`` (zero if ``end`` is not later)."""
        a, b = _utc(start), _utc(end)
        if b <= a:
            return timedelta(0)
        total = timedelta(0)
        day, last = self._local_day(a), self._local_day(b)
        while day <= last:
            for wa, wb in self.windows(day):
                lo, hi = max(wa, a), min(wb, b)
                if hi > lo:
                    total += hi - lo
            day += timedelta(days=1)
        return total

    # -- helpers -------------------------------------------------------------------------
    def _instant(self, day: date, at: time) -> datetime:
        return datetime.combine(day, at, tzinfo=self._zone).astimezone(UTC)

    def _local_day(self, at: datetime) -> date:
        return at.astimezone(self._zone).date()

    def _days(self, first: date, step: int) -> Iterator[date]:
        day = first
        for _ in range(HORIZON_DAYS + 1):
            yield day
            day += timedelta(days=step)


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("a naive datetime has no instant: pass an aware one")
    return value.astimezone(UTC)
