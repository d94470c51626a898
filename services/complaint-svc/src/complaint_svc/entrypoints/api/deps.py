"""What the routers need from the composition root, as FastAPI dependencies."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from collect_common.runtime import ServiceRuntime
from collect_common.web.idempotency import IdempotencyKeys
from complaint_svc.service_layer.tickets import ComplaintContext


def _runtime(request: Request) -> ServiceRuntime:
    runtime: ServiceRuntime = request.app.state.runtime
    return runtime


def _context(request: Request) -> ComplaintContext:
    ctx: ComplaintContext = request.app.state.complaint_context
    return ctx


def _keys(request: Request) -> IdempotencyKeys:
    keys: IdempotencyKeys = request.app.state.idempotency_keys
    return keys


RuntimeDep = Annotated[ServiceRuntime, Depends(_runtime)]
ContextDep = Annotated[ComplaintContext, Depends(_context)]
IdempotencyDep = Annotated[IdempotencyKeys, Depends(_keys)]
