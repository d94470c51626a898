"""RFC 7807 problem details: every error the platform returns is ``application/problem+json``.

A problem names what went wrong (``title``), the specifics (``detail``), and where
a business or security rule decided, the rule's ID (``rule``) so an auditor can
trace the decision; validation problems list each offending field.
"""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as SATimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

PROBLEM_JSON = "application/problem+json"
RETRY_AFTER_SECONDS = 5
log = structlog.get_logger("collect_common.web")

_TITLES = {
    400: "Bad request",
    401: "Authentication required",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Payload too large",
    415: "Unsupported media type",
    422: "Validation failed",
    429: "Too many requests",
    500: "Internal error",
    503: "Service unavailable",
}


def problem_type(slug: str) -> str:
    return f"/problems/{slug}"


class ProblemError(Exception):
    """Raise anywhere in a request to answer with a problem document."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        title: str | None = None,
        slug: str | None = None,
        rule: str | None = None,
        field: str | None = None,
        headers: dict[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.title = title or _TITLES.get(status, "Error")
        self.slug = slug or self.title.lower().replace(" ", "-")
        self.rule = rule
        self.field = field
        self.headers = headers or {}
        self.extensions = extensions


def problem_response(
    request: Request | None,
    status: int,
    *,
    title: str,
    detail: str,
    slug: str,
    rule: str | None = None,
    field: str | None = None,
    headers: dict[str, str] | None = None,
    **extensions: Any,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": problem_type(slug),
        "title": title,
        "status": status,
        "detail": detail,
    }
    if request is not None:
        body["instance"] = request.url.path
        rid = getattr(request.state, "request_id", None)
        if rid:
            body["request_id"] = rid
    if rule:
        body["rule"] = rule
    if field:
        body["field"] = field
    body.update(extensions)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _field_path(loc: tuple[Any, ...] | list[Any]) -> str:
    return ".".join(str(p) for p in loc)


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(ProblemError)
    async def _problem(request: Request, exc: ProblemError) -> JSONResponse:
        return problem_response(
            request,
            exc.status,
            title=exc.title,
            detail=exc.detail,
            slug=exc.slug,
            rule=exc.rule,
            field=exc.field,
            headers=exc.headers,
            **exc.extensions,
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {
                "field": _field_path(err.get("loc", ())),
                "rule": err.get("type", "invalid"),
                "message": err.get("msg", "invalid value"),
            }
            for err in exc.errors()
        ]
        first = errors[0]["field"] if errors else None
        return problem_response(
            request,
            422,
            title="Validation failed",
            slug="validation-failed",
            detail=f"{len(errors)} invalid field(s)" + (f"; first: {first}" if first else ""),
            field=first,
            errors=errors,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        title = _TITLES.get(exc.status_code, "Error")
        detail = exc.detail if isinstance(exc.detail, str) else title
        return problem_response(
            request,
            exc.status_code,
            title=title,
            detail=detail,
            slug=title.lower().replace(" ", "-"),
            headers=getattr(exc, "headers", None),
        )

    async def _unavailable(request: Request, exc: Exception) -> JSONResponse:
        log.warning("database unavailable", path=request.url.path, error=type(exc).__name__)
        return problem_response(
            request,
            503,
            title="Service unavailable",
            slug="database-unavailable",
            detail="The database cannot be reached; nothing was changed. Retry later.",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )

    for exc_type in (OperationalError, InterfaceError, SATimeoutError, ConnectionError):
        app.add_exception_handler(exc_type, _unavailable)

    @app.exception_handler(Exception)
    async def _unhandled(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", path=request.url.path)
        return problem_response(
            request,
            500,
            title="Internal error",
            slug="internal-error",
            detail="The request could not be completed; it has been logged with its request id.",
        )
