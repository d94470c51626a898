"""The case timers: daily bucket recomputation, promise deadlines, plan installments.

Scheduling happens in the caller's unit of work, with the state change that asks
for it (``collect_common.timers``: idempotent by key). The handlers run in the
runtime's :class:`~collect_common.timers.TimerScheduler`, one savepoint each:
they load the case locked, let the aggregate decide, save it with its expected
version (the repository appends the change feed) and track it, so its events
reach the outbox with the timer's ``fired`` state.

=====================================  ===============  ===============================
key                                    kind             due
=====================================  ===============  ===============================
``bucket:<case_id>``                   ``case.bucket``  the debtor's next local midnight
``promise:<promise_id>``               ``case.promise`` end of the promised day + grace
``installment:<plan_id>:<n>``          ``case.install`` end of the installment's day + grace
``bucket-repair``                      ``case.repair``  daily, and at the scheduler's start
=====================================  ===============  ===============================

A missed installment's timer is moved (same key, ``"stage": "late"``) to the end
of its day plus ``plan_break_days_late``: if it is still unpaid then, the plan is
broken (CASE-HARDSHIP); paying it cancels the timer like any paid installment's.
A broken plan's remaining installment timers are cancelled with it.

Bucket timers are repaired set-based (:func:`repair_bucket_timers`): one
``INSERT ... SELECT`` gives every open case without a pending bucket timer (one
imported before the timers existed, a row lost or failed) a timer due at once,
whose handler recomputes the bucket and then waits for the debtor's midnight.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import String, and_, cast, literal, not_, select
from sqlalchemy.ext.asyncio import AsyncSession

from case_svc.adapters.repository import CaseRepository, bucket_timer_key
from case_svc.adapters.tables import cases
from case_svc.adapters.tables import timers as timers_table
from case_svc.domain.hardship import break_plan_if_due
from case_svc.domain.lifecycle import OPEN
from case_svc.domain.model import Case
from case_svc.domain.plans import InstallmentStatus, Plan, PlanStatus
from case_svc.domain.policy import CasePolicy
from case_svc.domain.promises import Promise, end_of_day, next_midnight
from collect_common import timers
from collect_common.clock import ensure_utc
from collect_common.db import UnitOfWork, dialect_insert, insert_many
from collect_common.timers import Timer, TimerState

if TYPE_CHECKING:
    from case_svc.service_layer.intake import CaseContext

BUCKET_KIND = "case.bucket"
PROMISE_KIND = "case.promise"
INSTALLMENT_KIND = "case.installment"
REPAIR_KIND = "case.repair"
REPAIR_KEY = "bucket-repair"
LATE = "late"  # the stage of a missed installment's timer
_PENDING = (TimerState.SCHEDULED.value, TimerState.PAUSED.value)
_SCHEDULED = TimerState.SCHEDULED.value


# -- scheduling (inside the caller's unit of work) -------------------------------------


async def schedule_bucket(session: AsyncSession, case: Case, now: datetime) -> None:
    """rule: CASE-BUCKET. Recompute the case's bucket when the debtor's day turns."""
    await timers.schedule(
        session,
        key=bucket_timer_key(case.id),
        kind=BUCKET_KIND,
        subject=case.id,
        due_at=next_midnight(now, case.debtor_timezone),
        payload={"case_id": case.id},
        now=now,
    )


async def schedule_buckets(session: AsyncSession, cases: Iterable[Case], now: datetime) -> None:
    """The first bucket timers of newly opened cases, in one batched write (``insert_many``:
    COPY on PostgreSQL for large batches). The rows are those ``timers.schedule_new``
    writes; a key that exists already is an ``IntegrityError``."""
    await insert_many(session, timers_table, bucket_timer_rows(cases, now))


def bucket_timer_rows(cases: Iterable[Case], now: datetime) -> list[dict[str, Any]]:
    """rule: CASE-BUCKET. The ``timers`` rows of new cases' first bucket timers: each due
    at the debtor's next local midnight (worked out once per time zone), payload
    ``{"case_id": ...}`` encoded as every timer payload is (sorted keys, no spaces)."""
    created = ensure_utc(now)
    midnights: dict[str, datetime] = {}
    rows = []
    for case in cases:
        due = midnights.get(case.debtor_timezone)
        if due is None:
            due = midnights[case.debtor_timezone] = ensure_utc(
                next_midnight(now, case.debtor_timezone)
            )
        rows.append(
            {
                "timer_key": bucket_timer_key(case.id),
                "kind": BUCKET_KIND,
                "subject": case.id,
                "due_at": due,
                "state": _SCHEDULED,
                "remaining_ms": None,
                "payload": '{"case_id":' + json.dumps(case.id) + "}",
                "attempts": 0,
                "last_error": None,
                "created_at": created,
                "fired_at": None,
            }
        )
    return rows


async def schedule_promise(session: AsyncSession, promise: Promise, now: datetime) -> None:
    """rule: CASE-PROMISE. Break the promise when its deadline passes unpaid."""
    await timers.schedule(
        session,
        key=promise.timer_key,
        kind=PROMISE_KIND,
        subject=promise.case_id,
        due_at=promise.due_at,
        payload={"case_id": promise.case_id, "promise_id": promise.id},
        now=now,
    )


async def schedule_installments(
    session: AsyncSession, plan: Plan, timezone: str, policy: CasePolicy, now: datetime
) -> None:
    """rule: CASE-HARDSHIP. Each installment is checked when its day (plus grace) ends."""
    for inst in plan.installments:
        await timers.schedule(
            session,
            key=plan.timer_key(inst.no),
            kind=INSTALLMENT_KIND,
            subject=plan.case_id,
            due_at=end_of_day(inst.due_date, timezone, grace_days=policy.installment_grace_days),
            payload={"case_id": plan.case_id, "plan_id": plan.id, "no": inst.no},
            now=now,
        )


async def schedule_late_check(
    session: AsyncSession, plan: Plan, no: int, timezone: str, policy: CasePolicy, now: datetime
) -> None:
    """rule: CASE-HARDSHIP. A missed installment still unpaid ``plan_break_days_late``
    after its day breaks the plan: its timer (same key) is moved to that instant."""
    inst = plan.installment(no)
    await timers.schedule(
        session,
        key=plan.timer_key(no),
        kind=INSTALLMENT_KIND,
        subject=plan.case_id,
        due_at=end_of_day(inst.due_date, timezone, grace_days=policy.plan_break_days_late),
        payload={"case_id": plan.case_id, "plan_id": plan.id, "no": no, "stage": LATE},
        now=now,
    )


async def cancel_plan_timers(session: AsyncSession, plan: Plan, *, firing: str = "") -> None:
    """A plan that ended (broken) has nothing left due (``firing``: the timer firing now,
    which the scheduler marks fired)."""
    for inst in plan.installments:
        if plan.timer_key(inst.no) != firing:
            await timers.cancel(session, plan.timer_key(inst.no))


async def repair_bucket_timers(session: AsyncSession, now: datetime) -> int:
    """rule: CASE-BUCKET. Every open case without a pending bucket timer gets one, due at
    ``now``; returns how many. One statement, whatever the number of cases.

    A case whose key exists but is not pending (fired, cancelled, failed) has the row
    scheduled again. A case whose timer is pending is left alone.
    """
    key = literal("bucket:", String) + cases.c.id
    pending = (
        select(timers_table.c.id)
        .where(timers_table.c.timer_key == key, timers_table.c.state.in_(_PENDING))
        .exists()
    )
    missing = select(
        key.label("timer_key"),
        literal(BUCKET_KIND, String).label("kind"),
        cases.c.id.label("subject"),
        literal(now, timers_table.c.due_at.type).label("due_at"),
        literal(TimerState.SCHEDULED.value, String).label("state"),
        (literal('{"case_id":"', String) + cases.c.id + literal('"}', String)).label("payload"),
        cast(literal(0), timers_table.c.attempts.type).label("attempts"),
        literal(now, timers_table.c.created_at.type).label("created_at"),
    ).where(and_(cases.c.status.in_([s.value for s in OPEN]), not_(pending)))
    columns = ["timer_key", "kind", "subject", "due_at", "state", "payload", "attempts"]
    insert = dialect_insert(session, timers_table).from_select([*columns, "created_at"], missing)
    upsert = insert.on_conflict_do_update(
        index_elements=[timers_table.c.timer_key],
        set_={
            "due_at": insert.excluded.due_at,
            "state": TimerState.SCHEDULED.value,
            "payload": insert.excluded.payload,
            "remaining_ms": None,
            "attempts": 0,
            "last_error": None,
            "fired_at": None,
        },
        where=timers_table.c.state.not_in(_PENDING),
    )
    result = await session.execute(upsert)
    return int(getattr(result, "rowcount", 0) or 0)


async def schedule_repair(session: AsyncSession, now: datetime) -> None:
    """The daily repair pass, at the next UTC midnight (idempotent by key)."""
    await timers.schedule(
        session,
        key=REPAIR_KEY,
        kind=REPAIR_KIND,
        subject=REPAIR_KEY,
        due_at=next_midnight(now, "UTC"),
        payload={},
        now=now,
    )


# -- handlers (run by the TimerScheduler) ----------------------------------------------


async def on_bucket(ctx: CaseContext, timer: Timer, uow: UnitOfWork, now: datetime) -> None:
    """rule: CASE-BUCKET. The debtor's day turned: recompute, then wait for the next one.

    A case out of collection (settled, recalled, closed) is not rescheduled."""
    repo = CaseRepository(uow.session, ctx.cipher)
    case = await repo.get(str(timer.payload["case_id"]), for_update=True)
    if case is None or not case.is_open:
        return
    version = case.version
    if case.recompute_bucket(now, ctx.policy, ctx.strategy):
        await repo.save(case, now, expected_version=version)
        uow.track(case)
    await schedule_bucket(uow.session, case, now)


async def on_promise(ctx: CaseContext, timer: Timer, uow: UnitOfWork, now: datetime) -> None:
    """rule: CASE-PROMISE. The deadline passed: a promise still pending is broken."""
    repo = CaseRepository(uow.session, ctx.cipher)
    case = await repo.get(str(timer.payload["case_id"]), for_update=True)
    if case is None:
        return
    version = case.version
    if case.promise_deadline_passed(str(timer.payload["promise_id"]), now):
        await repo.save(case, now, expected_version=version)
        uow.track(case)


async def on_installment(ctx: CaseContext, timer: Timer, uow: UnitOfWork, now: datetime) -> None:
    """rule: CASE-HARDSHIP. The installment's day ended: unpaid, it is missed, and its
    timer moves to the late check. Each time, the plan is broken if the policy says so:
    too many missed installments, or this one unpaid too long (the late stage)."""
    repo = CaseRepository(uow.session, ctx.cipher)
    case = await repo.get(str(timer.payload["case_id"]), for_update=True)
    if case is None:
        return
    version = case.version
    plan_id, no = str(timer.payload["plan_id"]), int(timer.payload["no"])
    changed = False
    if timer.payload.get("stage") != LATE:
        changed = case.installment_day_ended(plan_id, no, now)
    plan = case.plan
    if plan is None or plan.id != plan_id:
        return
    if break_plan_if_due(case, ctx.policy, ctx.strategy, now) is not None:
        changed = True
    if changed:
        await repo.save(case, now, expected_version=version)
        uow.track(case)
    if plan.status == PlanStatus.BROKEN:
        await cancel_plan_timers(uow.session, plan, firing=timer.key)
    elif changed and plan.installment(no).status == InstallmentStatus.MISSED:
        await schedule_late_check(uow.session, plan, no, case.debtor_timezone, ctx.policy, now)


async def on_repair(ctx: CaseContext, timer: Timer, uow: UnitOfWork, now: datetime) -> None:
    """rule: CASE-BUCKET. The daily repair pass, then the next one."""
    await repair_bucket_timers(uow.session, now)
    await schedule_repair(uow.session, now)
