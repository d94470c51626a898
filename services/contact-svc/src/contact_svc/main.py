"""The contact-svc ASGI app: ``uvicorn contact_svc.main:create_app --factory``."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from collect_common.clock import Clock
from collect_common.web.app import create_app as build_app
from collect_common.web.app import serve
from collect_common.web.idempotency import IdempotencyKeys
from contact_svc.adapters.tables import idempotency_keys
from contact_svc.bootstrap import bootstrap, contact_context, dialer_verifier, sms_provider
from contact_svc.entrypoints.api import ROUTERS
from contact_svc.service_layer.batching import DecisionBatcher
from contact_svc.settings import Settings

DESCRIPTION = (
    "Compliant contact: the dialer's pre-dial decision and webhooks, SMS, letters, "
    "visits (CALL-*, SMS-*, LETTER, VISIT-TEAM, CONTACT-CONDUCT)."
)


def create_app(settings: Settings | None = None, clock: Clock | None = None) -> FastAPI:
    settings = settings or Settings()
    runtime = bootstrap(settings, clock)
    app = build_app(runtime, title="contact-svc", description=DESCRIPTION, routers=ROUTERS)
    app.state.contact_context = contact_context(runtime, settings)
    app.state.dialer_verifier = dialer_verifier(runtime, settings)
    app.state.sms_provider = sms_provider(settings)
    app.state.idempotency_keys = IdempotencyKeys(idempotency_keys, runtime.clock)
    app.state.decision_batcher = DecisionBatcher(
        app.state.contact_context,
        max_batch=settings.decision_batch_max,
        workers=settings.decision_batch_workers,
        linger_seconds=settings.decision_batch_linger_ms / 1000,
    )
    _close_on_shutdown(app, app.state.decision_batcher)
    return app


def _close_on_shutdown(app: FastAPI, batcher: DecisionBatcher) -> None:
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(a: FastAPI) -> AsyncIterator[Any]:
        async with inner(a) as state:
            try:
                yield state
            finally:
                await batcher.aclose()

    app.router.lifespan_context = lifespan


def run() -> None:
    serve("contact_svc.main:create_app")
