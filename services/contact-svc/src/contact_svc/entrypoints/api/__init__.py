"""One router module per resource."""

from fastapi import APIRouter

from contact_svc.entrypoints.api import decisions, webhooks

ROUTERS: list[APIRouter] = [decisions.router, webhooks.router]
