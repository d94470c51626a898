"""The weekly sample's lifecycle (QA-SAMPLE): commit before the week, draw after it, verify.

The week is an ISO week (``2026-W49``) from Monday 00:00 to the next Monday 00:00 in
the policy's ``sample_timezone``. The records are the ``contact_events`` rows whose
event time falls in the week (record id = the contact event's id); a contact event that
arrives after the draw is not in that week's sample. A record's bucket is the one qa-svc
kept from its event, else ``"unknown"``. Risk agents are the agents named by an alert
whose window starts in the week, and the agents of substantiated complaints that no
earlier draw used (QA-FEEDBACK, ``qa_svc.service_layer.feedback.claim_risk_agents``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from prometheus_client import CollectorRegistry, Gauge
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from collect_common.db import UnitOfWork, dialect_insert
from qa_svc.adapters.tables import alerts, contact_events, sample_picks, sample_weeks
from qa_svc.domain import sampling
from qa_svc.domain.policy import QaPolicy
from qa_svc.service_layer.feedback import claim_risk_agents

WEEK = re.compile(r"^(\d{4})-W(\d{2})$")


class SampleMetrics:
    """Sample coverage for dashboards: ``qa_sample_records{week, part}``, part = population
    (the week's contact records), sampled (the random part) or risk (the risk picks). Set
    when a week is drawn and whenever a drawn week is read, by the replica that serves it."""

    def __init__(self, registry: CollectorRegistry, service: str) -> None:
        self.service = service
        self.records = Gauge(
            "qa_sample_records",
            "Contact records of a drawn week (QA-SAMPLE), by part",
            ["service", "week", "part"],
            registry=registry,
        )

    def show(self, week: str, *, population: int, sampled: int, risk: int) -> None:
        for part, value in (("population", population), ("sampled", sampled), ("risk", risk)):
            self.records.labels(self.service, week, part).set(value)


class SampleRefused(Exception):
    """Why a commitment or a draw is refused; ``status`` and ``code`` for the API."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code


def week_bounds(week: str, zone: str) -> tuple[datetime, datetime]:
    """UTC start (inclusive) and end (exclusive) of an ISO week in the zone."""
    m = WEEK.match(week)
    if m is None:
        raise ValueError(f"not an ISO week: {week!r} (expected e.g. 2026-W49)")
    try:
        monday = date.fromisocalendar(int(m.group(1)), int(m.group(2)), 1)
    except ValueError:
        raise ValueError(f"no such ISO week: {week!r}") from None
    tz = ZoneInfo(zone)
    start = datetime.combine(monday, time(0), tzinfo=tz)
    end = datetime.combine(monday + timedelta(days=7), time(0), tzinfo=tz)
    return start.astimezone(UTC), end.astimezone(UTC)


def _key_of(key: str) -> sampling.Stratum:
    bucket, _, channel = key.partition("/")
    return (bucket, channel)


async def commit_week(
    uow: UnitOfWork, policy: QaPolicy, *, week: str, by: str, now: datetime
) -> Any:
    """Generate and keep the week's seed; return the row (its ``commitment`` is public)."""
    start, end = week_bounds(week, policy.sample_timezone)
    if now >= start:
        raise SampleRefused(
            409, "week-started", f"week {week} started at {start.isoformat()}; too late to commit"
        )
    seed = sampling.new_seed()
    inserted = await uow.session.execute(
        dialect_insert(uow.session, sample_weeks)
        .values(
            week=week,
            starts_at=start,
            ends_at=end,
            seed=seed.hex(),
            commitment=sampling.commitment(seed),
            committed_by=by,
            committed_at=now,
        )
        .on_conflict_do_nothing(index_elements=["week"])
        .returning(sample_weeks.c.week)
    )
    if inserted.first() is None:
        raise SampleRefused(409, "already-committed", f"week {week} is already committed")
    return (
        await uow.session.execute(select(sample_weeks).where(sample_weeks.c.week == week))
    ).one()


async def week_records(
    session: AsyncSession, start: datetime, end: datetime
) -> list[sampling.Record]:
    rows = await session.execute(
        select(
            contact_events.c.event_id,
            contact_events.c.bucket,
            contact_events.c.channel,
            contact_events.c.agent_id,
        ).where(contact_events.c.at >= start, contact_events.c.at < end)
    )
    return [
        sampling.Record(r.event_id, (sampling.bucket_of(r.bucket), r.channel), r.agent_id)
        for r in rows
    ]


async def risk_agents(session: AsyncSession, start: datetime, end: datetime) -> set[str]:
    rows = await session.execute(
        select(alerts.c.agent_id)
        .where(
            alerts.c.agent_id.is_not(None),
            alerts.c.window_start >= start,
            alerts.c.window_start < end,
        )
        .distinct()
    )
    return {r.agent_id for r in rows}


async def draw_week(uow: UnitOfWork, policy: QaPolicy, *, week: str, by: str, now: datetime) -> Any:
    """Draw the committed week's sample, keep it and reveal the seed; return the week row."""
    session = uow.session
    row = (
        await session.execute(
            select(sample_weeks).where(sample_weeks.c.week == week).with_for_update()
        )
    ).first()
    if row is None:
        raise SampleRefused(404, "not-committed", f"week {week} has no commitment")
    if row.revealed_at is not None:
        raise SampleRefused(409, "already-drawn", f"week {week} was drawn already")
    if now < row.ends_at:
        raise SampleRefused(
            409, "week-not-over", f"week {week} ends at {row.ends_at.isoformat()}; draw after it"
        )
    seed = bytes.fromhex(row.seed)
    records = await week_records(session, row.starts_at, row.ends_at)
    drawn = sampling.sample(
        seed,
        records,
        policy.sample_rate,
        weights=policy.sample_weights,
        allocation=policy.sample_allocation,
        defect_estimates=policy.sample_defect_estimates,
        risk_agents=await risk_agents(session, row.starts_at, row.ends_at)
        | await claim_risk_agents(session, week),  # QA-FEEDBACK
        risk_per_agent=policy.sample_risk_per_agent,
    )
    agents = {r.id: r.agent_id for r in records}
    if drawn.picks:
        await session.execute(
            sample_picks.insert(),
            [
                {
                    "week": week,
                    "record_id": p.record_id,
                    "bucket": p.stratum[0],
                    "channel": p.stratum[1],
                    "score": f"{p.score:064x}",
                    "risk": p.risk,
                    "agent_id": agents.get(p.record_id),
                    "position": i,
                }
                for i, p in enumerate(drawn.picks)
            ],
        )
    await session.execute(
        sample_weeks.update()
        .where(sample_weeks.c.week == week)
        .values(
            rate=policy.sample_rate,
            allocation=policy.sample_allocation,
            population=json.dumps(
                {sampling.stratum_key(k): v for k, v in sorted(drawn.population.items())}
            ),
            sizes=json.dumps({sampling.stratum_key(k): v for k, v in sorted(drawn.sizes.items())}),
            drawn_by=by,
            revealed_at=now,
        )
    )
    return (await session.execute(select(sample_weeks).where(sample_weeks.c.week == week))).one()


@dataclass(frozen=True)
class WeekView:
    row: Any
    picks: list[Any]


async def load_week(session: AsyncSession, week: str) -> WeekView | None:
    row = (await session.execute(select(sample_weeks).where(sample_weeks.c.week == week))).first()
    if row is None:
        return None
    picks = (
        await session.execute(
            select(sample_picks)
            .where(sample_picks.c.week == week)
            .order_by(sample_picks.c.position)
        )
    ).all()
    return WeekView(row, list(picks))


def sizes_of(text: str | None) -> dict[sampling.Stratum, int]:
    return {_key_of(k): int(v) for k, v in json.loads(text or "{}").items()}


async def verify_week(session: AsyncSession, week: str) -> tuple[bool, list[str]]:
    """Recompute from the revealed seed and the week's records: (ok, problems)."""
    view = await load_week(session, week)
    if view is None:
        raise SampleRefused(404, "not-committed", f"week {week} has no commitment")
    row = view.row
    if row.revealed_at is None:
        raise SampleRefused(409, "not-drawn", f"week {week} is not drawn yet; the seed is secret")
    seed = bytes.fromhex(row.seed)
    records = await week_records(session, row.starts_at, row.ends_at)
    random_ids = [p.record_id for p in view.picks if not p.risk]
    problems: list[str] = []
    if sampling.commitment(seed) != row.commitment:
        problems.append("the revealed seed does not match the commitment")
    if not sampling.verify(seed, row.commitment, records, random_ids):
        problems.append("the random sample is not the keyed-hash selection of the week's records")
    by_stratum: dict[sampling.Stratum, int] = {}
    for p in view.picks:
        if not p.risk:
            by_stratum[(p.bucket, p.channel)] = by_stratum.get((p.bucket, p.channel), 0) + 1
    if by_stratum != {k: v for k, v in sizes_of(row.sizes).items() if v}:
        problems.append("the per-stratum sizes differ from the published ones")
    if sampling.population(records) != sizes_of(row.population):
        problems.append("the week's records differ from the population at the draw")
    return (not problems, problems)
