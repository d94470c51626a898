"""One router module per resource."""

from fastapi import APIRouter

from qa_svc.entrypoints.api import alerts

ROUTERS: list[APIRouter] = [alerts.router]
