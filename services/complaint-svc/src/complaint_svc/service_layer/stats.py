"""COMP-STATS: the weekly and monthly reports, SLA attainment, corrective actions and their
overdue gauge, and the read model the reports group by.

Reports are computed by the database (``adapters.stats_repository``). Weeks and months are
those of the policy's ``reporting_timezone``.

The read model (fed by ``case.imported.v1`` and ``case.bucket_changed.v1``): a case's region,
customer group and case type as the import tells them (codes, no personal data), and its
collection stage (bucket) over time. A complaint counts in the stage its case was in when
the complaint was accepted: the import's bucket holds until the first change, a change holds
from the start of its local day (the debtor's time zone) on.

The overdue gauge ``complaint_corrective_actions_overdue{service}`` is counted from the
database, so every replica reports the same figure: each refreshes it after its own writes
and, behind each scrape, at most every ``refresh_seconds`` (a scrape gets the count of the
previous refresh; the first scrape after a start begins the first count).
"""

from __future__ import annotations

import asyncio
import time
import uuid
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

import structlog
from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from collect_common.clock import Clock
from collect_common.db import UnitOfWork
from collect_common.events.types import CaseBucketChanged, CaseImported
from collect_common.runtime import ServiceRuntime
from collect_common.web.pagination import PageParams
from complaint_svc.adapters import stats_repository as sql
from complaint_svc.adapters.read_model import EARLIEST, CaseProfile, ReadModel
from complaint_svc.adapters.stats_repository import (
    LISTING_ORDER,
    ActionFilter,
    CorrectiveActionRepository,
    action_of,
    listing,
)
from complaint_svc.domain.model import STEPS, Channel, ComplaintType
from complaint_svc.domain.policy import ComplaintPolicy
from complaint_svc.domain.stats import (
    ActionStatus,
    Change,
    CorrectiveAction,
    Count,
    Finding,
    Period,
    Series,
    StepAttainment,
    counts_with_zeros,
    local_midnight,
    series_of,
)

log = structlog.get_logger("complaint_svc.stats")


def reporting_zone(policy: ComplaintPolicy) -> ZoneInfo:
    return ZoneInfo(policy.reporting_timezone)


# -- the read model -----------------------------------------------------------------------


async def case_imported(uow: UnitOfWork, event: CaseImported, now: datetime) -> None:
    """The case's dimensions, and its bucket from the beginning (until the first change)."""
    read_model = ReadModel(uow.session)
    await read_model.profile_case(
        CaseProfile(
            case_id=event.case_id,
            region=event.region,
            customer_group=event.customer_group,
            case_type=event.case_type,
            debtor_timezone=event.debtor_timezone,
        ),
        now,
    )
    await read_model.stage_from(event.case_id, EARLIEST, event.bucket)


async def case_bucket_changed(
    uow: UnitOfWork, event: CaseBucketChanged, policy: ComplaintPolicy
) -> None:
    """The new bucket holds from the start of its local day (the debtor's zone, else the
    reporting zone)."""
    read_model = ReadModel(uow.session)
    profile = await read_model.profile(event.case_id)
    zone = reporting_zone(policy)
    if profile is not None and profile.debtor_timezone:
        try:
            zone = ZoneInfo(profile.debtor_timezone)
        except (KeyError, ValueError):
            log.warning("unknown debtor time zone", case_id=event.case_id)
    await read_model.stage_from(event.case_id, local_midnight(event.as_of, zone), event.bucket)


# -- reports ------------------------------------------------------------------------------


@dataclass(frozen=True)
class WeeklyReport:
    week: Period
    timezone: str
    total: int
    by_type: list[Count]
    by_channel: list[Count]
    by_case_type: list[Count]


@dataclass(frozen=True)
class MonthlyReport:
    months: list[Period]
    timezone: str
    totals: list[int]
    by_region: list[Series]
    by_customer_group: list[Series]
    by_bucket: list[Series]


@dataclass(frozen=True)
class SlaReport:
    period: Period
    timezone: str
    steps: list[StepAttainment]


async def weekly_report(
    session: AsyncSession, policy: ComplaintPolicy, week: Period
) -> WeeklyReport:
    """rule: COMP-STATS. Complaints accepted in the week by type, channel and case type."""
    found = await sql.weekly_counts(session, week)
    return WeeklyReport(
        week=week,
        timezone=policy.reporting_timezone,
        total=await sql.count_accepted(session, week),
        by_type=counts_with_zeros(found["type"], tuple(t.value for t in ComplaintType)),
        by_channel=counts_with_zeros(found["channel"], tuple(c.value for c in Channel)),
        by_case_type=counts_with_zeros(found["case_type"], ()),
    )


async def monthly_report(
    session: AsyncSession, policy: ComplaintPolicy, months: list[Period]
) -> MonthlyReport:
    """rule: COMP-STATS. Complaints per month by region, customer group and collection stage."""
    found = await sql.monthly_counts(session, months)
    by = {d: series_of(found[d], months) for d in sql.MONTHLY_DIMENSIONS}
    totals = [sum(s.counts[i] for s in by["region"]) for i in range(len(months))]
    return MonthlyReport(
        months=months,
        timezone=policy.reporting_timezone,
        totals=totals,
        by_region=by["region"],
        by_customer_group=by["customer_group"],
        by_bucket=by["bucket"],
    )


async def sla_report(session: AsyncSession, policy: ComplaintPolicy, period: Period) -> SlaReport:
    """rule: COMP-SLA-*, COMP-STATS. Per step of the chain: completed in the period, of them
    within their deadline (a pause moves the deadline), and breaches recorded in it."""
    found = await sql.sla_counts(session, period)
    steps = []
    for step in STEPS:
        rule_id, completed, within, breached = found.get(step, (policy.rule_of_step(step), 0, 0, 0))
        steps.append(StepAttainment(step, rule_id, completed, within, breached))
    return SlaReport(period=period, timezone=policy.reporting_timezone, steps=steps)


# -- corrective actions -------------------------------------------------------------------


class ActionNotFound(LookupError):
    pass


class TicketNotFoundForAction(LookupError):
    pass


async def create_action(
    uow: UnitOfWork,
    *,
    ticket_id: str | None,
    finding: Finding | None,
    description: str,
    owner: str,
    deadline: datetime,
    actor: str,
    now: datetime,
) -> CorrectiveAction:
    """rule: COMP-STATS. A corrective action from a ticket (which must exist) or a finding."""
    repo = CorrectiveActionRepository(uow.session)
    action = CorrectiveAction.create(
        id=str(uuid.uuid4()),
        ticket_id=ticket_id,
        finding=finding,
        description=description,
        owner=owner,
        deadline=deadline,
        actor=actor,
        now=now,
    )
    if ticket_id is not None and not await repo.ticket_exists(ticket_id):
        raise TicketNotFoundForAction(ticket_id)
    await repo.add(action)
    return action


async def update_action(
    uow: UnitOfWork,
    action_id: str,
    *,
    actor: str,
    now: datetime,
    status: ActionStatus | None = None,
    owner: str | None = None,
    deadline: datetime | None = None,
    description: str | None = None,
) -> CorrectiveAction:
    """Move the status forward, hand over, move the deadline or reword; recorded with who
    and when. The row is locked, so two changes never interleave."""
    repo = CorrectiveActionRepository(uow.session)
    action = await repo.get(action_id, for_update=True)
    if action is None:
        raise ActionNotFound(action_id)
    if action.update(
        actor=actor,
        now=now,
        status=status,
        owner=owner,
        deadline=deadline,
        description=description,
    ):
        await repo.save(action)
    return action


async def get_action(
    session: AsyncSession, action_id: str
) -> tuple[CorrectiveAction, list[Change]]:
    repo = CorrectiveActionRepository(session)
    action = await repo.get(action_id)
    if action is None:
        raise ActionNotFound(action_id)
    return action, await repo.history(action_id)


async def list_actions(
    session: AsyncSession, page: PageParams, where: ActionFilter, now: datetime
) -> tuple[list[CorrectiveAction], str | None]:
    """One page of corrective actions by creation, and the cursor of the next."""
    rows = (await session.execute(page.keyset(listing(where, now), LISTING_ORDER))).mappings().all()
    items, next_cursor = page.page_of(rows, lambda r: (r["created_at"], r["id"]))
    return [action_of(r) for r in items], next_cursor


class OverdueGauge(Collector):
    """``complaint_corrective_actions_overdue{service}``: corrective actions past their
    deadline and not done, counted from the database (the same on every replica)."""

    NAME = "complaint_corrective_actions_overdue"
    HELP = "Corrective actions past their deadline and not done (COMP-STATS)"

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        clock: Clock,
        service: str,
        *,
        refresh_seconds: float = 15.0,
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._service = service
        self._refresh_seconds = refresh_seconds
        self._value: int | None = None
        self._refreshed_at = float("-inf")
        self._task: asyncio.Task[None] | None = None

    @property
    def value(self) -> int | None:
        """The last count (None before the first)."""
        return self._value

    async def refresh(self) -> int:
        """Count now (the injected clock) and keep the figure."""
        async with self._sessions() as session:
            count = await CorrectiveActionRepository(session).count_overdue(self._clock.now())
        self._value = count
        self._refreshed_at = time.monotonic()
        return count

    def describe(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(self.NAME, self.HELP, labels=["service"])

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(self.NAME, self.HELP, labels=["service"])
        if self._value is not None:
            family.add_metric([self._service], self._value)
        self._refresh_behind()
        yield family

    def _refresh_behind(self) -> None:
        """Start a count in the background if the last is stale (scrapes run in the loop)."""
        if self._task is not None and not self._task.done():
            return
        if time.monotonic() - self._refreshed_at < self._refresh_seconds:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._task = loop.create_task(self.refresh_quietly())

    async def refresh_quietly(self) -> None:
        """:meth:`refresh`, a failure logged (the gauge keeps its last figure)."""
        try:
            await self.refresh()
        except Exception as exc:  # the gauge keeps its last figure
            log.warning("cannot count overdue corrective actions", error=repr(exc))


_GAUGES: weakref.WeakKeyDictionary[CollectorRegistry, OverdueGauge] = weakref.WeakKeyDictionary()


def overdue_gauge(runtime: ServiceRuntime) -> OverdueGauge:
    """The runtime's overdue gauge, registered on its registry the first time."""
    gauge = _GAUGES.get(runtime.registry)
    if gauge is None:
        gauge = OverdueGauge(runtime.sessions, runtime.clock, runtime.service)
        runtime.registry.register(gauge)
        _GAUGES[runtime.registry] = gauge
    return gauge
