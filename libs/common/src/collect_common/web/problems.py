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
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as SATimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

from collect_common.web.limits import BodyTooLarge

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


# SQLSTATEs of values the database cannot hold, by the reason answered (422, not 500): a
# NUL byte in text (PostgreSQL text never holds one), a number beyond its column.
_UNSTORABLE = {
    "22021": "a text value contains a character the database cannot store (such as NUL)",
    "22P05": "a text value contains a character the database cannot store (such as NUL)",
    "22003": "a number is out of the range its field admits",
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

    @app.exception_handler(BodyTooLarge)
    async def _too_large(request: Request, exc: BodyTooLarge) -> JSONResponse:
        return problem_response(
            request,
            413,
            title=_TITLES[413],
            detail=str(exc.detail),
            slug="payload-too-large",
            field="body",
            limit_bytes=exc.limit,
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

    @app.exception_handler(DBAPIError)
    async def _database(request: Request, exc: DBAPIError) -> JSONResponse:
        """The last line against a value no validator refused and the database cannot
        hold: 422, nothing stored (the unit of work rolled back). The endpoints' own
        validation should refuse such values first, naming the field."""
        sqlstate = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
        reason = _UNSTORABLE.get(str(sqlstate))
        if reason is None:
            return await _unhandled(request, exc)
        log.warning("value refused by the database", path=request.url.path, sqlstate=sqlstate)
        return problem_response(
            request,
            422,
            title="Validation failed",
            slug="unstorable-value",
            detail=f"{reason}; nothing was changed",
        )

    async def _timed_out(request: Request, exc: Exception) -> JSONResponse:
        # asyncpg's command and connect timeouts (collect_common.db.DatabaseTimeouts) raise
        # the builtin TimeoutError: a database that accepts but does not answer in time.
        log.warning("dependency timed out", path=request.url.path, error=type(exc).__name__)
        return problem_response(
            request,
            503,
            title="Service unavailable",
            slug="dependency-timeout",
            detail="The database did not answer in time; the request was not completed. "
            "Retry later.",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )

    app.add_exception_handler(TimeoutError, _timed_out)
