"""One router module per resource."""

from fastapi import APIRouter

from case_svc.entrypoints.api import accounts, cases, changes

ROUTERS: list[APIRouter] = [accounts.router, cases.router, changes.router]
