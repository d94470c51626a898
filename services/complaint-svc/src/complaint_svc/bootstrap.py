"""Composition root of complaint-svc: builds the runtime; nothing connects at import time."""

from collect_common.clock import Clock
from collect_common.runtime import ServiceRuntime
from complaint_svc.adapters.tables import metadata
from complaint_svc.entrypoints.consumer import HANDLERS, SUBSCRIBE
from complaint_svc.settings import Settings


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
