"""One router module per resource."""

from fastapi import APIRouter

from qa_svc.entrypoints.api import alerts, samples, sanctions

ROUTERS: list[APIRouter] = [alerts.router, sanctions.router, samples.router]
