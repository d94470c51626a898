"""One router module per resource."""

from fastapi import APIRouter

from complaint_svc.entrypoints.api import mail, portal, stats, tickets

ROUTERS: list[APIRouter] = [tickets.router, portal.router, mail.router, stats.router]
