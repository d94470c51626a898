"""Composition root of qa-svc: builds the runtime; nothing connects at import time."""

from collect_common.clock import Clock, service_clock
from collect_common.policy import PolicyBook
from collect_common.runtime import ServiceRuntime
from qa_svc.adapters.tables import metadata
from qa_svc.domain.policy import QaPolicy
from qa_svc.entrypoints.consumer import SUBSCRIBE, handlers
from qa_svc.service_layer.live_rules import AlertMetrics, LiveRules
from qa_svc.settings import Settings


def bootstrap(settings: Settings | None = None, clock: Clock | None = None) -> ServiceRuntime:
    """The runtime; its consumer runs the live rules with the configured policy and
    counts alerts on the runtime's registry (``runtime.context_of(LiveRules)``)."""
    settings = settings or Settings()
    clock = clock or service_clock(settings.clock_file)
    runtime = ServiceRuntime(
        settings=settings,
        metadata=metadata,
        migrations=settings.migrations_dir,
        handlers=handlers(lambda: runtime.context_of(LiveRules), clock),
        subscribe=SUBSCRIBE,
        clock=clock,
    )
    runtime.context = LiveRules(qa_policy(settings, runtime), AlertMetrics(runtime.registry))
    return runtime


def qa_policy(settings: Settings, runtime: ServiceRuntime) -> QaPolicy:
    """The configured contract's version in force today, else the defaults; a bad file
    stops the service at start with a message naming the field and its rule."""
    if settings.policy_file is None:
        return QaPolicy()
    book = PolicyBook.load(QaPolicy, settings.policy_file)
    return book.for_contract(settings.policy_contract, runtime.clock.now().date())
