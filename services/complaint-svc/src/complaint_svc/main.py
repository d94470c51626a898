"""The complaint-svc ASGI app: ``uvicorn complaint_svc.main:create_app --factory``."""

from fastapi import FastAPI

from collect_common.clock import Clock
from collect_common.web.app import create_app as build_app
from collect_common.web.app import serve
from collect_common.web.idempotency import IdempotencyKeys
from complaint_svc.adapters.tables import idempotency_keys
from complaint_svc.bootstrap import bootstrap
from complaint_svc.entrypoints.api import ROUTERS
from complaint_svc.service_layer.tickets import ComplaintContext
from complaint_svc.settings import Settings

DESCRIPTION = (
    "Complaints on every channel, durable SLA timers, joint investigation, "
    "escalation, statistics (COMP-*)."
)
TAGS = [
    {"name": "tickets", "description": "Complaint tickets and their SLA chain (COMP-SLA-*)"},
    {"name": "portal", "description": "The public complaint form (COMP-CHANNELS)"},
    {"name": "inbound", "description": "Complaint e-mail from the mail gateway (COMP-CHANNELS)"},
]


def create_app(settings: Settings | None = None, clock: Clock | None = None) -> FastAPI:
    settings = settings or Settings()
    runtime = bootstrap(settings, clock)
    app = build_app(
        runtime,
        title="complaint-svc",
        description=DESCRIPTION,
        routers=ROUTERS,
        openapi_tags=TAGS,
    )
    app.state.complaint_context = runtime.context_of(ComplaintContext)
    app.state.idempotency_keys = IdempotencyKeys(idempotency_keys, runtime.clock)
    return app


def run() -> None:
    serve("complaint_svc.main:create_app")
