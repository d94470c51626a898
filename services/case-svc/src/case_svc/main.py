"""The case-svc ASGI app: ``uvicorn case_svc.main:create_app --factory``."""

from fastapi import FastAPI

from case_svc.adapters.tables import idempotency_keys
from case_svc.bootstrap import bootstrap
from case_svc.entrypoints.api import ROUTERS
from case_svc.entrypoints.feed_pusher import attach_feed_pusher
from case_svc.entrypoints.scheduler import attach_bucket_repair
from case_svc.service_layer.intake import CaseContext
from case_svc.settings import Settings
from collect_common.clock import Clock
from collect_common.web.app import create_app as build_app
from collect_common.web.app import serve
from collect_common.web.idempotency import IdempotencyKeys

DESCRIPTION = (
    "Overdue accounts from the bank: intake, buckets, strategy, assignment, "
    "promises, plans, feedback to the bank (CASE-*)."
)
TAGS = [
    {"name": "accounts", "description": "Bulk intake of the bank's overdue accounts"},
    {"name": "cases", "description": "One case: status, payments, recall"},
    {"name": "changes", "description": "The bank's change feed (CASE-FEEDBACK)"},
    {
        "name": "agents",
        "description": "Agents and teams; assignment of cases by capacity and skill (QA-SANCTION)",
    },
    {
        "name": "promises",
        "description": "Promises to pay (CASE-PROMISE) and repayment plans (CASE-HARDSHIP)",
    },
]


def create_app(settings: Settings | None = None, clock: Clock | None = None) -> FastAPI:
    settings = settings or Settings()
    runtime = bootstrap(settings, clock)
    app = build_app(
        runtime, title="case-svc", description=DESCRIPTION, routers=ROUTERS, openapi_tags=TAGS
    )
    app.state.case_context = runtime.context_of(CaseContext)
    app.state.idempotency_keys = IdempotencyKeys(idempotency_keys, runtime.clock)
    attach_feed_pusher(app, runtime, settings)  # CASE-FEEDBACK push to the banks' targets
    attach_bucket_repair(app, runtime)  # CASE-BUCKET: every open case has its daily timer
    return app


def run() -> None:
    serve("case_svc.main:create_app")
