"""The OpenAPI document says what the platform's shared machinery answers.

FastAPI documents each route's own responses; the errors that come from the shared
code are added here, so that clients (and the schema-driven tests) can rely on the
document for every status code and content type an operation can give:

- every error body is an RFC 7807 problem (``application/problem+json``, the
  ``Problem`` schema) -- also the 422 of request validation, which FastAPI would
  otherwise document as its own ``application/json`` shape;
- a route that admits roles can answer 401 (no or bad credentials) and 403 (a role
  it does not admit, or a rule that refuses this caller) (SEC-ACCESS);
- a route with path parameters can answer 404 (nothing has that id);
- an operation with a request body can answer 400 (a body that does not parse);
- a listing with a ``cursor`` parameter can answer 400 (a malformed or foreign
  cursor, :mod:`collect_common.web.pagination`);
- an operation taking an ``Idempotency-Key`` can answer 400 (a malformed key) and,
  where the key is required, 428 (:mod:`collect_common.web.idempotency`);
- a route whose input is validated can answer 422 (also for a value the database
  cannot hold, :mod:`collect_common.web.problems`).
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI

from collect_common.web.auth import iter_api_routes, route_roles
from collect_common.web.idempotency import HEADER as IDEMPOTENCY_HEADER
from collect_common.web.idempotency import REQUIRED_NOTE
from collect_common.web.problems import PROBLEM_JSON

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "type": "object",
    "description": "RFC 7807 problem details; ``rule`` names the business or security rule "
    "that decided, ``field`` the offending input.",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "description": "/problems/<slug>"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string", "description": "The request path"},
        "request_id": {"type": "string"},
        "rule": {"type": "string", "description": "The rule ID, e.g. SEC-ACCESS"},
        "field": {"type": "string", "description": "The offending input"},
        "errors": {
            "type": "array",
            "description": "Each invalid field, for validation problems",
            "items": {
                "type": "object",
                "required": ["field", "rule", "message"],
                "properties": {
                    "field": {"type": "string"},
                    "rule": {"type": "string"},
                    "message": {"type": "string"},
                },
            },
        },
    },
    "additionalProperties": True,
}
_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
_DESCRIPTIONS = {
    "400": "Malformed request: a body that does not parse, a cursor not of this listing, "
    "a malformed Idempotency-Key",
    "401": "No credentials, or credentials that identify no one (SEC-ACCESS)",
    "403": "The caller's roles or a rule refuse the operation (SEC-ACCESS)",
    "404": "Nothing has this id",
    "422": "Validation failed",
    "428": "The Idempotency-Key header is required here",
}


def problem_response(description: str) -> dict[str, Any]:
    return {"description": description, "content": {PROBLEM_JSON: {"schema": dict(PROBLEM_REF)}}}


def document_platform_responses(app: FastAPI) -> None:
    """Make ``app.openapi()`` include the shared answers (see the module docstring)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            amend(build(), _roles_by_operation(app))
        return app.openapi_schema  # type: ignore[return-value]

    app.openapi = openapi  # type: ignore[method-assign]


def _roles_by_operation(app: FastAPI) -> dict[tuple[str, str], bool]:
    """(path, method) -> whether the route admits only some roles."""
    protected: dict[tuple[str, str], bool] = {}
    for route, inherited in iter_api_routes(app.router.routes):
        roles = route_roles(route, inherited)
        for method in route.methods or ():
            protected[(route.path_format, method.lower())] = bool(roles)
    return protected


def amend(document: dict[str, Any], protected: dict[tuple[str, str], bool]) -> None:
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas["Problem"] = PROBLEM_SCHEMA
    for path, item in document.get("paths", {}).items():
        for method, operation in item.items():
            if method in _METHODS:
                _amend_operation(operation, protected.get((path, method), False))
    for name in ("HTTPValidationError", "ValidationError"):
        if name in schemas and f'"#/components/schemas/{name}"' not in json.dumps(document):
            del schemas[name]


def _amend_operation(operation: dict[str, Any], protected: bool) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    parameters = operation.get("parameters", [])
    wanted: list[str] = []
    if protected:
        wanted += ["401", "403"]
    if any(p.get("in") == "path" for p in parameters):
        wanted.append("404")
    cursor = any(p.get("in") == "query" and p.get("name") == "cursor" for p in parameters)
    if cursor or "requestBody" in operation:
        wanted.append("400")
    keys = [
        p for p in parameters if p.get("in") == "header" and p.get("name") == IDEMPOTENCY_HEADER
    ]
    if keys:
        wanted.append("400")  # setdefault below: listed twice is harmless
        if any(REQUIRED_NOTE in k.get("description", "") for k in keys):
            wanted.append("428")
    if parameters or "requestBody" in operation:
        wanted.append("422")
    for code in wanted:
        responses.setdefault(code, problem_response(_DESCRIPTIONS[code]))
    validation = responses.get("422")
    if validation is not None:
        # FastAPI's default 422 shape is never sent: the problem handler answers
        content = validation.setdefault("content", {})
        content.pop("application/json", None)
        content.setdefault(PROBLEM_JSON, {})
        if validation.get("description") == "Validation Error":
            validation["description"] = _DESCRIPTIONS["422"]
    for code, response in responses.items():
        if not code.startswith(("4", "5")):
            continue
        problem = response.get("content", {}).get(PROBLEM_JSON)
        if problem is not None and not problem.get("schema"):
            problem["schema"] = dict(PROBLEM_REF)
