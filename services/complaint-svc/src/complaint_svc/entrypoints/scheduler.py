"""The timer handlers of complaint-svc, by kind, for the runtime's TimerScheduler.

The context (policy, metrics) is built from the runtime the handlers run in, so it
is asked for when a timer fires, not when the runtime is built.
"""

from __future__ import annotations

from collections.abc import Callable

from collect_common.clock import Clock
from collect_common.db import UnitOfWork
from collect_common.timers import Timer, TimerHandler
from complaint_svc.service_layer import tickets
from complaint_svc.service_layer.tickets import ComplaintContext


def timer_handlers(
    context: Callable[[], ComplaintContext], clock: Clock
) -> dict[str, TimerHandler]:
    async def on_sla(timer: Timer, uow: UnitOfWork) -> None:
        await tickets.on_sla_timer(context(), timer, uow, clock.now())

    return {tickets.SLA_KIND: on_sla}
