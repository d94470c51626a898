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
=====================================  ===============  ===============================
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession

from case_svc.adapters.repository import CaseRepository, bucket_timer_key
from case_svc.domain.model import Case
from case_svc.domain.plans import Plan
from case_svc.domain.policy import CasePolicy
from case_svc.domain.promises import Promise, end_of_day, next_midnight
from collect_common import timers
from collect_common.db import UnitOfWork
from collect_common.timers import Timer

if TYPE_CHECKING:
    from case_svc.service_layer.intake import CaseContext

BUCKET_KIND = "case.bucket"
PROMISE_KIND = "case.promise"
INSTALLMENT_KIND = "case.installment"


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
    """The first bucket timers of newly opened cases, in one batched insert."""
    await timers.schedule_new(
        session,
        (
            timers.NewTimer(
                key=bucket_timer_key(case.id),
                kind=BUCKET_KIND,
                subject=case.id,
                due_at=next_midnight(now, case.debtor_timezone),
                payload={"case_id": case.id},
            )
            for case in cases
        ),
        now,
    )


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
    """rule: CASE-HARDSHIP. The installment's day ended: unpaid, it is missed."""
    repo = CaseRepository(uow.session, ctx.cipher)
    case = await repo.get(str(timer.payload["case_id"]), for_update=True)
    if case is None:
        return
    version = case.version
    if case.installment_day_ended(str(timer.payload["plan_id"]), int(timer.payload["no"]), now):
        await repo.save(case, now, expected_version=version)
        uow.track(case)
