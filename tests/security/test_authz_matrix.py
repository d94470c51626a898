"""SEC-ACCESS: every route of every service admits exactly the roles it declares.

Each service's app runs in-process (its own PostgreSQL database, no broker). For every
route (path parameters filled with placeholders) and every role, plus no credentials
and forged ones, the answer must follow the route's declaration: a role not declared
gets 403, no or bad credentials 401, a declared role gets past the check (anything
but 401/403: 404 for the placeholder id and 422 for the missing body are fine). Every
refusal and every error is ``application/problem+json``.

A small explicit table adds what least privilege means for this platform (the dialer
cannot read cases, the bank cannot decide contacts, the auditor writes nothing...), so a
declaration widened by mistake fails here even though the matrix would follow it.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute

from collect_common.security.auth import Role
from collect_common.security.webhooks import sign
from collect_common.web.auth import iter_api_routes, route_roles

from .conftest import NOW, app_of, credentials, is_problem

# Routes open to anyone; any other route that declares PUBLIC is a finding.
PUBLIC_ROUTES = {
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("POST", "/v1/portal/complaints"),
}
PLACEHOLDER = {int: "7", str: "sec-placeholder-0"}
WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
WEBHOOK = "/v1/webhooks/dialer/calls"
WEBHOOK_KEY_ID, WEBHOOK_SECRET = "dialer-dev", b"dev-webhook-secret-not-for-production"
_deliveries = itertools.count(1)

pytestmark = pytest.mark.asyncio(loop_scope="module")


@dataclass(frozen=True)
class Endpoint:
    method: str
    template: str
    url: str
    roles: frozenset[Role]  # empty: public

    def __str__(self) -> str:
        return f"{self.method} {self.template}"


def _url(route: APIRoute) -> str:
    url = route.path
    for param in route.dependant.path_params:
        value = PLACEHOLDER[int] if param.field_info.annotation is int else PLACEHOLDER[str]
        url = url.replace("{" + param.name + "}", value)
    assert not re.search(r"\{[^}]+\}", url), f"unfilled path parameter in {route.path}"
    return url


def endpoints(app: FastAPI) -> list[Endpoint]:
    out = []
    for route, inherited in iter_api_routes(app.router.routes):
        roles = route_roles(route, inherited)
        assert roles is not None, f"{route.path} declares no roles"
        for method in sorted(route.methods or ()):
            if method in {"HEAD", "OPTIONS"}:
                continue
            out.append(Endpoint(method, route.path, _url(route), roles))
    return out


async def _call(
    client: httpx.AsyncClient, endpoint: Endpoint, headers: dict[str, str]
) -> httpx.Response:
    if endpoint.template == WEBHOOK:
        # Correctly signed (an empty body): what stops a caller is its role, not the signature.
        signed = sign(
            WEBHOOK_SECRET,
            int(NOW.timestamp()),
            f"sec-delivery-{next(_deliveries)}",
            b"",
            key_id=WEBHOOK_KEY_ID,
        )
        headers = {**headers, **signed}
    return await client.request(endpoint.method, endpoint.url, headers=headers)


def _check(endpoint: Endpoint, caller: str, response: httpx.Response) -> str | None:
    """What is wrong with ``response`` to ``caller`` at ``endpoint``; None when right."""
    status = response.status_code
    if status >= 400 and not is_problem(response):
        return f"{status} is not problem+json"
    if status >= 500:
        return f"{status}: {response.text[:200]}"
    if not endpoint.roles:
        return None if status not in (401, 403) else f"public route answered {status}"
    if caller in {"anonymous", "unknown-key", "forged-token"}:
        if status != 401:
            return f"expected 401, got {status}"
        if response.json().get("rule") != "SEC-ACCESS":
            return "401 without rule SEC-ACCESS"
        return None
    if Role(caller) in endpoint.roles:
        return f"declared role refused with {status}" if status in (401, 403) else None
    if status != 403:
        return f"undeclared role: expected 403, got {status}"
    if response.json().get("rule") != "SEC-ACCESS":
        return "403 without rule SEC-ACCESS"
    return None


async def test_every_route_admits_exactly_its_declared_roles(
    security_apps: dict[str, httpx.AsyncClient],
) -> None:
    findings: list[str] = []
    checked = 0
    for name, client in security_apps.items():
        callers = credentials(client)
        for endpoint in endpoints(app_of(client)):
            for caller, headers in callers.items():
                response = await _call(client, endpoint, headers)
                checked += 1
                problem = _check(endpoint, caller, response)
                if problem:
                    findings.append(f"{name}-svc {endpoint} as {caller}: {problem}")
    assert not findings, "\n".join(findings)
    assert checked > 4 * 10 * len(Role)  # the walk found the routes


async def test_only_health_metrics_and_the_portal_are_public(
    security_apps: dict[str, httpx.AsyncClient],
) -> None:
    public: set[tuple[str, str]] = set()
    for client in security_apps.values():
        for endpoint in endpoints(app_of(client)):
            if not endpoint.roles:
                public.add((endpoint.method, endpoint.template))
                response = await _call(client, endpoint, {})
                assert response.status_code not in (401, 403), endpoint
    assert public == PUBLIC_ROUTES
    # the health routes answer a caller without credentials
    for client in security_apps.values():
        assert (await client.get("/healthz")).status_code == 200
        assert (await client.get("/metrics")).status_code == 200
    assert (await security_apps["complaint"].post("/v1/portal/complaints")).status_code not in (
        401,
        403,
    )


# --- least privilege: expectations that hold whatever the declarations say ---------------

# (service, method, route template, role that must be refused, why)
MUST_REFUSE = [
    ("case", "GET", "/v1/cases/{case_id}", Role.DIALER, "the dialer cannot read cases"),
    ("case", "POST", "/v1/accounts/import", Role.DIALER, "only the bank imports accounts"),
    ("case", "POST", "/v1/accounts/import", Role.OPS, "only the bank imports accounts"),
    ("case", "POST", "/v1/accounts/import-ndjson", Role.AGENT, "only the bank imports"),
    ("case", "POST", "/v1/cases/{case_id}/payments", Role.AGENT, "payments come from the bank"),
    ("case", "POST", "/v1/cases/{case_id}/recall", Role.OPS, "only the bank recalls a case"),
    ("case", "POST", "/v1/cases/{case_id}/assign", Role.AGENT, "agents do not assign cases"),
    ("case", "GET", "/v1/changes", Role.AGENT, "the change feed is the bank's"),
    ("contact", "POST", "/v1/contact-decisions", Role.BANK, "the bank cannot decide contacts"),
    ("contact", "POST", "/v1/contact-decisions", Role.QA, "QA cannot decide contacts"),
    ("contact", "POST", "/v1/webhooks/dialer/calls", Role.AGENT, "only the dialer reports"),
    ("contact", "POST", "/v1/webhooks/dialer/calls", Role.OPS, "only the dialer reports"),
    ("contact", "POST", "/v1/sms", Role.DIALER, "the dialer sends no SMS"),
    (
        "contact",
        "POST",
        "/v1/sms-templates/{template_id}/versions/{version}/approve",
        Role.OPS,
        "ops writes templates, the bank approves them (four eyes)",
    ),
    ("contact", "POST", "/v1/contact-holds/{hold_id}/lift", Role.AGENT, "agents lift no hold"),
    ("complaint", "GET", "/v1/tickets/{ticket_id}", Role.AGENT, "agents cannot read complaints"),
    ("complaint", "GET", "/v1/tickets/{ticket_id}", Role.BANK, "the bank reads statistics"),
    ("complaint", "POST", "/v1/tickets/{ticket_id}/outcome", Role.OPS, "complaint staff decide"),
    ("complaint", "POST", "/v1/inbound/email", Role.DIALER, "only the mail gateway files mail"),
    ("qa", "POST", "/v1/reviews/{task_id}/score", Role.AGENT, "agents do not score themselves"),
    ("qa", "POST", "/v1/reviews/{task_id}/dispute", Role.QA, "only the agent disputes"),
    ("qa", "POST", "/v1/agents/{agent_id}/reinstate", Role.OPS, "QA reinstates agents"),
    ("qa", "POST", "/v1/samples/{week}/draw", Role.OPS, "QA draws the sample"),
]


async def test_least_privilege_table(security_apps: dict[str, httpx.AsyncClient]) -> None:
    findings = []
    for name, method, template, role, why in MUST_REFUSE:
        client = security_apps[name]
        found = [
            e for e in endpoints(app_of(client)) if e.method == method and e.template == template
        ]
        assert found, f"{name}-svc has no route {method} {template}: update the table"
        endpoint = found[0]
        if role in endpoint.roles:
            findings.append(f"{name}-svc {endpoint} declares {role.value}: {why}")
            continue
        response = await _call(client, endpoint, credentials(client)[role.value])
        if response.status_code != 403:
            findings.append(f"{name}-svc {endpoint} as {role.value}: {response.status_code}")
    assert not findings, "\n".join(findings)


# Reads that are POSTs because the request carries what the read needs (auditor allowed).
AUDITOR_READS_BY_POST = {
    ("case", "POST", "/v1/exports"): "an export is a read; the POST carries its purpose",
}


async def test_the_auditor_can_write_nothing(security_apps: dict[str, httpx.AsyncClient]) -> None:
    writes = 0
    findings = []
    exempt: set[tuple[str, str, str]] = set()
    for name, client in security_apps.items():
        auditor = credentials(client)[Role.AUDITOR.value]
        for endpoint in endpoints(app_of(client)):
            if endpoint.method not in WRITE_METHODS or not endpoint.roles:
                continue
            if (name, endpoint.method, endpoint.template) in AUDITOR_READS_BY_POST:
                exempt.add((name, endpoint.method, endpoint.template))
                continue
            writes += 1
            if Role.AUDITOR in endpoint.roles:
                findings.append(f"{name}-svc {endpoint} admits the auditor")
                continue
            response = await _call(client, endpoint, auditor)
            if response.status_code != 403 or not is_problem(response):
                findings.append(f"{name}-svc {endpoint}: {response.status_code}")
    assert writes > 40
    assert exempt == set(AUDITOR_READS_BY_POST), "a read-by-POST route is gone: update the list"
    assert not findings, "\n".join(findings)
