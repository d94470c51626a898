"""Composition root of complaint-svc: builds the runtime; nothing connects at import time."""

from collect_common.clock import Clock, service_clock
from collect_common.policy import PolicyBook
from collect_common.runtime import ServiceRuntime
from complaint_svc.adapters.tables import metadata
from complaint_svc.domain.policy import ComplaintPolicy
from complaint_svc.entrypoints.consumer import SUBSCRIBE, handlers
from complaint_svc.entrypoints.scheduler import timer_handlers
from complaint_svc.service_layer.stats import overdue_gauge
from complaint_svc.service_layer.tickets import ComplaintContext, SlaMetrics
from complaint_svc.settings import Settings


def bootstrap(settings: Settings | None = None, clock: Clock | None = None) -> ServiceRuntime:
    """The runtime, with the SLA timers (COMP-SLA-*) on its scheduler (``runtime.scheduler``).

    Its complaint context is ``runtime.context``."""
    settings = settings or Settings()
    clock = clock or service_clock(settings.clock_file)
    runtime = ServiceRuntime(
        settings=settings,
        metadata=metadata,
        migrations=settings.migrations_dir,
        handlers=handlers(lambda: runtime.context_of(ComplaintContext)),
        subscribe=SUBSCRIBE,
        consumer_group=settings.consumer_group,
        clock=clock,
        timer_handlers=timer_handlers(lambda: runtime.context_of(ComplaintContext), clock),
    )
    runtime.context = complaint_context(runtime, settings)
    overdue_gauge(runtime)  # COMP-STATS: corrective actions past deadline, on /metrics
    return runtime


def complaint_context(runtime: ServiceRuntime, settings: Settings) -> ComplaintContext:
    """Units of work, the policy in force (a bank contract's file, else the defaults) and the
    SLA metrics on the runtime's registry (call once per runtime: bootstrap does)."""
    policy = ComplaintPolicy()
    if settings.policy_file is not None:
        book = PolicyBook.load(ComplaintPolicy, settings.policy_file)
        policy = book.for_contract(settings.policy_contract, runtime.clock.now().date())
    ctx = ComplaintContext(
        uow_factory=runtime.uow,
        policy=policy,
        metrics=SlaMetrics(runtime.registry, runtime.service),
        clock=runtime.clock,
    )
    return ctx
