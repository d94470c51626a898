"""The timer handlers of case-svc, by kind, for the runtime's TimerScheduler; and the
bucket-timer repair pass run when the scheduler starts.

The handlers need the case context (cipher, policy, strategy), which is built
from the runtime they run in; ``context`` is therefore asked for when a timer
fires, not when the runtime is built. ``now`` is the service clock's (the one
the scheduler compares ``due_at`` with).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import structlog
from fastapi import FastAPI

from case_svc.service_layer import schedule
from case_svc.service_layer.intake import CaseContext
from collect_common.clock import Clock
from collect_common.db import UnitOfWork
from collect_common.runtime import ServiceRuntime
from collect_common.timers import Timer, TimerHandler

log = structlog.get_logger("case_svc.scheduler")

Step = Callable[[CaseContext, Timer, UnitOfWork, datetime], Awaitable[None]]


def timer_handlers(context: Callable[[], CaseContext], clock: Clock) -> dict[str, TimerHandler]:
    def bind(step: Step) -> TimerHandler:
        async def handle(timer: Timer, uow: UnitOfWork) -> None:
            await step(context(), timer, uow, clock.now())

        return handle

    return {
        schedule.BUCKET_KIND: bind(schedule.on_bucket),
        schedule.PROMISE_KIND: bind(schedule.on_promise),
        schedule.INSTALLMENT_KIND: bind(schedule.on_installment),
        schedule.REPAIR_KIND: bind(schedule.on_repair),
    }


async def repair_timers(runtime: ServiceRuntime) -> int:
    """rule: CASE-BUCKET. One repair pass now (open cases without a pending bucket timer
    get one, due at once), and the daily pass scheduled; returns the timers repaired."""
    now = runtime.clock.now()
    async with runtime.uow() as uow:
        repaired = await schedule.repair_bucket_timers(uow.session, now)
        await schedule.schedule_repair(uow.session, now)
        await uow.commit()
    if repaired:
        log.info("bucket timers repaired", cases=repaired)
    return repaired


def attach_bucket_repair(app: FastAPI, runtime: ServiceRuntime) -> None:
    """Run :func:`repair_timers` when ``app`` starts (after migrations), if the runtime's
    scheduler runs in this process. A failure is logged; the daily pass retries."""
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(a: FastAPI) -> AsyncIterator[Any]:
        async with inner(a) as state:
            if runtime.scheduler is not None and runtime.settings.scheduler_enabled:
                try:
                    await repair_timers(runtime)
                except Exception as exc:  # the database away: the service still starts
                    log.warning("bucket timer repair failed at start", error=repr(exc))
            yield state

    app.router.lifespan_context = lifespan
