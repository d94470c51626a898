"""Hostile input against each service's own OpenAPI document (SEC-ACCESS, reliability).

Schemathesis reads the document the app serves, generates requests from it and sends
them to the app in-process (a fresh PostgreSQL database per service): requests the
document admits (positive) and requests it does not (negative). Every response must
be: not a 5xx, a documented status code, of a documented content type, and a body
that matches the documented schema. Each operation is called with credentials for
one of the roles its route declares, so the requests reach the handlers rather than
stopping at 401/403. The examples these runs found are kept below as plain tests.

Operations left out, and why:

- ``/v1/webhooks/dialer/*`` (contact-svc): every delivery must carry an HMAC signature
  over its body, which generated bodies cannot have; they would all stop at 401.
  ``services/contact-svc/tests`` cover the signed deliveries.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi as schemathesis_asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from collect_common.clock import FrozenClock
from collect_common.security.auth import Role
from collect_common.settings import DEV_API_KEYS
from collect_common.testing.apps import offline_settings
from collect_common.web.auth import iter_api_routes, route_roles

MAX_EXAMPLES = 15  # per operation and mode: four services in about a minute
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]

# Machine clients authenticate with their API key; people with a signed token.
API_KEY_OF_ROLE = {Role(roles): key for roles, key in DEV_API_KEYS.values() if "|" not in roles}
# When a route admits several roles, the first of these that it admits is used.
ROLE_PREFERENCE = [
    Role.OPS,
    Role.BANK,
    Role.DIALER,
    Role.AGENT,
    Role.COMPLAINT,
    Role.QA,
    Role.AUDITOR,
]

# path prefix of operations not run -> why (see the module docstring)
EXCLUDED_PREFIXES = {
    "contact": {"/v1/webhooks/dialer": "deliveries need a signature over the body"},
}

# raw bodies (complaint-svc's e-mail, case-svc's NDJSON intake): generated ones go as bytes
schemathesis.serializer.alias(
    ["message/rfc822", "application/x-ndjson"], "application/octet-stream"
)


@dataclass
class ServiceUnderTest:
    name: str
    app: FastAPI
    roles: dict[tuple[str, str], frozenset[Role]] = field(default_factory=dict)

    def headers_for(self, method: str, path: str) -> dict[str, str]:
        admitted = self.roles.get((method.upper(), path), frozenset())
        if not admitted:
            return {}  # a public route
        return self.credentials(next(r for r in ROLE_PREFERENCE if r in admitted))

    def credentials(self, role: Role) -> dict[str, str]:
        if role in API_KEY_OF_ROLE:
            return {"X-API-Key": API_KEY_OF_ROLE[role]}
        token = self.app.state.authenticator.tokens.issue(f"fuzz-{role.value}", [role])
        return {"Authorization": f"Bearer {token}"}

    def excluded(self, path: str) -> str | None:
        prefixes = EXCLUDED_PREFIXES.get(self.name, {})
        return next((why for prefix, why in prefixes.items() if path.startswith(prefix)), None)


@pytest.fixture
def fuzzed(request: pytest.FixtureRequest, pg_url: str) -> Iterator[ServiceUnderTest]:
    """The service named by the test's parameter, started on a fresh database."""
    name: str = request.param
    settings_mod = importlib.import_module(f"{name}_svc.settings")
    main = importlib.import_module(f"{name}_svc.main")
    app = main.create_app(
        offline_settings(settings_mod.Settings, pg_url, log_level="WARNING"), FrozenClock()
    )
    roles: dict[tuple[str, str], frozenset[Role]] = {}
    for route, inherited in iter_api_routes(app.router.routes):
        admitted = route_roles(route, inherited) or frozenset()
        for method in route.methods or ():
            roles[(method, route.path)] = admitted
    try:
        yield ServiceUnderTest(name, app, roles)
    finally:
        # the app's lifespan runs on Schemathesis' event loop: stop it before the database goes
        schemathesis_asgi.shutdown_lifespans()


def _schema(svc: ServiceUnderTest) -> Any:
    return schemathesis.openapi.from_asgi("/openapi.json", svc.app)


def _run_operation(
    svc: ServiceUnderTest, operation: Any, mode: schemathesis.GenerationMode
) -> None:
    headers = svc.headers_for(operation.method, operation.path)

    @given(case=operation.as_strategy(mode))
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(case: schemathesis.Case[Any]) -> None:
        case.call_and_validate(headers=headers, checks=CHECKS)

    try:
        run()
    except Unsatisfiable:
        # nothing in the document can be violated (no parameters, unconstrained strings)
        if mode is not schemathesis.GenerationMode.NEGATIVE:
            raise


@pytest.mark.parametrize("fuzzed", ["case", "contact", "complaint", "qa"], indirect=True)
def test_every_operation_answers_as_documented_to_generated_requests(
    fuzzed: ServiceUnderTest,
) -> None:
    failures: list[str] = []
    ran = 0
    for result in _schema(fuzzed).get_all_operations():
        operation = result.ok()
        if fuzzed.excluded(operation.path):
            continue
        ran += 1
        for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):
            try:
                _run_operation(fuzzed, operation, mode)
            except (Exception, BaseExceptionGroup) as exc:  # report every operation's failure
                label = f"{operation.method.upper()} {operation.path} ({mode.value})"
                failures.append(f"{label}: {str(exc)[:1500]}")
    assert ran > 5
    assert not failures, "\n\n".join(failures)


# Examples the generated runs found, each answered now as its document says.
FOUND: list[tuple[str, str, str, str, dict[str, Any], Any]] = [
    # a version beyond the 32-bit column reached PostgreSQL: 500
    ("contact", "GET", "/v1/sms-templates/{template_id}/versions/{version}", "ops",
     {"template_id": "0", "version": 2147483648}, None),
    ("contact", "POST", "/v1/letter-templates/{template_id}/versions/{version}/approve", "bank",
     {"template_id": "0", "version": 2147483648}, {"approval_number": "K"}),
    ("qa", "GET", "/v1/scorecards/{scorecard_id}/versions/{version}", "ops",
     {"scorecard_id": "w", "version": 20261609019}, None),
    # a validation problem (application/problem+json) was documented as application/json
    ("case", "POST", "/v1/cases/{case_id}/payments", "bank",
     {"case_id": "0"}, {"amount": "", "paid_at": "2000-01-01T00:00:00Z", "payment_id": "0"}),
    # a malformed cursor (400) and an unknown id (404) were not documented
    ("qa", "GET", "/v1/reviews", "ops", {}, None),
    ("qa", "POST", "/v1/alerts/{alert_id}/acknowledge", "qa", {"alert_id": "0"}, None),
]  # fmt: skip
EXPECTED_STATUS = [422, 422, 422, 422, 400, 404]


@pytest.mark.parametrize(
    ("fuzzed", "method", "path", "role", "path_parameters", "body", "status"),
    [(*found, status) for found, status in zip(FOUND, EXPECTED_STATUS, strict=True)],
    indirect=["fuzzed"],
    ids=[f"{f[0]}:{f[1]} {f[2]}" for f in FOUND],
)
def test_found_examples_are_refused_as_documented(
    fuzzed: ServiceUnderTest,
    method: str,
    path: str,
    role: str,
    path_parameters: dict[str, Any],
    body: Any,
    status: int,
) -> None:
    operation = _schema(fuzzed)[path][method]
    query = {"cursor": "not-a-cursor"} if path == "/v1/reviews" else None
    case = operation.Case(
        path_parameters=path_parameters,
        query=query,
        **({} if body is None else {"body": body, "media_type": "application/json"}),
    )
    assert Role(role) in fuzzed.roles[(method, path)]
    headers = fuzzed.credentials(Role(role))
    if method == "POST":
        headers["Idempotency-Key"] = "found-example-1"
    response = case.call_and_validate(headers=headers, checks=CHECKS)
    assert response.status_code == status
    assert response.headers["content-type"][0].startswith("application/problem+json")
