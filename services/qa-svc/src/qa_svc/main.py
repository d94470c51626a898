"""The qa-svc ASGI app: ``uvicorn qa_svc.main:create_app --factory``."""

from fastapi import FastAPI

from collect_common.clock import Clock
from collect_common.web.app import create_app as build_app
from collect_common.web.app import serve
from qa_svc.bootstrap import bootstrap
from qa_svc.entrypoints.api import ROUTERS
from qa_svc.service_layer.sampling import SampleMetrics
from qa_svc.settings import Settings

DESCRIPTION = (
    "Quality assurance: live compliance rules, verifiable weekly sampling, "
    "scorecards, sanctions (QA-*)."
)


def create_app(settings: Settings | None = None, clock: Clock | None = None) -> FastAPI:
    settings = settings or Settings()
    runtime = bootstrap(settings, clock)
    app = build_app(runtime, title="qa-svc", description=DESCRIPTION, routers=ROUTERS)
    app.state.sample_metrics = SampleMetrics(runtime.registry, runtime.service)
    return app


def run() -> None:
    serve("qa_svc.main:create_app")
