"""QA reports (QA-SAMPLE, QA-SCORE, QA-REALTIME), each one SQL aggregate.

- **Defect rates** per stratum over a range of drawn weeks, from the random part of the
  samples only (risk picks and re-checks never count): a reviewed record is defective when
  auto-failed or scored below the policy's ``defect_threshold`` (the effective score, after
  any supervisor's amendment). Each stratum gets a Wilson 95 % interval
  (``qa_svc.domain.sampling.wilson``). The overall rate is the stratified estimate
  ``Σ W_h p_h`` (``W_h = N_h / N`` from the weeks' populations) with a normal 95 % interval
  and the finite-population correction, over the strata that have a reviewed record;
  ``complete`` says whether every sampled stratum has one.
- **Scores per agent** over a period (by the time scored): count, mean, min, max,
  defects and auto-fails, all review kinds.
- **Scores per team** over a period, the same figures with the defect rate and the number
  of agents: each reviewed record counts for its agent's team as ``qa_agents`` knows it
  now (the latest ``case.assigned.v1``, see ``qa_svc.service_layer.agents``), not the
  team at the time of the contact. Records of agents whose team is not known (never
  assigned a case, or assigned without a team) and records naming no agent count under
  the team ``unknown``, so the teams' counts add up to every reviewed record.
- **Alerts per rule** (and check) raised in a period, with how many are in each status.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import Select, String, and_, case, func, literal_column, select
from sqlalchemy.ext.asyncio import AsyncSession

from qa_svc.adapters.agent_tables import qa_agents
from qa_svc.adapters.scoring_tables import review_tasks
from qa_svc.adapters.tables import alerts, sample_picks, sample_weeks
from qa_svc.domain import sampling
from qa_svc.domain.alerts import AlertStatus
from qa_svc.domain.scoring import ReviewStatus

Z95 = 1.959963984540054
CENT = Decimal("0.01")


def _defective(threshold: Decimal) -> Any:
    return case(
        (
            and_(
                review_tasks.c.status != ReviewStatus.OPEN.value,
                (review_tasks.c.auto_failed.is_(True)) | (review_tasks.c.score < threshold),
            ),
            1,
        ),
        else_=0,
    )


@dataclass(frozen=True, slots=True)
class StratumRate:
    stratum: sampling.Stratum
    population: int
    sampled: int
    reviewed: int
    defects: int
    rate: float | None
    low: float | None
    high: float | None


@dataclass(frozen=True, slots=True)
class DefectReport:
    weeks: list[str]
    threshold: Decimal
    strata: list[StratumRate]
    overall_rate: float | None
    overall_low: float | None
    overall_high: float | None
    complete: bool


async def defect_rates(
    session: AsyncSession, *, from_week: str, to_week: str, threshold: Decimal
) -> DefectReport:
    weeks = (
        await session.execute(
            select(sample_weeks.c.week, sample_weeks.c.population)
            .where(
                sample_weeks.c.week >= from_week,
                sample_weeks.c.week <= to_week,
                sample_weeks.c.revealed_at.is_not(None),
            )
            .order_by(sample_weeks.c.week)
        )
    ).all()
    population: dict[sampling.Stratum, int] = {}
    for w in weeks:
        for key, n in json.loads(w.population or "{}").items():
            bucket, _, channel = key.partition("/")
            population[(bucket, channel)] = population.get((bucket, channel), 0) + int(n)
    reviewed = case((review_tasks.c.status != ReviewStatus.OPEN.value, 1), else_=0)
    rows = (
        await session.execute(
            select(
                sample_picks.c.bucket,
                sample_picks.c.channel,
                func.count().label("sampled"),
                func.coalesce(func.sum(reviewed), 0).label("reviewed"),
                func.coalesce(func.sum(_defective(threshold)), 0).label("defects"),
            )
            .select_from(
                sample_picks.join(
                    sample_weeks, sample_weeks.c.week == sample_picks.c.week
                ).outerjoin(
                    review_tasks,
                    and_(
                        review_tasks.c.week == sample_picks.c.week,
                        review_tasks.c.record_id == sample_picks.c.record_id,
                    ),
                )
            )
            .where(
                sample_picks.c.risk.is_(False),
                sample_picks.c.week >= from_week,
                sample_picks.c.week <= to_week,
                sample_weeks.c.revealed_at.is_not(None),
            )
            .group_by(sample_picks.c.bucket, sample_picks.c.channel)
            .order_by(sample_picks.c.bucket, sample_picks.c.channel)
        )
    ).all()
    strata: list[StratumRate] = []
    for r in rows:
        n, d = int(r.reviewed), int(r.defects)
        low, high = sampling.wilson(d, n) if n else (None, None)
        strata.append(
            StratumRate(
                stratum=(r.bucket, r.channel),
                population=population.get((r.bucket, r.channel), 0),
                sampled=int(r.sampled),
                reviewed=n,
                defects=d,
                rate=d / n if n else None,
                low=low,
                high=high,
            )
        )
    rate, low, high = _stratified(strata)
    return DefectReport(
        weeks=[w.week for w in weeks],
        threshold=threshold,
        strata=strata,
        overall_rate=rate,
        overall_low=low,
        overall_high=high,
        complete=bool(strata) and all(s.reviewed > 0 for s in strata),
    )


def _stratified(strata: list[StratumRate]) -> tuple[float | None, float | None, float | None]:
    """``Σ W_h p_h`` and its normal 95 % interval (with the finite-population correction)."""
    used = [s for s in strata if s.reviewed > 0 and s.population > 0]
    total = sum(s.population for s in used)
    if not used or total == 0:
        return (None, None, None)
    estimate = 0.0
    variance = 0.0
    for s in used:
        w = s.population / total
        p = s.defects / s.reviewed
        fpc = max(0.0, 1 - s.reviewed / s.population)
        estimate += w * p
        if s.reviewed > 1:
            variance += w * w * fpc * p * (1 - p) / (s.reviewed - 1)
    half = Z95 * math.sqrt(variance)
    return (estimate, max(0.0, estimate - half), min(1.0, estimate + half))


@dataclass(frozen=True, slots=True)
class AgentScores:
    agent_id: str
    scored: int
    mean: Decimal
    low: Decimal
    high: Decimal
    defects: int
    auto_failed: int


def agent_scores_query(start: datetime, end: datetime, threshold: Decimal) -> Select[Any]:
    """Grouped by agent; the caller pages it by ``agent_id``."""
    return (
        select(
            review_tasks.c.agent_id,
            func.count().label("scored"),
            func.avg(review_tasks.c.score).label("mean"),
            func.min(review_tasks.c.score).label("low"),
            func.max(review_tasks.c.score).label("high"),
            func.sum(_defective(threshold)).label("defects"),
            func.sum(case((review_tasks.c.auto_failed.is_(True), 1), else_=0)).label("auto_failed"),
        )
        .where(
            review_tasks.c.agent_id.is_not(None),
            review_tasks.c.status != ReviewStatus.OPEN.value,
            review_tasks.c.scored_at >= start,
            review_tasks.c.scored_at < end,
        )
        .group_by(review_tasks.c.agent_id)
    )


def agent_scores_of(row: Any) -> AgentScores:
    return AgentScores(
        agent_id=row.agent_id,
        scored=int(row.scored),
        mean=Decimal(row.mean).quantize(CENT, rounding=ROUND_HALF_UP),
        low=Decimal(row.low),
        high=Decimal(row.high),
        defects=int(row.defects),
        auto_failed=int(row.auto_failed),
    )


UNKNOWN_TEAM = "unknown"

# Rendered inline, not as a parameter: PostgreSQL matches the selected expression to the
# GROUP BY one only when both are the same text.
TEAM = func.coalesce(qa_agents.c.team_id, literal_column(f"'{UNKNOWN_TEAM}'", String))


@dataclass(frozen=True, slots=True)
class TeamScores:
    team_id: str
    agents: int
    scored: int
    mean: Decimal
    low: Decimal
    high: Decimal
    defects: int
    defect_rate: float
    auto_failed: int


def team_scores_query(start: datetime, end: datetime, threshold: Decimal) -> Select[Any]:
    """Grouped by team (``TEAM``, ``unknown`` when not known); the caller pages it by ``TEAM``."""
    return (
        select(
            TEAM.label("team_id"),
            func.count(func.distinct(review_tasks.c.agent_id)).label("agents"),
            func.count().label("scored"),
            func.avg(review_tasks.c.score).label("mean"),
            func.min(review_tasks.c.score).label("low"),
            func.max(review_tasks.c.score).label("high"),
            func.sum(_defective(threshold)).label("defects"),
            func.sum(case((review_tasks.c.auto_failed.is_(True), 1), else_=0)).label("auto_failed"),
        )
        .select_from(
            review_tasks.outerjoin(qa_agents, qa_agents.c.agent_id == review_tasks.c.agent_id)
        )
        .where(
            review_tasks.c.status != ReviewStatus.OPEN.value,
            review_tasks.c.scored_at >= start,
            review_tasks.c.scored_at < end,
        )
        .group_by(TEAM)
    )


def team_scores_of(row: Any) -> TeamScores:
    scored, defects = int(row.scored), int(row.defects)
    return TeamScores(
        team_id=row.team_id,
        agents=int(row.agents),
        scored=scored,
        mean=Decimal(row.mean).quantize(CENT, rounding=ROUND_HALF_UP),
        low=Decimal(row.low),
        high=Decimal(row.high),
        defects=defects,
        defect_rate=defects / scored,
        auto_failed=int(row.auto_failed),
    )


@dataclass(frozen=True, slots=True)
class RuleAlerts:
    rule_id: str
    check: str
    raised: int
    by_status: dict[str, int]


async def alerts_per_rule(
    session: AsyncSession, start: datetime, end: datetime
) -> list[RuleAlerts]:
    statuses = list(AlertStatus)
    rows = (
        await session.execute(
            select(
                alerts.c.rule_id,
                alerts.c.kind,
                func.count().label("raised"),
                *(
                    func.sum(case((alerts.c.status == s.value, 1), else_=0)).label(s.value)
                    for s in statuses
                ),
            )
            .where(alerts.c.raised_at >= start, alerts.c.raised_at < end)
            .group_by(alerts.c.rule_id, alerts.c.kind)
            .order_by(alerts.c.rule_id, alerts.c.kind)
        )
    ).all()
    return [
        RuleAlerts(
            rule_id=r.rule_id,
            check=r.kind,
            raised=int(r.raised),
            by_status={s.value: int(getattr(r, s.value)) for s in statuses},
        )
        for r in rows
    ]
