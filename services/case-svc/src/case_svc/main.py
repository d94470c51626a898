"""The case-svc ASGI app: ``uvicorn case_svc.main:create_app --factory``."""

from fastapi import FastAPI

from case_svc.bootstrap import bootstrap
from case_svc.entrypoints.api import ROUTERS
from case_svc.settings import Settings
from collect_common.clock import Clock
from collect_common.web.app import create_app as build_app
from collect_common.web.app import serve

DESCRIPTION = (
    "Overdue accounts from the bank: intake, buckets, strategy, assignment, promises, "
    "plans, feedback to the bank (CASE-*)."
)


def create_app(settings: Settings | None = None, clock: Clock | None = None) -> FastAPI:
    settings = settings or Settings()
    runtime = bootstrap(settings, clock)
    return build_app(runtime, title="case-svc", description=DESCRIPTION, routers=ROUTERS)


def run() -> None:
    serve("case_svc.main:create_app")
