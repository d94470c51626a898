"""Composition root of case-svc: builds the runtime; nothing connects at import time."""

from case_svc.adapters.tables import metadata
from case_svc.domain.policy import CasePolicy
from case_svc.domain.strategy import DEFAULT_STRATEGY
from case_svc.entrypoints.consumer import HANDLERS, SUBSCRIBE
from case_svc.service_layer.intake import CaseContext
from case_svc.settings import Settings
from collect_common.clock import Clock
from collect_common.runtime import ServiceRuntime


def bootstrap(settings: Settings | None = None, clock: Clock | None = None) -> ServiceRuntime:
    settings = settings or Settings()
    return ServiceRuntime(
        settings=settings,
        metadata=metadata,
        migrations=settings.migrations_dir,
        handlers=HANDLERS,
        subscribe=SUBSCRIBE,
        clock=clock,
    )


def case_context(runtime: ServiceRuntime, settings: Settings) -> CaseContext:
    """The case commands' dependencies: units of work, the field cipher, policy, strategy."""
    return CaseContext(
        uow_factory=runtime.uow,
        cipher=runtime.cipher,
        policy=CasePolicy(),
        strategy=DEFAULT_STRATEGY,
    )
