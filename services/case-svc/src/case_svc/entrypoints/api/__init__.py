"""One router module per resource."""

from fastapi import APIRouter

from case_svc.entrypoints.api import (
    accounts,
    agents,
    case_actions,
    cases,
    changes,
    exports,
    promises,
)

ROUTERS: list[APIRouter] = [
    accounts.router,
    cases.router,
    case_actions.router,
    changes.router,
    promises.router,
    agents.router,
    exports.router,
]
