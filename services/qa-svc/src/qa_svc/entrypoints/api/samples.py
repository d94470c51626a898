"""The verifiable weekly sample (QA-SAMPLE): commit, draw, read, verify.

Commit and draw are QA's (role ``qa``); reading and verifying also the bank's
``auditor``. The seed is never returned before the draw reveals it.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, Field

from collect_common.runtime import ServiceRuntime
from collect_common.security.auth import Principal, Role
from collect_common.web.auth import require_roles
from collect_common.web.problems import ProblemError
from qa_svc.domain.policy import QaPolicy
from qa_svc.domain.sampling import RULE
from qa_svc.service_layer.live_rules import LiveRules
from qa_svc.service_layer.sampling import (
    WEEK,
    SampleMetrics,
    SampleRefused,
    commit_week,
    draw_week,
    load_week,
    sizes_of,
    verify_week,
)

router = APIRouter(prefix="/v1/samples", tags=["samples"])
WeekPath = Path(pattern=WEEK.pattern, examples=["2026-W49"])


def _runtime(request: Request) -> ServiceRuntime:
    runtime: ServiceRuntime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[ServiceRuntime, Depends(_runtime)]
QaOnly = Annotated[Principal, require_roles(Role.QA)]
READERS = [require_roles(Role.QA, Role.AUDITOR)]


def _policy(runtime: ServiceRuntime) -> QaPolicy:
    policy: QaPolicy = runtime.context_of(LiveRules).policy
    return policy


def _refused(exc: SampleRefused) -> ProblemError:
    return ProblemError(exc.status, str(exc), slug=exc.code, rule=RULE, reason=exc.code)


class CommitmentIn(BaseModel):
    week: str = Field(pattern=WEEK.pattern, examples=["2026-W49"], description="ISO week")


class CommitmentOut(BaseModel):
    week: str
    starts_at: datetime
    ends_at: datetime
    commitment: str = Field(description="SHA-256 of the week's secret seed, hex")
    committed_at: datetime


class StratumOut(BaseModel):
    stratum: str = Field(description="bucket/channel", examples=["M1/call"])
    population: int
    sampled: int = Field(description="Random part only")


class PickOut(BaseModel):
    record_id: str = Field(description="The contact event's id")
    stratum: str
    score: str = Field(description="HMAC-SHA256(seed, record_id), hex")
    risk: bool = Field(description="A risk pick, added on top; not in defect rates")


class SampleOut(BaseModel):
    week: str
    starts_at: datetime
    ends_at: datetime
    commitment: str
    seed: str | None = Field(description="Hex; none until the draw reveals it")
    revealed_at: datetime | None
    rate: Decimal | None
    allocation: str | None
    strata: list[StratumOut]
    random_ids: list[str]
    risk_ids: list[str]
    picks: list[PickOut]


class VerifyOut(BaseModel):
    week: str
    ok: bool
    problems: list[str]


@router.post(
    "/commitments",
    response_model=CommitmentOut,
    status_code=201,
    summary="Commit to a week's secret seed before the week starts; returns its hash",
    responses={409: {"description": "The week has started or is already committed"}},
)
async def commit(body: CommitmentIn, runtime: RuntimeDep, who: QaOnly) -> CommitmentOut:
    try:
        async with runtime.uow() as uow:
            row = await commit_week(
                uow, _policy(runtime), week=body.week, by=who.subject, now=runtime.clock.now()
            )
            await uow.commit()
    except SampleRefused as exc:
        raise _refused(exc) from None
    except ValueError as exc:
        raise ProblemError(422, str(exc), field="week") from None
    return CommitmentOut(
        week=row.week,
        starts_at=row.starts_at,
        ends_at=row.ends_at,
        commitment=row.commitment,
        committed_at=row.committed_at,
    )


async def _view(runtime: ServiceRuntime, request: Request, week: str) -> SampleOut:
    async with runtime.sessions() as session:
        view = await load_week(session, week)
    if view is None:
        raise ProblemError(404, f"week {week} has no commitment", field="week")
    row = view.row
    population = sizes_of(row.population)
    sizes = sizes_of(row.sizes)
    strata = [
        StratumOut(stratum=f"{b}/{c}", population=n, sampled=sizes.get((b, c), 0))
        for (b, c), n in sorted(population.items())
    ]
    picks = [
        PickOut(
            record_id=p.record_id, stratum=f"{p.bucket}/{p.channel}", score=p.score, risk=p.risk
        )
        for p in view.picks
    ]
    revealed = row.revealed_at is not None
    if revealed:
        metrics: SampleMetrics | None = getattr(request.app.state, "sample_metrics", None)
        if metrics is not None:
            metrics.show(
                week,
                population=sum(population.values()),
                sampled=sum(not p.risk for p in picks),
                risk=sum(p.risk for p in picks),
            )
    return SampleOut(
        week=row.week,
        starts_at=row.starts_at,
        ends_at=row.ends_at,
        commitment=row.commitment,
        seed=row.seed if revealed else None,
        revealed_at=row.revealed_at,
        rate=row.rate,
        allocation=row.allocation,
        strata=strata,
        random_ids=[p.record_id for p in picks if not p.risk],
        risk_ids=[p.record_id for p in picks if p.risk],
        picks=picks,
    )


@router.post(
    "/{week}/draw",
    response_model=SampleOut,
    summary="After the week ends: draw its sample, keep it and reveal the seed",
    responses={
        404: {"description": "The week has no commitment"},
        409: {"description": "The week is not over, or was drawn already"},
    },
)
async def draw(
    runtime: RuntimeDep, who: QaOnly, request: Request, week: str = WeekPath
) -> SampleOut:
    try:
        async with runtime.uow() as uow:
            await draw_week(
                uow, _policy(runtime), week=week, by=who.subject, now=runtime.clock.now()
            )
            await uow.commit()
    except SampleRefused as exc:
        raise _refused(exc) from None
    return await _view(runtime, request, week)


@router.get(
    "/{week}",
    response_model=SampleOut,
    summary="The week's commitment, the seed once revealed, strata and sampled records",
    dependencies=READERS,
)
async def read(runtime: RuntimeDep, request: Request, week: str = WeekPath) -> SampleOut:
    return await _view(runtime, request, week)


@router.get(
    "/{week}/verify",
    response_model=VerifyOut,
    summary="Recompute the sample from the revealed seed and the week's records",
    dependencies=READERS,
    responses={409: {"description": "Not drawn yet"}},
)
async def verify(runtime: RuntimeDep, week: str = WeekPath) -> VerifyOut:
    try:
        async with runtime.sessions() as session:
            ok, problems = await verify_week(session, week)
    except SampleRefused as exc:
        raise _refused(exc) from None
    return VerifyOut(week=week, ok=ok, problems=problems)
