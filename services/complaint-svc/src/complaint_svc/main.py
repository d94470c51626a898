"""The complaint-svc ASGI app: ``uvicorn complaint_svc.main:create_app --factory``."""

from fastapi import FastAPI

from collect_common.clock import Clock
from collect_common.web.app import create_app as build_app
from collect_common.web.app import serve
from complaint_svc.bootstrap import bootstrap
from complaint_svc.entrypoints.api import ROUTERS
from complaint_svc.settings import Settings

DESCRIPTION = (
    "Complaints on every channel, durable SLA timers, joint investigation, "
    "escalation, statistics (COMP-*)."
)


def create_app(settings: Settings | None = None, clock: Clock | None = None) -> FastAPI:
    settings = settings or Settings()
    runtime = bootstrap(settings, clock)
    return build_app(runtime, title="complaint-svc", description=DESCRIPTION, routers=ROUTERS)


def run() -> None:
    serve("complaint_svc.main:create_app")
