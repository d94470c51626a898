"""Review tasks (QA-SCORE): the staff pool, tasks from a drawn week, scoring, disputes.

- ``POST /v1/qa-staff/me``: a specialist (``qa``) joins the pool tasks are assigned from;
  ``PUT /v1/qa-staff/{subject}``: ops set a member active or not, supervisor or not.
- ``POST /v1/reviews/weeks/{week}``: the drawn week's records become tasks, assigned
  least-loaded (see ``qa_svc.service_layer.reviews``); ``POST /v1/reviews/assign`` hands
  out tasks left unassigned.
- ``GET /v1/reviews``: a specialist's list (their own by default), paginated.
- Score (the assignee, ``qa``), dispute (the agent the task is about, ``agent``),
  decide (a QA supervisor who did not score it).

Free text (dispute reasons, decision notes, comments) is stored encrypted and returned
masked (SEC-PII).
"""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from collect_common.security.auth import Principal, Role
from collect_common.web.auth import require_roles
from collect_common.web.pagination import Page, PageQuery
from collect_common.web.problems import ProblemError
from qa_svc.adapters.scoring_tables import review_tasks
from qa_svc.domain.policy import QaPolicy
from qa_svc.domain.scoring import (
    Decision,
    ReviewKind,
    ReviewStatus,
    dispute_deadline,
)
from qa_svc.entrypoints.api.common import (
    RuntimeDep,
    masked,
    policy_of,
    scoring_problems,
    section_scores,
)
from qa_svc.entrypoints.api.scoring import AnswerIn, ResultOut
from qa_svc.service_layer.reviews import (
    assign_open,
    decide,
    dispute,
    join,
    load_task,
    score_task,
    scoring_of,
    set_member,
    tasks_for_week,
)
from qa_svc.service_layer.sampling import WEEK

router = APIRouter(prefix="/v1", tags=["reviews"])
TaskId = Path(min_length=1, max_length=36)
WeekPath = Path(pattern=WEEK.pattern, examples=["2026-W49"])


QaOnly = Annotated[Principal, require_roles(Role.QA)]
OpsOnly = Annotated[Principal, require_roles(Role.OPS)]
AgentOnly = Annotated[Principal, require_roles(Role.AGENT)]
Readers = Annotated[Principal, require_roles(Role.QA, Role.OPS, Role.AUDITOR, Role.AGENT)]
Listers = Annotated[Principal, require_roles(Role.QA, Role.OPS, Role.AUDITOR)]


# --- staff -----------------------------------------------------------------------------------


class MemberIn(BaseModel):
    active: bool = True
    supervisor: bool = False


class MemberOut(BaseModel):
    subject: str
    active: bool
    supervisor: bool
    joined_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: Any) -> MemberOut:
        return cls(
            subject=row.subject,
            active=row.active,
            supervisor=row.supervisor,
            joined_at=row.joined_at,
            updated_at=row.updated_at,
        )


@router.post(
    "/qa-staff/me",
    response_model=MemberOut,
    summary="Join the pool review tasks are assigned from (or become active again)",
)
async def join_pool(runtime: RuntimeDep, who: QaOnly) -> MemberOut:
    async with runtime.uow() as uow:
        row = await join(uow, subject=who.subject, now=runtime.clock.now())
        await uow.commit()
    return MemberOut.of(row)


@router.put(
    "/qa-staff/{subject}",
    response_model=MemberOut,
    summary="Put a QA staff member in the pool: active or not, supervisor or not (ops)",
)
async def put_member(
    body: MemberIn,
    runtime: RuntimeDep,
    who: OpsOnly,
    subject: str = Path(min_length=1, max_length=200),
) -> MemberOut:
    async with runtime.uow() as uow:
        row = await set_member(
            uow,
            subject=subject,
            active=body.active,
            supervisor=body.supervisor,
            by=who.subject,
            now=runtime.clock.now(),
        )
        await uow.commit()
    return MemberOut.of(row)


# --- tasks -----------------------------------------------------------------------------------


class ReviewOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "task_id": "8c1b7c52-3b7e-4f37-9f55-52e3c1d0a001",
                    "kind": "sample",
                    "week": "2026-W49",
                    "record_id": "e-91",
                    "stratum": "M1/call",
                    "agent_id": "agent-7",
                    "case_id": None,
                    "ticket_id": None,
                    "cycle": None,
                    "assignee": "qa-1",
                    "status": "scored",
                    "scorecard_id": "calls",
                    "scorecard_version": 2,
                    "score": "86.50",
                    "auto_failed": False,
                    "scored_at": "2026-12-08T02:00:00Z",
                    "dispute_until": "2026-12-15T02:00:00Z",
                }
            ]
        }
    )

    task_id: str
    kind: ReviewKind
    week: str | None
    record_id: str | None
    stratum: str | None = Field(description="bucket/channel of a sampled record")
    agent_id: str | None
    case_id: str | None
    ticket_id: str | None = Field(description="The complaint of a re-check (QA-FEEDBACK)")
    cycle: int | None
    assignee: str | None
    status: ReviewStatus
    created_at: datetime
    scorecard_id: str | None = None
    scorecard_version: int | None = None
    score: Decimal | None = Field(default=None, description="Effective: amended if decided so")
    auto_failed: bool | None = None
    scored_by: str | None = None
    scored_at: datetime | None = None
    dispute_until: datetime | None = None
    dispute_reason: str | None = Field(default=None, description="Masked (SEC-PII)")
    disputed_at: datetime | None = None
    decision: Decision | None = None
    decision_note: str | None = Field(default=None, description="Masked (SEC-PII)")
    decided_by: str | None = None
    decided_at: datetime | None = None

    @classmethod
    def of(cls, row: Any, policy: QaPolicy) -> ReviewOut:
        return cls(
            task_id=row.id,
            kind=ReviewKind(row.kind),
            week=row.week,
            record_id=row.record_id,
            stratum=f"{row.bucket}/{row.channel}" if row.bucket is not None else None,
            agent_id=row.agent_id,
            case_id=row.case_id,
            ticket_id=row.ticket_id,
            cycle=row.cycle,
            assignee=row.assignee,
            status=ReviewStatus(row.status),
            created_at=row.created_at,
            scorecard_id=row.scorecard_id,
            scorecard_version=row.scorecard_version,
            score=row.score,
            auto_failed=row.auto_failed,
            scored_by=row.scored_by,
            scored_at=row.scored_at,
            dispute_until=(
                dispute_deadline(row.scored_at, policy.dispute_window) if row.scored_at else None
            ),
            dispute_reason=masked(row.dispute_reason),
            disputed_at=row.disputed_at,
            decision=Decision(row.decision) if row.decision else None,
            decision_note=masked(row.decision_note),
            decided_by=row.decided_by,
            decided_at=row.decided_at,
        )


class ScoringOut(BaseModel):
    score_id: str
    scorer: str
    scorecard_id: str
    scorecard_version: int
    score: Decimal = Field(description="As scored, before any amendment")
    raw_score: Decimal
    auto_failed: bool
    sections: dict[str, Decimal | None]
    failed_items: list[str]
    answers: list[AnswerIn]
    comment: str | None = Field(description="Masked (SEC-PII)")
    scored_at: datetime


class ReviewDetail(ReviewOut):
    scoring: ScoringOut | None = None


class WeekTasksOut(BaseModel):
    week: str
    created: int = Field(description="Tasks made by this call")
    existing: int = Field(description="Records of the week that already had a task")
    assigned: int = Field(description="Waiting tasks handed out by this call")


class AssignedOut(BaseModel):
    assigned: int


class ScoreIn(BaseModel):
    scorecard_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")
    answers: list[AnswerIn] = Field(min_length=1, max_length=300)
    comment: str | None = Field(default=None, max_length=2000)


class ScoredOut(BaseModel):
    task: ReviewOut
    result: ResultOut


class DisputeIn(BaseModel):
    reason: str = Field(min_length=1, max_length=2000, examples=["the debtor asked for the call"])


class DecisionIn(BaseModel):
    decision: Decision
    score: Decimal | None = Field(
        default=None, ge=0, le=100, decimal_places=2, description="The amended score"
    )
    note: str = Field(min_length=1, max_length=2000)


@router.post(
    "/reviews/weeks/{week}",
    response_model=WeekTasksOut,
    summary="Make the drawn week's sampled records review tasks and assign them",
    responses={404: {"description": "No commitment"}, 409: {"description": "Not drawn"}},
)
async def week_tasks(runtime: RuntimeDep, who: QaOnly, week: str = WeekPath) -> WeekTasksOut:
    with scoring_problems():
        async with runtime.uow() as uow:
            done = await tasks_for_week(uow, week=week, now=runtime.clock.now())
            await uow.commit()
    return WeekTasksOut(
        week=done.week, created=done.created, existing=done.existing, assigned=done.assigned
    )


@router.post(
    "/reviews/assign",
    response_model=AssignedOut,
    summary="Hand out unassigned open tasks to the least loaded active specialists",
)
async def assign_waiting(runtime: RuntimeDep, who: QaOnly) -> AssignedOut:
    async with runtime.uow() as uow:
        n = await assign_open(uow, runtime.clock.now())
        await uow.commit()
    return AssignedOut(assigned=n)


@router.get(
    "/reviews",
    response_model=Page[ReviewOut],
    summary="Review tasks by creation; a specialist sees their own unless they name another",
)
async def list_reviews(
    page: PageQuery,
    runtime: RuntimeDep,
    who: Listers,
    assignee: Annotated[
        str | None, Query(max_length=200, description="Default for role qa: the caller")
    ] = None,
    status: Annotated[ReviewStatus | None, Query()] = None,
    kind: Annotated[ReviewKind | None, Query()] = None,
) -> Page[ReviewOut]:
    if assignee is None and Role.QA in who.roles:
        assignee = who.subject
    query = select(review_tasks)
    if assignee is not None:
        query = query.where(review_tasks.c.assignee == assignee)
    if status is not None:
        query = query.where(review_tasks.c.status == status.value)
    if kind is not None:
        query = query.where(review_tasks.c.kind == kind.value)
    async with runtime.sessions() as session:
        rows = (
            await session.execute(
                page.keyset(query, [review_tasks.c.created_at, review_tasks.c.id])
            )
        ).all()
    items, next_cursor = page.page_of(rows, lambda r: (r.created_at, r.id))
    policy = policy_of(runtime)
    return Page[ReviewOut](items=[ReviewOut.of(r, policy) for r in items], next_cursor=next_cursor)


@router.get(
    "/reviews/{task_id}",
    response_model=ReviewDetail,
    summary="A review task and its scoring; an agent sees only tasks about them",
)
async def read_review(runtime: RuntimeDep, who: Readers, task_id: str = TaskId) -> ReviewDetail:
    async with runtime.sessions() as session:
        row = await load_task(session, task_id)
        scored = await scoring_of(session, task_id) if row is not None else None
    staff = who.has_any([Role.QA, Role.OPS, Role.AUDITOR])
    if row is None or (not staff and row.agent_id != who.subject):
        raise ProblemError(404, f"no review task {task_id}", field="task_id")
    out = ReviewOut.of(row, policy_of(runtime))
    scoring = None
    if scored is not None:
        scoring = ScoringOut(
            score_id=scored.id,
            scorer=scored.scorer,
            scorecard_id=scored.scorecard_id,
            scorecard_version=scored.scorecard_version,
            score=scored.score,
            raw_score=scored.raw_score,
            auto_failed=scored.auto_failed,
            sections=section_scores(scored.sections),
            failed_items=json.loads(scored.failed_items),
            answers=[AnswerIn.model_validate(a) for a in json.loads(scored.answers)],
            comment=masked(scored.comment),
            scored_at=scored.scored_at,
        )
    return ReviewDetail(**out.model_dump(), scoring=scoring)


@router.post(
    "/reviews/{task_id}/score",
    response_model=ScoredOut,
    summary="Score the task against the scorecard's current version (the assignee)",
    responses={403: {"description": "Not the assignee"}, 409: {"description": "Not open"}},
)
async def score(
    body: ScoreIn, runtime: RuntimeDep, who: QaOnly, task_id: str = TaskId
) -> ScoredOut:
    with scoring_problems():
        async with runtime.uow() as uow:
            row, result = await score_task(
                uow,
                task_id=task_id,
                scorecard_id=body.scorecard_id,
                answers=[a.domain() for a in body.answers],
                comment=body.comment,
                by=who.subject,
                now=runtime.clock.now(),
            )
            await uow.commit()
    return ScoredOut(task=ReviewOut.of(row, policy_of(runtime)), result=ResultOut.of(result))


@router.post(
    "/reviews/{task_id}/dispute",
    response_model=ReviewOut,
    summary="The agent disputes the score, with a reason, within the policy's window",
    responses={
        403: {"description": "The task is not about the caller"},
        409: {"description": "Not scored, or the window is over"},
    },
)
async def dispute_score(
    body: DisputeIn, runtime: RuntimeDep, who: AgentOnly, task_id: str = TaskId
) -> ReviewOut:
    policy = policy_of(runtime)
    with scoring_problems():
        async with runtime.uow() as uow:
            row = await dispute(
                uow,
                policy,
                task_id=task_id,
                agent_id=who.subject,
                reason=body.reason,
                now=runtime.clock.now(),
            )
            await uow.commit()
    return ReviewOut.of(row, policy)


@router.post(
    "/reviews/{task_id}/decision",
    response_model=ReviewOut,
    summary="A QA supervisor decides the dispute: the score upheld, or amended",
    responses={403: {"description": "Not a supervisor, or the scorer"}},
)
async def decide_dispute(
    body: DecisionIn, runtime: RuntimeDep, who: QaOnly, task_id: str = TaskId
) -> ReviewOut:
    with scoring_problems():
        async with runtime.uow() as uow:
            row = await decide(
                uow,
                task_id=task_id,
                decision=body.decision,
                amended_score=body.score,
                note=body.note,
                by=who.subject,
                now=runtime.clock.now(),
            )
            await uow.commit()
    return ReviewOut.of(row, policy_of(runtime))
