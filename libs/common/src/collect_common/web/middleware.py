"""Request context: request and correlation ids, access log, HTTP metrics.

A pure ASGI middleware (no per-request task hops): takes ``X-Request-ID`` and
``X-Correlation-ID`` from the caller when well-formed or makes new ones, binds
them to the log context and to the event context (so events a request causes
carry its correlation id), echoes them on the response, and records
``http_requests_total`` and ``http_request_duration_seconds`` by route template.
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import structlog
from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from collect_common.db import EventContext, reset_event_context, set_event_context

_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
log = structlog.get_logger("collect_common.access")


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            try:
                text = value.decode("latin-1")
            except UnicodeDecodeError:
                return None
            return text if _ID_RE.match(text) else None
    return None


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, *, registry: CollectorRegistry, service: str) -> None:
        self.app = app
        self.service = service
        self.requests = Counter(
            "http_requests_total",
            "HTTP requests by route and status",
            ["service", "method", "route", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "http_request_duration_seconds",
            "HTTP request latency by route",
            ["service", "method", "route"],
            registry=registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _header(scope, b"x-request-id") or str(uuid.uuid4())
        correlation_id = _header(scope, b"x-correlation-id") or request_id
        scope.setdefault("state", {})["request_id"] = request_id
        structlog.contextvars.bind_contextvars(request_id=request_id, correlation_id=correlation_id)
        token = set_event_context(
            EventContext(correlation_id=correlation_id, causation_id=request_id)
        )
        status = 500
        started = time.perf_counter()

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers: list[Any] = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                headers.append((b"x-correlation-id", correlation_id.encode()))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = scope.get("method", "")
            self.requests.labels(self.service, method, template, str(status)).inc()
            self.latency.labels(self.service, method, template).observe(elapsed)
            if template not in ("/metrics", "/healthz", "/readyz"):
                log.info(
                    "request",
                    method=method,
                    route=template,
                    status=status,
                    duration_ms=round(elapsed * 1000, 2),
                )
            reset_event_context(token)
            structlog.contextvars.unbind_contextvars("request_id", "correlation_id")
