"""The contact-svc ASGI app: ``uvicorn contact_svc.main:create_app --factory``."""

from fastapi import FastAPI

from collect_common.clock import Clock
from collect_common.web.app import create_app as build_app
from collect_common.web.app import serve
from contact_svc.bootstrap import bootstrap, contact_context, dialer_verifier, sms_provider
from contact_svc.entrypoints.api import ROUTERS
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
    return app


def run() -> None:
    serve("contact_svc.main:create_app")
