"""One router module per resource."""

from fastapi import APIRouter

from contact_svc.entrypoints.api import decisions, sms, webhooks

ROUTERS: list[APIRouter] = [decisions.router, webhooks.router, sms.templates_router, sms.router]
