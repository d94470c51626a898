"""Composition root of case-svc: builds the runtime; nothing connects at import time."""

from case_svc.adapters.tables import metadata
from case_svc.domain.policy import CasePolicy
from case_svc.domain.strategy import DEFAULT_STRATEGY
from case_svc.entrypoints.consumer import HANDLERS, SUBSCRIBE
from case_svc.entrypoints.scheduler import timer_handlers
from case_svc.service_layer.intake import CaseContext
from case_svc.settings import Settings
from collect_common.clock import Clock, SystemClock
from collect_common.runtime import ServiceRuntime


def bootstrap(settings: Settings | None = None, clock: Clock | None = None) -> ServiceRuntime:
    """The runtime, with the case timers (CASE-BUCKET, CASE-PROMISE, CASE-HARDSHIP) on its
    scheduler (``runtime.scheduler``)."""
    settings = settings or Settings()
    clock = clock or SystemClock()
    contexts: list[CaseContext] = []  # the handlers' context, made once the runtime exists
    runtime = ServiceRuntime(
        settings=settings,
        metadata=metadata,
        migrations=settings.migrations_dir,
        handlers=HANDLERS,
        subscribe=SUBSCRIBE,
        clock=clock,
        timer_handlers=timer_handlers(lambda: contexts[0], clock),
    )
    contexts.append(case_context(runtime, settings))
    return runtime


def case_context(runtime: ServiceRuntime, settings: Settings) -> CaseContext:
    """The case commands' dependencies: units of work, the field cipher, policy, strategy."""
    return CaseContext(
        uow_factory=runtime.uow,
        cipher=runtime.cipher,
        policy=CasePolicy(),
        strategy=DEFAULT_STRATEGY,
    )
