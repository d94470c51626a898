"""The timer handlers of case-svc, by kind, for the runtime's TimerScheduler.

The handlers need the case context (cipher, policy, strategy), which is built
from the runtime they run in; ``context`` is therefore asked for when a timer
fires, not when the runtime is built. ``now`` is the service clock's (the one
the scheduler compares ``due_at`` with).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime

from case_svc.service_layer import schedule
from case_svc.service_layer.intake import CaseContext
from collect_common.clock import Clock
from collect_common.db import UnitOfWork
from collect_common.timers import Timer, TimerHandler

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
    }
