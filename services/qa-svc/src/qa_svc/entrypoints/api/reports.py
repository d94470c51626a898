"""QA reports for ``qa``, ``ops`` and the bank's ``auditor`` (SEC-AUDIT): defect rates per
stratum, scores per agent and per team, alerts per rule. See ``qa_svc.service_layer.reports``.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import AwareDatetime, BaseModel, Field

from collect_common.security.auth import Role
from collect_common.web.auth import require_roles
from collect_common.web.pagination import Page, PageQuery
from collect_common.web.problems import ProblemError
from qa_svc.adapters.scoring_tables import review_tasks
from qa_svc.entrypoints.api.common import RuntimeDep, policy_of
from qa_svc.service_layer.reports import (
    TEAM,
    UNKNOWN_TEAM,
    agent_scores_of,
    agent_scores_query,
    alerts_per_rule,
    defect_rates,
    team_scores_of,
    team_scores_query,
)
from qa_svc.service_layer.sampling import WEEK

router = APIRouter(
    prefix="/v1/reports",
    tags=["reports"],
    dependencies=[require_roles(Role.QA, Role.OPS, Role.AUDITOR)],
)


WeekQuery = Query(pattern=WEEK.pattern, examples=["2026-W49"])


def _period(start: datetime, end: datetime) -> None:
    if end <= start:
        raise ProblemError(422, "the period must end after it starts", field="to")


class StratumRateOut(BaseModel):
    stratum: str = Field(examples=["M1/call"])
    population: int = Field(description="Records of the stratum in the weeks")
    sampled: int = Field(description="Random picks")
    reviewed: int = Field(description="Random picks scored")
    defects: int
    rate: float | None
    ci_low: float | None = Field(description="Wilson 95 %")
    ci_high: float | None


class DefectRatesOut(BaseModel):
    weeks: list[str] = Field(description="Drawn weeks in the range")
    threshold: Decimal = Field(description="Below this score, or auto-failed: defective")
    strata: list[StratumRateOut]
    overall_rate: float | None = Field(description="Stratified estimate Σ W_h p_h")
    overall_ci_low: float | None
    overall_ci_high: float | None
    complete: bool = Field(description="Every sampled stratum has a reviewed record")


@router.get(
    "/defect-rates",
    response_model=DefectRatesOut,
    summary="Defect rate per stratum with its 95 % interval, from the random sample only",
)
async def defect_rate_report(
    runtime: RuntimeDep,
    from_week: Annotated[str, WeekQuery],
    to_week: Annotated[str | None, WeekQuery] = None,
) -> DefectRatesOut:
    if to_week is not None and to_week < from_week:
        raise ProblemError(422, "to_week comes before from_week", field="to_week")
    async with runtime.sessions() as session:
        report = await defect_rates(
            session,
            from_week=from_week,
            to_week=to_week or from_week,
            threshold=policy_of(runtime).defect_threshold,
        )
    return DefectRatesOut(
        weeks=report.weeks,
        threshold=report.threshold,
        strata=[
            StratumRateOut(
                stratum=f"{s.stratum[0]}/{s.stratum[1]}",
                population=s.population,
                sampled=s.sampled,
                reviewed=s.reviewed,
                defects=s.defects,
                rate=s.rate,
                ci_low=s.low,
                ci_high=s.high,
            )
            for s in report.strata
        ],
        overall_rate=report.overall_rate,
        overall_ci_low=report.overall_low,
        overall_ci_high=report.overall_high,
        complete=report.complete,
    )


class AgentScoresOut(BaseModel):
    agent_id: str
    scored: int
    mean: Decimal
    min: Decimal
    max: Decimal
    defects: int
    auto_failed: int


@router.get(
    "/agent-scores",
    response_model=Page[AgentScoresOut],
    summary="Scores per agent over a period (by time scored), paginated by agent",
)
async def agent_score_report(
    page: PageQuery,
    runtime: RuntimeDep,
    start: Annotated[AwareDatetime, Query(alias="from")],
    end: Annotated[AwareDatetime, Query(alias="to")],
) -> Page[AgentScoresOut]:
    _period(start, end)
    query = agent_scores_query(start, end, policy_of(runtime).defect_threshold)
    async with runtime.sessions() as session:
        rows = (await session.execute(page.keyset(query, [review_tasks.c.agent_id]))).all()
    items, next_cursor = page.page_of(rows, lambda r: (r.agent_id,))
    out = []
    for r in items:
        a = agent_scores_of(r)
        out.append(
            AgentScoresOut(
                agent_id=a.agent_id,
                scored=a.scored,
                mean=a.mean,
                min=a.low,
                max=a.high,
                defects=a.defects,
                auto_failed=a.auto_failed,
            )
        )
    return Page[AgentScoresOut](items=out, next_cursor=next_cursor)


class TeamScoresOut(BaseModel):
    team_id: str = Field(
        description=f"The agents' team as of their latest case assignment; `{UNKNOWN_TEAM}` "
        "when not known or no agent is named",
        examples=["team-north"],
    )
    agents: int = Field(description="Agents of the team with a reviewed record")
    scored: int = Field(description="Reviewed records")
    mean: Decimal
    min: Decimal
    max: Decimal
    defects: int = Field(description="Auto-failed or scored below the policy's threshold")
    defect_rate: float = Field(description="defects / scored")
    auto_failed: int


@router.get(
    "/team-scores",
    response_model=Page[TeamScoresOut],
    summary="Scores per team over a period (by time scored), paginated by team",
)
async def team_score_report(
    page: PageQuery,
    runtime: RuntimeDep,
    start: Annotated[AwareDatetime, Query(alias="from")],
    end: Annotated[AwareDatetime, Query(alias="to")],
) -> Page[TeamScoresOut]:
    _period(start, end)
    query = team_scores_query(start, end, policy_of(runtime).defect_threshold)
    async with runtime.sessions() as session:
        rows = (await session.execute(page.keyset(query, [TEAM]))).all()
    items, next_cursor = page.page_of(rows, lambda r: (r.team_id,))
    out = []
    for r in items:
        t = team_scores_of(r)
        out.append(
            TeamScoresOut(
                team_id=t.team_id,
                agents=t.agents,
                scored=t.scored,
                mean=t.mean,
                min=t.low,
                max=t.high,
                defects=t.defects,
                defect_rate=t.defect_rate,
                auto_failed=t.auto_failed,
            )
        )
    return Page[TeamScoresOut](items=out, next_cursor=next_cursor)


class RuleAlertsOut(BaseModel):
    rule_id: str
    check: str
    raised: int
    by_status: dict[str, int]


class AlertsReportOut(BaseModel):
    start: datetime
    end: datetime
    rules: list[RuleAlertsOut]


@router.get(
    "/alerts",
    response_model=AlertsReportOut,
    summary="Alerts raised per rule and check over a period, by status",
)
async def alert_report(
    runtime: RuntimeDep,
    start: Annotated[AwareDatetime, Query(alias="from")],
    end: Annotated[AwareDatetime, Query(alias="to")],
) -> AlertsReportOut:
    _period(start, end)
    async with runtime.sessions() as session:
        rows = await alerts_per_rule(session, start, end)
    return AlertsReportOut(
        start=start,
        end=end,
        rules=[
            RuleAlertsOut(rule_id=r.rule_id, check=r.check, raised=r.raised, by_status=r.by_status)
            for r in rows
        ],
    )
