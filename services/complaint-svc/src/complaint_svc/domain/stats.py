"""COMP-STATS in the domain: report periods and corrective actions.

Report periods are local to the policy's reporting time zone (``reporting_timezone``,
Asia/Shanghai by default): an ISO week runs from Monday 00:00 to the next Monday 00:00
there, a month from its first day's 00:00 to the next month's. Each period is kept as
the UTC instants of those boundaries, so the database compares instants and the same
query is right on PostgreSQL and SQLite whatever their own time zone.

A corrective action (COMP-STATS: "corrective actions with owner and deadline, tracked to
done") comes from a ticket or from a finding of a report. Its status only moves forward,
``open -> in_progress -> done``; done is final. It is overdue when its deadline has
passed and it is not done.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any, Final, Literal
from zoneinfo import ZoneInfo

RULE: Final = "COMP-STATS"


class StatsInputError(ValueError):
    """A report or corrective-action input that cannot be used (422 naming ``field``)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


# -- periods ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    """``[start, end)`` in UTC; ``label`` as the report names it (``2026-W48``, ``2026-11``)."""

    label: str
    start: datetime
    end: datetime


_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
YEARS: Final = range(1970, 9999)
"""The years a report may concern (the calendar's ends stay out of reach)."""


def _check_year(year: int, field: str) -> None:
    if year not in YEARS:
        raise StatsInputError(field, f"reports cover the years {YEARS[0]} to {YEARS[-1]}")


def local_midnight(day: date, zone: ZoneInfo) -> datetime:
    """The instant (UTC) the local day ``day`` begins in ``zone``."""
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


def local_day(at: datetime, zone: ZoneInfo) -> date:
    return at.astimezone(zone).date()


def iso_week(label: str, zone: ZoneInfo) -> Period:
    """The ISO week ``YYYY-Www`` (Monday first) in ``zone``."""
    match = _WEEK.match(label)
    if match is None:
        raise StatsInputError("week", f"{label!r} is not an ISO week such as 2026-W48")
    year, week = int(match[1]), int(match[2])
    _check_year(year, "week")
    try:
        monday = date.fromisocalendar(year, week, 1)
    except ValueError:
        raise StatsInputError("week", f"{year} has no ISO week {week}") from None
    return Period(
        label, local_midnight(monday, zone), local_midnight(monday + timedelta(days=7), zone)
    )


def week_of(at: datetime, zone: ZoneInfo) -> Period:
    """The ISO week ``at`` falls in, in ``zone``."""
    year, week, _ = local_day(at, zone).isocalendar()
    return iso_week(f"{year:04d}-W{week:02d}", zone)


def month(year: int, number: int, zone: ZoneInfo) -> Period:
    first = date(year, number, 1)
    following = date(year + number // 12, number % 12 + 1, 1)
    return Period(
        f"{year:04d}-{number:02d}", local_midnight(first, zone), local_midnight(following, zone)
    )


def parse_month(label: str) -> tuple[int, int]:
    match = _MONTH.match(label)
    if match is None or not 1 <= int(match[2]) <= 12:
        raise StatsInputError("through", f"{label!r} is not a month such as 2026-11")
    _check_year(int(match[1]), "through")
    return int(match[1]), int(match[2])


def months_through(last: tuple[int, int], count: int, zone: ZoneInfo) -> list[Period]:
    """``count`` consecutive months ending with ``last`` (year, month), oldest first."""
    year, number = last
    index = year * 12 + number - 1 - (count - 1)
    _check_year(index // 12, "months")
    out = []
    for i in range(index, index + count):
        out.append(month(i // 12, i % 12 + 1, zone))
    return out


def local_days(first: date, last: date, zone: ZoneInfo) -> Period:
    """The local days ``first`` to ``last`` inclusive, in ``zone``."""
    if last < first:
        raise StatsInputError("to", f"the period ends ({last}) before it begins ({first})")
    _check_year(first.year, "from")
    _check_year(last.year, "to")
    return Period(
        f"{first.isoformat()}..{last.isoformat()}",
        local_midnight(first, zone),
        local_midnight(last + timedelta(days=1), zone),
    )


# -- report rows --------------------------------------------------------------------------

UNKNOWN: Final = "unknown"
"""The key of complaints without the dimension (no case, or a case not yet profiled)."""


@dataclass(frozen=True)
class Count:
    key: str
    count: int


@dataclass(frozen=True)
class Series:
    """One key of a monthly trend: its count in each month of the report, oldest first."""

    key: str
    counts: list[int]

    @property
    def total(self) -> int:
        return sum(self.counts)


@dataclass(frozen=True)
class StepAttainment:
    """An SLA step over a period: steps completed in it, how many within their deadline,
    and the breaches recorded in it."""

    step: str
    rule_id: str
    completed: int
    within_sla: int
    breached: int

    @property
    def attainment(self) -> float | None:
        """within_sla / completed (None when nothing was completed)."""
        return None if self.completed == 0 else round(self.within_sla / self.completed, 4)


def counts_with_zeros(found: dict[str | None, int], known: tuple[str, ...]) -> list[Count]:
    """Every ``known`` key (0 if absent), then the others found, largest first; a None key
    is :data:`UNKNOWN`."""
    merged: dict[str, int] = {k: 0 for k in known}
    for key, n in found.items():
        name = UNKNOWN if key is None else key
        merged[name] = merged.get(name, 0) + n
    extra = sorted(
        ((k, n) for k, n in merged.items() if k not in known), key=lambda kv: (-kv[1], kv[0])
    )
    return [Count(k, merged[k]) for k in known] + [Count(k, n) for k, n in extra]


def series_of(found: dict[tuple[str, str | None], int], months: list[Period]) -> list[Series]:
    """Rows (month label, key) -> count as one series per key, largest total first."""
    index = {p.label: i for i, p in enumerate(months)}
    by_key: dict[str, list[int]] = {}
    for (label, key), n in found.items():
        counts = by_key.setdefault(UNKNOWN if key is None else key, [0] * len(months))
        counts[index[label]] += n
    series = [Series(k, c) for k, c in by_key.items()]
    return sorted(series, key=lambda s: (-s.total, s.key))


# -- corrective actions -------------------------------------------------------------------


class ActionStatus(StrEnum):
    OPEN = "open"
    IN_PROGRESS = "in_progress"
    DONE = "done"


NEXT_STATUS: Final[dict[ActionStatus, ActionStatus]] = {
    ActionStatus.OPEN: ActionStatus.IN_PROGRESS,
    ActionStatus.IN_PROGRESS: ActionStatus.DONE,
}

Report = Literal["weekly", "monthly", "sla"]


class ActionStateError(Exception):
    """A change the action's status does not allow (409, naming the current status)."""

    def __init__(self, current: ActionStatus, detail: str) -> None:
        super().__init__(detail)
        self.current = current


@dataclass(frozen=True)
class Finding:
    """What a report showed that calls for action: which report and period, and the
    dimension and key it concerns (``type``/``attitude``, ``region``/``310000`` ...)."""

    report: Report
    period: str
    dimension: str | None = None
    key: str | None = None
    observation: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "report": self.report,
            "period": self.period,
            "dimension": self.dimension,
            "key": self.key,
            "observation": self.observation,
        }


@dataclass
class CorrectiveAction:
    id: str
    ticket_id: str | None
    finding: Finding | None
    description: str
    owner: str
    deadline: datetime
    status: ActionStatus
    created_by: str
    created_at: datetime
    updated_at: datetime
    done_at: datetime | None = None
    changes: list[Change] = field(default_factory=list)

    @property
    def source(self) -> str:
        return "ticket" if self.ticket_id is not None else "finding"

    @classmethod
    def create(
        cls,
        *,
        id: str,
        ticket_id: str | None,
        finding: Finding | None,
        description: str,
        owner: str,
        deadline: datetime,
        actor: str,
        now: datetime,
    ) -> CorrectiveAction:
        """rule: COMP-STATS. From exactly one of a ticket or a finding; the deadline is
        ahead of now."""
        if (ticket_id is None) == (finding is None):
            raise StatsInputError(
                "ticket_id", "a corrective action comes from a ticket or from a finding (one)"
            )
        _check_deadline(deadline, now)
        action = cls(
            id=id,
            ticket_id=ticket_id,
            finding=finding,
            description=description,
            owner=owner,
            deadline=deadline,
            status=ActionStatus.OPEN,
            created_by=actor,
            created_at=now,
            updated_at=now,
        )
        action.changes.append(
            Change(
                at=now,
                actor=actor,
                kind="created",
                fields={
                    "status": [None, ActionStatus.OPEN.value],
                    "owner": [None, owner],
                    "deadline": [None, deadline.isoformat()],
                },
            )
        )
        return action

    def overdue(self, now: datetime) -> bool:
        """Past its deadline and not done."""
        return self.status is not ActionStatus.DONE and now > self.deadline

    def update(
        self,
        *,
        actor: str,
        now: datetime,
        status: ActionStatus | None = None,
        owner: str | None = None,
        deadline: datetime | None = None,
        description: str | None = None,
    ) -> Change | None:
        """Apply what changed and record it (None: nothing changed). A done action takes no
        change; the status moves one step forward only."""
        if self.status is ActionStatus.DONE:
            raise ActionStateError(self.status, "a done corrective action takes no change")
        fields: dict[str, list[str | None]] = {}
        if status is not None and status is not self.status:
            if NEXT_STATUS.get(self.status) is not status:
                raise ActionStateError(
                    self.status,
                    f"cannot move a corrective action from {self.status} to {status}; "
                    "it moves open -> in_progress -> done",
                )
            fields["status"] = [self.status.value, status.value]
        if owner is not None and owner != self.owner:
            fields["owner"] = [self.owner, owner]
        if deadline is not None and deadline != self.deadline:
            _check_deadline(deadline, now)
            fields["deadline"] = [self.deadline.isoformat(), deadline.isoformat()]
        if description is not None and description != self.description:
            fields["description"] = [None, None]  # named, its text stays in the action
        if not fields:
            return None
        if "status" in fields:
            assert status is not None
            self.status = status
            if status is ActionStatus.DONE:
                self.done_at = now
        if "owner" in fields:
            assert owner is not None
            self.owner = owner
        if "deadline" in fields:
            assert deadline is not None
            self.deadline = deadline
        if "description" in fields:
            assert description is not None
            self.description = description
        self.updated_at = now
        change = Change(at=now, actor=actor, kind="updated", fields=fields)
        self.changes.append(change)
        return change


@dataclass(frozen=True)
class Change:
    """Who changed what on a corrective action, and when: ``fields`` maps a field to its
    old and new value (a description's text is not copied)."""

    at: datetime
    actor: str
    kind: str
    fields: dict[str, list[str | None]]


def _check_deadline(deadline: datetime, now: datetime) -> None:
    if deadline.tzinfo is None:
        raise StatsInputError("deadline", "the deadline needs its time zone")
    if deadline <= now:
        raise StatsInputError("deadline", "the deadline must be in the future")
