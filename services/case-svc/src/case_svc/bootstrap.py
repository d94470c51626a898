"""Composition root of case-svc: builds the runtime; nothing connects at import time."""

from case_svc.adapters.tables import metadata
from case_svc.entrypoints.consumer import HANDLERS, SUBSCRIBE
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
