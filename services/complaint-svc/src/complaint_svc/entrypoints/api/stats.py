"""Complaint statistics and corrective actions (COMP-STATS).

Reports (roles ``ops``, ``auditor``): weekly counts by type, channel and case type; monthly
trends by region, customer group and collection stage; SLA attainment per step. Weeks and
months are those of the policy's reporting time zone.

Corrective actions (written by ``ops`` and ``complaint``, read by them and ``auditor``):
from a ticket or a report's finding, with owner and deadline, tracked to done; every change
records who made it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from typing import Annotated, Any, Literal, Self

from fastapi import APIRouter, Query, Response
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel, Field, model_validator

from collect_common.db import UnitOfWork
from collect_common.security.auth import Principal, Role
from collect_common.web.auth import require_roles
from collect_common.web.pagination import Page, PageQuery
from collect_common.web.problems import PROBLEM_JSON, ProblemError
from complaint_svc.adapters.stats_repository import ActionFilter
from complaint_svc.domain.stats import (
    RULE,
    ActionStateError,
    ActionStatus,
    Change,
    CorrectiveAction,
    Finding,
    Period,
    Series,
    StatsInputError,
    iso_week,
    local_day,
    local_days,
    months_through,
    parse_month,
    week_of,
)
from complaint_svc.entrypoints.api.deps import ContextDep, RuntimeDep
from complaint_svc.entrypoints.api.idempotent import PostDep
from complaint_svc.service_layer import stats
from complaint_svc.service_layer.stats import (
    ActionNotFound,
    TicketNotFoundForAction,
    overdue_gauge,
    reporting_zone,
)

router = APIRouter()
ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"content": {PROBLEM_JSON: {}}},
    409: {"content": {PROBLEM_JSON: {}}},
    422: {"content": {PROBLEM_JSON: {}}},
}
READERS = require_roles(Role.OPS, Role.AUDITOR)
ActionReader = Annotated[Principal, require_roles(Role.OPS, Role.COMPLAINT, Role.AUDITOR)]
ActionWriter = Annotated[Principal, require_roles(Role.OPS, Role.COMPLAINT)]


@contextmanager
def _as_problems() -> Iterator[None]:
    try:
        yield
    except StatsInputError as exc:
        raise ProblemError(422, str(exc), field=exc.field, rule=RULE) from None
    except ActionNotFound as exc:
        raise ProblemError(404, f"no corrective action {exc}", field="action_id") from None
    except TicketNotFoundForAction as exc:
        raise ProblemError(422, f"no ticket {exc}", field="ticket_id", rule=RULE) from None
    except ActionStateError as exc:
        raise ProblemError(
            409, str(exc), slug="action-state", rule=RULE, current_status=exc.current.value
        ) from None


# -- shapes -------------------------------------------------------------------------------


class CountOut(BaseModel):
    key: str = Field(description="The dimension's value; 'unknown' when a ticket has none")
    count: int


class WeeklyOut(BaseModel):
    week: str = Field(examples=["2026-W48"])
    timezone: str = Field(examples=["Asia/Shanghai"])
    start: datetime = Field(description="Monday 00:00 in the reporting time zone")
    end: datetime = Field(description="The next Monday 00:00 (exclusive)")
    total: int
    by_type: list[CountOut]
    by_channel: list[CountOut]
    by_case_type: list[CountOut]


class SeriesOut(BaseModel):
    key: str
    counts: list[int] = Field(description="One count per month of the report, oldest first")
    total: int

    @classmethod
    def of(cls, s: Series) -> Self:
        return cls(key=s.key, counts=s.counts, total=s.total)


class MonthOut(BaseModel):
    month: str = Field(examples=["2026-11"])
    start: datetime
    end: datetime


class MonthlyOut(BaseModel):
    timezone: str
    months: list[MonthOut]
    totals: list[int]
    by_region: list[SeriesOut]
    by_customer_group: list[SeriesOut]
    by_bucket: list[SeriesOut] = Field(
        description="The case's collection stage when the complaint was accepted"
    )


class StepOut(BaseModel):
    step: str
    rule: str
    completed: int = Field(description="Steps completed in the period")
    within_sla: int = Field(description="Of those, completed by their deadline")
    attainment: float | None = Field(description="within_sla / completed; null if none")
    breached: int = Field(description="Breaches recorded in the period")


class SlaOut(BaseModel):
    timezone: str
    start: datetime
    end: datetime
    steps: list[StepOut]


class FindingIn(BaseModel):
    report: Literal["weekly", "monthly", "sla"]
    period: str = Field(min_length=1, max_length=40, examples=["2026-W48"])
    dimension: str | None = Field(default=None, max_length=40, examples=["type"])
    key: str | None = Field(default=None, max_length=64, examples=["attitude"])
    observation: str | None = Field(
        default=None, max_length=500, examples=["attitude complaints doubled on last week"]
    )


class ActionIn(BaseModel):
    """From a ticket or from a report's finding (exactly one)."""

    ticket_id: str | None = Field(default=None, max_length=36)
    finding: FindingIn | None = None
    description: str = Field(min_length=1, max_length=4000)
    owner: str = Field(min_length=1, max_length=128, examples=["team-lead-7"])
    deadline: AwareDatetime

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        if (self.ticket_id is None) == (self.finding is None):
            raise ValueError("give ticket_id or finding (one of them)")
        return self


class ActionPatch(BaseModel):
    status: Literal["open", "in_progress", "done"] | None = None
    owner: str | None = Field(default=None, min_length=1, max_length=128)
    deadline: AwareDatetime | None = None
    description: str | None = Field(default=None, min_length=1, max_length=4000)


class FindingOut(BaseModel):
    report: str
    period: str
    dimension: str | None
    key: str | None
    observation: str | None


class ActionOut(BaseModel):
    id: str
    source: Literal["ticket", "finding"]
    ticket_id: str | None
    finding: FindingOut | None
    description: str
    owner: str
    deadline: datetime
    status: Literal["open", "in_progress", "done"]
    overdue: bool = Field(description="Past the deadline and not done")
    created_by: str
    created_at: datetime
    updated_at: datetime
    done_at: datetime | None

    @classmethod
    def of(cls, a: CorrectiveAction, now: datetime) -> Self:
        finding = None if a.finding is None else FindingOut(**a.finding.as_dict())
        return cls(
            id=a.id,
            source="ticket" if a.ticket_id is not None else "finding",
            ticket_id=a.ticket_id,
            finding=finding,
            description=a.description,
            owner=a.owner,
            deadline=a.deadline,
            status=a.status.value,
            overdue=a.overdue(now),
            created_by=a.created_by,
            created_at=a.created_at,
            updated_at=a.updated_at,
            done_at=a.done_at,
        )


class ChangeOut(BaseModel):
    at: datetime
    actor: str = Field(description="Who made the change (the caller's subject)")
    kind: Literal["created", "updated"]
    changes: dict[str, list[str | None]] = Field(
        description="field -> [old, new]; a changed description is named, not copied"
    )

    @classmethod
    def of(cls, c: Change) -> Self:
        return cls(at=c.at, actor=c.actor, kind=c.kind, changes=c.fields)  # type: ignore[arg-type]


class ActionDetailOut(ActionOut):
    history: list[ChangeOut]


# -- reports ------------------------------------------------------------------------------


@router.get(
    "/v1/stats/weekly",
    response_model=WeeklyOut,
    responses=ERRORS,
    summary="Complaints of an ISO week by type, channel and case type (COMP-STATS)",
    tags=["statistics"],
    dependencies=[READERS],
)
async def get_weekly(
    ctx: ContextDep,
    runtime: RuntimeDep,
    week: Annotated[
        str | None,
        Query(
            max_length=8,
            description="ISO week, e.g. 2026-W48; omitted: the current week",
            examples=["2026-W48"],
        ),
    ] = None,
) -> WeeklyOut:
    zone = reporting_zone(ctx.policy)
    with _as_problems():
        period = week_of(runtime.clock.now(), zone) if week is None else iso_week(week, zone)
    async with runtime.sessions() as session:
        report = await stats.weekly_report(session, ctx.policy, period)
    return WeeklyOut(
        week=period.label,
        timezone=report.timezone,
        start=period.start,
        end=period.end,
        total=report.total,
        by_type=[CountOut(key=c.key, count=c.count) for c in report.by_type],
        by_channel=[CountOut(key=c.key, count=c.count) for c in report.by_channel],
        by_case_type=[CountOut(key=c.key, count=c.count) for c in report.by_case_type],
    )


@router.get(
    "/v1/stats/monthly",
    response_model=MonthlyOut,
    responses=ERRORS,
    summary="Monthly trend by region, customer group and collection stage (COMP-STATS)",
    tags=["statistics"],
    dependencies=[READERS],
)
async def get_monthly(
    ctx: ContextDep,
    runtime: RuntimeDep,
    months: Annotated[
        int, Query(ge=1, le=120, description="How many months, up to the policy's maximum")
    ] = 6,
    through: Annotated[
        str | None,
        Query(
            max_length=7,
            description="The last month, e.g. 2026-11; omitted: the current month",
            examples=["2026-11"],
        ),
    ] = None,
) -> MonthlyOut:
    policy = ctx.policy
    zone = reporting_zone(policy)
    if months > policy.trend_max_months:
        raise ProblemError(
            422,
            f"at most {policy.trend_max_months} months per report",
            field="months",
            rule=policy.rule_of("trend_max_months"),
        )
    with _as_problems():
        if through is None:
            today = local_day(runtime.clock.now(), zone)
            last = (today.year, today.month)
        else:
            last = parse_month(through)
        periods = months_through(last, months, zone)
    async with runtime.sessions() as session:
        report = await stats.monthly_report(session, policy, periods)
    return MonthlyOut(
        timezone=report.timezone,
        months=[MonthOut(month=p.label, start=p.start, end=p.end) for p in periods],
        totals=report.totals,
        by_region=[SeriesOut.of(s) for s in report.by_region],
        by_customer_group=[SeriesOut.of(s) for s in report.by_customer_group],
        by_bucket=[SeriesOut.of(s) for s in report.by_bucket],
    )


@router.get(
    "/v1/stats/sla",
    response_model=SlaOut,
    responses=ERRORS,
    summary="SLA attainment per step over local days (COMP-SLA-*, COMP-STATS)",
    tags=["statistics"],
    dependencies=[READERS],
)
async def get_sla(
    ctx: ContextDep,
    runtime: RuntimeDep,
    first: Annotated[date, Query(alias="from", description="First local day, e.g. 2026-11-01")],
    last: Annotated[date, Query(alias="to", description="Last local day (inclusive)")],
) -> SlaOut:
    with _as_problems():
        period: Period = local_days(first, last, reporting_zone(ctx.policy))
    async with runtime.sessions() as session:
        report = await stats.sla_report(session, ctx.policy, period)
    return SlaOut(
        timezone=report.timezone,
        start=period.start,
        end=period.end,
        steps=[
            StepOut(
                step=s.step,
                rule=s.rule_id,
                completed=s.completed,
                within_sla=s.within_sla,
                attainment=s.attainment,
                breached=s.breached,
            )
            for s in report.steps
        ],
    )


# -- corrective actions -------------------------------------------------------------------


@router.post(
    "/v1/corrective-actions",
    response_model=ActionOut,
    status_code=201,
    responses=ERRORS,
    summary="Open a corrective action from a ticket or a finding, with owner and deadline",
    tags=["corrective-actions"],
)
async def post_action(body: ActionIn, who: ActionWriter, post: PostDep) -> Response:
    """rule: COMP-STATS. The deadline must be ahead; a ticket must exist (422 naming the
    field). Retried with the same ``Idempotency-Key``, it opens nothing new."""
    finding = None if body.finding is None else Finding(**body.finding.model_dump())
    now = post.runtime.clock.now()

    async def work(uow: UnitOfWork) -> Response:
        action = await stats.create_action(
            uow,
            ticket_id=body.ticket_id,
            finding=finding,
            description=body.description,
            owner=body.owner,
            deadline=body.deadline,
            actor=who.subject,
            now=now,
        )
        return JSONResponse(ActionOut.of(action, now).model_dump(mode="json"), status_code=201)

    with _as_problems():
        response = await post.run(who, work)
    await overdue_gauge(post.runtime).refresh_quietly()
    return response


@router.get(
    "/v1/corrective-actions",
    response_model=Page[ActionOut],
    summary="Corrective actions by creation; overdue=true: past deadline and not done",
    tags=["corrective-actions"],
)
async def list_actions(
    page: PageQuery,
    runtime: RuntimeDep,
    who: ActionReader,
    overdue: Annotated[
        bool | None, Query(description="true: only those past their deadline and not done")
    ] = None,
    status: Annotated[Literal["open", "in_progress", "done"] | None, Query()] = None,
    owner: Annotated[str | None, Query(max_length=128)] = None,
    ticket_id: Annotated[str | None, Query(max_length=36)] = None,
) -> Page[ActionOut]:
    now = runtime.clock.now()
    where = ActionFilter(
        overdue=overdue,
        status=None if status is None else ActionStatus(status),
        owner=owner,
        ticket_id=ticket_id,
    )
    async with runtime.sessions() as session:
        actions, next_cursor = await stats.list_actions(session, page, where, now)
    return Page[ActionOut](items=[ActionOut.of(a, now) for a in actions], next_cursor=next_cursor)


@router.get(
    "/v1/corrective-actions/{action_id}",
    response_model=ActionDetailOut,
    responses=ERRORS,
    summary="A corrective action with who changed what, when",
    tags=["corrective-actions"],
)
async def get_action(action_id: str, runtime: RuntimeDep, who: ActionReader) -> ActionDetailOut:
    with _as_problems():
        async with runtime.sessions() as session:
            action, history = await stats.get_action(session, action_id)
    return _detail(action, history, runtime.clock.now())


@router.patch(
    "/v1/corrective-actions/{action_id}",
    response_model=ActionDetailOut,
    responses=ERRORS,
    summary="Move the status forward (open, in_progress, done), hand over, move the deadline",
    tags=["corrective-actions"],
)
async def patch_action(
    action_id: str, body: ActionPatch, runtime: RuntimeDep, who: ActionWriter
) -> ActionDetailOut:
    """rule: COMP-STATS. The status moves one step forward only; a done action takes no
    change (409 naming the status). Each change is recorded with the caller and the time."""
    now = runtime.clock.now()
    with _as_problems():
        async with runtime.uow() as uow:
            await stats.update_action(
                uow,
                action_id,
                actor=who.subject,
                now=now,
                status=None if body.status is None else ActionStatus(body.status),
                owner=body.owner,
                deadline=body.deadline,
                description=body.description,
            )
            await uow.commit()
        async with runtime.sessions() as session:
            action, history = await stats.get_action(session, action_id)
    await overdue_gauge(runtime).refresh_quietly()
    return _detail(action, history, now)


def _detail(action: CorrectiveAction, history: list[Change], now: datetime) -> ActionDetailOut:
    return ActionDetailOut(
        **ActionOut.of(action, now).model_dump(), history=[ChangeOut.of(c) for c in history]
    )
