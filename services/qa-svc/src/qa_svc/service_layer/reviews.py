"""Review tasks (QA-SAMPLE → QA-SCORE): made from a drawn week or a complaint re-check,
assigned to QA specialists, scored, disputed by the agent, decided by a supervisor.

**Who reviews.** The pool is ``qa_staff``: a specialist joins it by calling
``POST /v1/qa-staff/me`` (role ``qa``); ops set who is active and who is a supervisor.
**Assignment** is least-loaded among the active members (fewest ``open`` tasks, ties by
subject; ``qa_svc.domain.scoring.assign``), serialised by a transaction-scoped advisory
lock so two runs never both see the same loads. With nobody in the pool a task stays
unassigned; the next assignment run (``POST /v1/reviews/assign`` or the next week's
tasks) hands it out.

**Who does what.** Only the assignee scores a task; only the agent the task is about
disputes it, within ``dispute_window_days`` of the score; only an active supervisor who
did not score it decides the dispute: ``upheld`` keeps the score, ``amended`` replaces it
(and any auto-fail) with the supervisor's score. The original scoring stays in
``review_scores``.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from collect_common.db import UnitOfWork, dialect_insert
from qa_svc.adapters.scoring_tables import qa_staff, review_scores, review_tasks
from qa_svc.adapters.tables import sample_picks, sample_weeks
from qa_svc.domain.policy import QaPolicy
from qa_svc.domain.scoring import (
    Action,
    Answer,
    Decision,
    Result,
    ReviewKind,
    ReviewStatus,
    assign,
    compute,
    dispute_deadline,
    transition,
)
from qa_svc.service_layer.scoring import (
    ScoringRefused,
    current_scorecard,
    is_supervisor,
    keep_score,
)

ASSIGN_LOCK = "qa-review-assign"


# --- staff -----------------------------------------------------------------------------------


async def join(uow: UnitOfWork, *, subject: str, now: datetime) -> Any:
    """The caller joins the pool as an active specialist (a supervisor stays one)."""
    await uow.session.execute(
        dialect_insert(uow.session, qa_staff)
        .values(
            subject=subject,
            active=True,
            supervisor=False,
            joined_at=now,
            updated_by=subject,
            updated_at=now,
        )
        .on_conflict_do_update(
            index_elements=["subject"],
            set_={"active": True, "updated_by": subject, "updated_at": now},
        )
    )
    return (await uow.session.execute(select(qa_staff).where(qa_staff.c.subject == subject))).one()


async def set_member(
    uow: UnitOfWork, *, subject: str, active: bool, supervisor: bool, by: str, now: datetime
) -> Any:
    """Ops put a member in the pool, or change whether they are active or a supervisor."""
    await uow.session.execute(
        dialect_insert(uow.session, qa_staff)
        .values(
            subject=subject,
            active=active,
            supervisor=supervisor,
            joined_at=now,
            updated_by=by,
            updated_at=now,
        )
        .on_conflict_do_update(
            index_elements=["subject"],
            set_={"active": active, "supervisor": supervisor, "updated_by": by, "updated_at": now},
        )
    )
    return (await uow.session.execute(select(qa_staff).where(qa_staff.c.subject == subject))).one()


# --- making and assigning tasks --------------------------------------------------------------


async def assign_open(uow: UnitOfWork, now: datetime) -> int:
    """Hand every unassigned open task to the least loaded active specialist; how many."""
    session = uow.session
    if session.get_bind().dialect.name == "postgresql":  # SQLite (make run) has one writer
        await session.execute(select(func.pg_advisory_xact_lock(func.hashtext(ASSIGN_LOCK))))
    members = (
        (await session.execute(select(qa_staff.c.subject).where(qa_staff.c.active.is_(True))))
        .scalars()
        .all()
    )
    if not members:
        return 0
    loads: dict[str, int] = dict.fromkeys(members, 0)
    counted = await session.execute(
        select(review_tasks.c.assignee, func.count())
        .where(
            review_tasks.c.status == ReviewStatus.OPEN.value,
            review_tasks.c.assignee.in_(members),
        )
        .group_by(review_tasks.c.assignee)
    )
    for assignee, n in counted.all():
        loads[assignee] = int(n)
    waiting = (
        (
            await session.execute(
                select(review_tasks.c.id)
                .where(
                    review_tasks.c.assignee.is_(None),
                    review_tasks.c.status == ReviewStatus.OPEN.value,
                )
                .order_by(review_tasks.c.created_at, review_tasks.c.id)
                .with_for_update(skip_locked=True)
            )
        )
        .scalars()
        .all()
    )
    plan = assign(list(waiting), loads)
    by_member: dict[str, list[str]] = {}
    for task_id, who in plan.items():
        by_member.setdefault(who, []).append(task_id)
    for who, ids in by_member.items():
        await session.execute(
            review_tasks.update()
            .where(review_tasks.c.id.in_(ids))
            .values(assignee=who, assigned_at=now)
        )
    return len(plan)


@dataclass(frozen=True, slots=True)
class WeekTasks:
    week: str
    created: int
    existing: int
    assigned: int


async def tasks_for_week(uow: UnitOfWork, *, week: str, now: datetime) -> WeekTasks:
    """One task per record of the drawn week's sample (random part and risk picks);
    idempotent: a second call makes none again. Then assign what is waiting."""
    session = uow.session
    drawn = (
        await session.execute(select(sample_weeks.c.revealed_at).where(sample_weeks.c.week == week))
    ).first()
    if drawn is None:
        raise ScoringRefused(404, "not-committed", f"week {week} has no commitment", "week")
    if drawn.revealed_at is None:
        raise ScoringRefused(409, "not-drawn", f"week {week} is not drawn yet", "week")
    picks = (
        await session.execute(
            select(sample_picks)
            .where(sample_picks.c.week == week)
            .order_by(sample_picks.c.position)
        )
    ).all()
    created = 0
    if picks:
        rows = [
            {
                "id": str(uuid.uuid4()),
                "kind": (ReviewKind.RISK if p.risk else ReviewKind.SAMPLE).value,
                "week": week,
                "record_id": p.record_id,
                "bucket": p.bucket,
                "channel": p.channel,
                "agent_id": p.agent_id,
                "status": ReviewStatus.OPEN.value,
                "created_at": now,
            }
            for p in picks
        ]
        result = await session.execute(
            dialect_insert(session, review_tasks)
            .values(rows)
            .on_conflict_do_nothing(index_elements=["week", "record_id"])
            .returning(review_tasks.c.id)
        )
        created = len(result.all())
    assigned = await assign_open(uow, now)
    return WeekTasks(week, created, len(picks) - created, assigned)


async def open_recheck(
    uow: UnitOfWork,
    *,
    agent_id: str,
    case_id: str | None,
    ticket_id: str,
    cycle: int,
    now: datetime,
) -> str:
    """A re-check of the agent after a substantiated complaint (QA-FEEDBACK), assigned
    at once when the pool has an active member."""
    task_id = str(uuid.uuid4())
    await uow.session.execute(
        review_tasks.insert().values(
            id=task_id,
            kind=ReviewKind.RECHECK.value,
            agent_id=agent_id,
            case_id=case_id,
            ticket_id=ticket_id,
            cycle=cycle,
            status=ReviewStatus.OPEN.value,
            created_at=now,
        )
    )
    await assign_open(uow, now)
    return task_id


# --- the task's life -------------------------------------------------------------------------


async def _locked(session: AsyncSession, task_id: str) -> Any:
    row = (
        await session.execute(
            select(review_tasks).where(review_tasks.c.id == task_id).with_for_update()
        )
    ).first()
    if row is None:
        raise ScoringRefused(404, "not-found", f"no review task {task_id}", "task_id")
    return row


async def load_task(session: AsyncSession, task_id: str) -> Any | None:
    return (await session.execute(select(review_tasks).where(review_tasks.c.id == task_id))).first()


def _illegal(action: Action, row: Any) -> ScoringRefused:
    return ScoringRefused(
        409,
        "illegal-transition",
        f"cannot {action.value} a review task that is {row.status}",
    )


async def score_task(
    uow: UnitOfWork,
    *,
    task_id: str,
    scorecard_id: str,
    answers: Sequence[Answer],
    comment: str | None,
    by: str,
    now: datetime,
) -> tuple[Any, Result]:
    """The assignee scores the open task against the scorecard's current version."""
    row = await _locked(uow.session, task_id)
    if row.assignee != by:
        raise ScoringRefused(
            403, "not-assignee", f"review task {task_id} is assigned to someone else"
        )
    if ReviewStatus(row.status) is not ReviewStatus.OPEN:
        raise _illegal(Action.SCORE, row)
    status = transition(ReviewStatus(row.status), Action.SCORE)
    card = await current_scorecard(uow.session, scorecard_id)
    result = compute(card, answers)
    await keep_score(
        uow,
        card=card,
        answers=answers,
        result=result,
        scorer=by,
        comment=comment,
        now=now,
        task_id=task_id,
    )
    await uow.session.execute(
        review_tasks.update()
        .where(review_tasks.c.id == task_id)
        .values(
            status=status.value,
            scorecard_id=card.scorecard_id,
            scorecard_version=card.version,
            score=result.score,
            auto_failed=result.auto_failed,
            scored_by=by,
            scored_at=now,
        )
    )
    return await _reload(uow.session, task_id), result


async def dispute(
    uow: UnitOfWork,
    policy: QaPolicy,
    *,
    task_id: str,
    agent_id: str,
    reason: str,
    now: datetime,
) -> Any:
    row = await _locked(uow.session, task_id)
    if row.agent_id != agent_id:
        raise ScoringRefused(403, "not-your-review", f"review task {task_id} is not about you")
    if ReviewStatus(row.status) is not ReviewStatus.SCORED:
        raise _illegal(Action.DISPUTE, row)
    deadline = dispute_deadline(row.scored_at, policy.dispute_window)
    if now >= deadline:
        raise ScoringRefused(
            409,
            "dispute-window-closed",
            f"the score could be disputed until {deadline.isoformat()}",
        )
    status = transition(ReviewStatus(row.status), Action.DISPUTE)
    await uow.session.execute(
        review_tasks.update()
        .where(review_tasks.c.id == task_id)
        .values(status=status.value, dispute_reason=reason, disputed_by=agent_id, disputed_at=now)
    )
    return await _reload(uow.session, task_id)


async def decide(
    uow: UnitOfWork,
    *,
    task_id: str,
    decision: Decision,
    amended_score: Decimal | None,
    note: str,
    by: str,
    now: datetime,
) -> Any:
    if not await is_supervisor(uow.session, by):
        raise ScoringRefused(403, "not-supervisor", "only an active QA supervisor decides")
    row = await _locked(uow.session, task_id)
    if ReviewStatus(row.status) is not ReviewStatus.DISPUTED:
        raise _illegal(Action.DECIDE, row)
    if row.scored_by == by:
        raise ScoringRefused(
            403, "own-score", "a supervisor may not decide a dispute of their own score"
        )
    if decision is Decision.AMENDED and amended_score is None:
        raise ScoringRefused(422, "score-required", "an amendment gives the new score", "score")
    if decision is Decision.UPHELD and amended_score is not None:
        raise ScoringRefused(422, "no-score", "an upheld score is not amended", "score")
    status = transition(ReviewStatus(row.status), Action.DECIDE)
    values: dict[str, Any] = {
        "status": status.value,
        "decision": decision.value,
        "decision_note": note,
        "decided_by": by,
        "decided_at": now,
    }
    if decision is Decision.AMENDED:
        values.update(score=amended_score, auto_failed=False)
    await uow.session.execute(
        review_tasks.update().where(review_tasks.c.id == task_id).values(**values)
    )
    return await _reload(uow.session, task_id)


async def _reload(session: AsyncSession, task_id: str) -> Any:
    return (await session.execute(select(review_tasks).where(review_tasks.c.id == task_id))).one()


async def scoring_of(session: AsyncSession, task_id: str) -> Any | None:
    return (
        await session.execute(select(review_scores).where(review_scores.c.task_id == task_id))
    ).first()
