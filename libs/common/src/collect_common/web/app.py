"""The app factory every service uses.

``create_app(runtime, routers=..., title=...)`` gives a FastAPI app with request
ids, problem+json errors, authentication with per-route roles, ``/healthz``
(liveness), ``/readyz`` (database and broker), ``/metrics`` (Prometheus, the
app's own registry), request bodies bounded (``max_body_bytes``, 413 beyond; see
``collect_common.web.limits``) and a lifespan that starts and stops the runtime.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from collect_common.logging import configure_logging
from collect_common.runtime import ServiceRuntime
from collect_common.security.auth import Role
from collect_common.web.auth import PUBLIC, assert_every_route_declares_roles, require_roles
from collect_common.web.limits import MAX_BODY_BYTES, BodyLimitMiddleware
from collect_common.web.middleware import RequestContextMiddleware
from collect_common.web.openapi import document_platform_responses
from collect_common.web.problems import PROBLEM_JSON, install_problem_handlers


def create_app(
    runtime: ServiceRuntime,
    *,
    title: str,
    description: str = "",
    routers: Sequence[APIRouter] = (),
    version: str = "0.1.0",
    openapi_tags: list[dict[str, Any]] | None = None,
    manage_runtime: bool = True,
    max_body_bytes: int = MAX_BODY_BYTES,
) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if manage_runtime:
            await runtime.start()
        try:
            yield
        finally:
            if manage_runtime:
                await runtime.stop()

    settings = runtime.settings
    configure_logging(runtime.service, settings.log_level, json=settings.log_json)
    app = FastAPI(
        title=title,
        description=description,
        version=version,
        lifespan=lifespan,
        openapi_tags=[
            *(openapi_tags or []),
            {"name": "operations", "description": "Health, readiness, metrics"},
        ],
    )
    app.state.runtime = runtime
    app.state.authenticator = runtime.authenticator
    install_problem_handlers(app)
    app.add_middleware(BodyLimitMiddleware, max_bytes=max_body_bytes)
    app.add_middleware(RequestContextMiddleware, registry=runtime.registry, service=runtime.service)
    app.include_router(_operations_router(runtime))
    for router in routers:
        app.include_router(router)
    assert_every_route_declares_roles(app)
    document_platform_responses(app)  # the shared 401/403/404/400/422 problems
    return app


def serve(factory: str) -> None:
    """Run ``package.module:create_app`` under uvicorn; ``HOST`` and ``PORT`` from the env."""
    import uvicorn

    uvicorn.run(
        factory,
        factory=True,
        host=os.environ.get("HOST", "127.0.0.1"),
        port=int(os.environ.get("PORT", "8000")),
        access_log=False,
        log_config=None,  # configure_logging owns the output: JSON, masked
    )


def _operations_router(runtime: ServiceRuntime) -> APIRouter:
    router = APIRouter(tags=["operations"])

    @router.get("/healthz", dependencies=[PUBLIC], summary="Liveness: the process answers")
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": runtime.service}

    @router.get(
        "/readyz",
        dependencies=[PUBLIC],
        summary="Readiness: the database answers (and the broker, where required)",
        responses={503: {"content": {PROBLEM_JSON: {}}}},
    )
    async def readyz(request: Request) -> JSONResponse:
        database = await runtime.check_database()
        broker = await runtime.check_broker()
        ready = database and (broker or not runtime.settings.readiness_requires_broker)
        body = {
            "status": "ready" if ready else "unavailable",
            "service": runtime.service,
            "checks": {
                "database": "up" if database else "down",
                "broker": "up" if broker else "down",
            },
        }
        if ready:
            if not broker:
                body["status"] = "degraded"
            return JSONResponse(body)
        return JSONResponse(
            {
                "type": "/problems/not-ready",
                "title": "Service unavailable",
                "status": 503,
                "detail": "a required dependency is down",
                "instance": request.url.path,
                **body,
            },
            status_code=503,
            media_type=PROBLEM_JSON,
            headers={"Retry-After": "5"},
        )

    @router.get(
        "/metrics",
        summary="Prometheus metrics of this service",
        dependencies=[PUBLIC],
        response_class=Response,
    )
    async def metrics() -> Response:
        return Response(generate_latest(runtime.registry), media_type=CONTENT_TYPE_LATEST)

    @router.get(
        "/v1/service-info",
        summary="What this service runs: relay, consumer group",
        dependencies=[require_roles(Role.OPS, Role.AUDITOR)],
    )
    async def service_info() -> dict[str, Any]:
        info = runtime.describe()
        if runtime.relay is not None:
            try:
                info["relay"]["backlog"] = await runtime.relay.backlog()
            except Exception:
                info["relay"]["backlog"] = None
        return info

    return router
