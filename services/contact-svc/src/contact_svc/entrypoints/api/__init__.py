"""One router module per resource."""

from fastapi import APIRouter

from contact_svc.entrypoints.api import decisions, holds, letters, sms, visits, webhooks

ROUTERS: list[APIRouter] = [
    decisions.router,
    webhooks.router,
    sms.templates_router,
    sms.router,
    letters.templates_router,
    letters.router,
    visits.router,
    holds.router,
]
