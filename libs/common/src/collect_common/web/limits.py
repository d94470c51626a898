"""Request body limits: a body beyond the limit is refused with 413 before it is gathered.

Every app built by ``create_app`` counts the bytes of each request body as the route reads
them (``MAX_BODY_BYTES`` by default, ``create_app(max_body_bytes=...)`` per service). A
declared ``Content-Length`` above the limit is refused on the first read, before any byte
is taken; a streamed (chunked) body is refused as soon as the running count passes the
limit, so at most the limit plus one chunk is ever held. A route that reads its body as a
stream and bounds what it keeps by itself (the NDJSON intake: one bounded line at a time)
opts out with :func:`body_limit`; one that must stay smaller sets its own, lower, limit.

The refusal is ``413`` problem+json with ``field: body`` and ``limit_bytes``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, TypeVar

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_BODY_BYTES: Final = 16 * 1024 * 1024
"""Default largest request body: 10,000 intake rows or a 10 MiB complaint e-mail fit."""
BODY_LIMIT_ATTR: Final = "__collect_body_limit__"

F = TypeVar("F", bound=Callable[..., Any])


class BodyTooLarge(HTTPException):
    """The request body is larger than its route admits (answered 413 problem+json).

    A FastAPI ``HTTPException`` so that FastAPI's own body parsing passes it on instead
    of turning it into a generic 400.
    """

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body may be at most {limit} bytes")
        self.limit = limit


def body_limit(limit: int | None) -> Callable[[F], F]:
    """Give a route endpoint its own body limit; ``None``: the route bounds what it keeps."""
    if limit is not None and limit < 0:
        raise ValueError("a body limit is a number of bytes >= 0, or None")

    def mark(endpoint: F) -> F:
        setattr(endpoint, BODY_LIMIT_ATTR, limit)
        return endpoint

    return mark


def _declared_length(scope: Scope) -> int | None:
    for key, value in scope.get("headers", ()):
        if key == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isdigit() else None
    return None


class BodyLimitMiddleware:
    """Counts request body bytes as they are read; see the module docstring."""

    def __init__(self, app: ASGIApp, *, max_bytes: int = MAX_BODY_BYTES) -> None:
        if max_bytes < 0:
            raise ValueError("max_bytes must be >= 0")
        self.app = app
        self.max_bytes = max_bytes

    def _limit_of(self, scope: Scope) -> int | None:
        endpoint = getattr(scope.get("route"), "endpoint", None)
        if endpoint is None or not hasattr(endpoint, BODY_LIMIT_ATTR):
            return self.max_bytes
        limit: int | None = getattr(endpoint, BODY_LIMIT_ATTR)
        return limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        received = 0
        resolved = False
        limit: int | None = None

        async def limited_receive() -> Message:
            nonlocal received, resolved, limit
            if not resolved:
                # The first read happens in the endpoint, after routing: the route is known.
                resolved, limit = True, self._limit_of(scope)
                declared = _declared_length(scope)
                if limit is not None and declared is not None and declared > limit:
                    raise BodyTooLarge(limit)
            message = await receive()
            if message["type"] == "http.request" and limit is not None:
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, limited_receive, send)
