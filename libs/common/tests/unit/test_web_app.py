"""The app factory: problem+json, roles on every route, request ids, metrics, readiness."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from pydantic import BaseModel, Field

from collect_common.clock import FrozenClock
from collect_common.db import new_metadata
from collect_common.runtime import ServiceRuntime
from collect_common.security.auth import Role
from collect_common.settings import DEV_API_KEYS, ServiceSettings
from collect_common.web.app import create_app
from collect_common.web.auth import PUBLIC, require_roles
from collect_common.web.problems import ProblemError

BANK_KEY = DEV_API_KEYS["bank-core"][1]
DIALER_KEY = DEV_API_KEYS["dialer"][1]
OPS_KEY = DEV_API_KEYS["ops-dashboard"][1]


class Payment(BaseModel):
    amount: str = Field(pattern=r"^\d+(\.\d{1,2})?$")


def _router() -> APIRouter:
    router = APIRouter(prefix="/v1")

    @router.post("/payments", dependencies=[require_roles(Role.BANK)])
    async def pay(body: Payment) -> dict[str, str]:
        return {"amount": body.amount}

    @router.post("/cases/{case_id}/recall", dependencies=[require_roles(Role.BANK)])
    async def recall(case_id: str) -> None:
        raise ProblemError(
            409, f"case {case_id} is settled", rule="CASE-LIFECYCLE", current_state="settled"
        )

    @router.get("/boom", dependencies=[PUBLIC])
    async def boom() -> None:
        raise ValueError("secret internals 11010519491231002X")

    return router


def _runtime(tmp_path: Path, **overrides: object) -> ServiceRuntime:
    settings = ServiceSettings(
        service_name="test-svc",
        database_url=f"sqlite+aiosqlite:///{tmp_path}/t.db",
        kafka_bootstrap_servers="127.0.0.1:1",  # nothing listens there
        relay_enabled=False,
        **overrides,
    )
    return ServiceRuntime(settings=settings, metadata=new_metadata(), clock=FrozenClock())


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(_runtime(tmp_path), title="test", routers=[_router()])
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            yield c


async def test_route_without_declared_roles_is_refused_at_build_time(tmp_path: Path) -> None:
    router = APIRouter()

    @router.get("/v1/open")
    async def open_route() -> None:
        return None

    with pytest.raises(RuntimeError, match="declare no roles"):
        create_app(_runtime(tmp_path), title="t", routers=[router])


async def test_caller_without_credentials_gets_401_problem(client: httpx.AsyncClient) -> None:
    r = await client.post("/v1/payments", json={"amount": "10.00"})
    assert r.status_code == 401
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["rule"] == "SEC-ACCESS"


async def test_wrong_role_gets_403_and_right_role_passes(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/v1/payments", json={"amount": "10.00"}, headers={"X-API-Key": DIALER_KEY}
    )
    assert r.status_code == 403 and r.json()["rule"] == "SEC-ACCESS"
    r = await client.post("/v1/payments", json={"amount": "10.00"}, headers={"X-API-Key": BANK_KEY})
    assert r.status_code == 200 and r.json() == {"amount": "10.00"}
    r = await client.post(
        "/v1/payments", json={"amount": "10.00"}, headers={"X-API-Key": BANK_KEY + "x"}
    )
    assert r.status_code == 401


async def test_people_authenticate_with_signed_tokens(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    app = client._transport.app  # type: ignore[attr-defined]
    assert isinstance(app, FastAPI)
    token = app.state.authenticator.tokens.issue("agent-007", [Role.BANK])
    r = await client.post(
        "/v1/payments", json={"amount": "1"}, headers={"Authorization": f"Bearer {token}"}
    )
    assert r.status_code == 200
    r = await client.post(
        "/v1/payments", json={"amount": "1"}, headers={"Authorization": f"Bearer {token[:-2]}xx"}
    )
    assert r.status_code == 401


async def test_validation_problem_names_the_field_and_rule(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/v1/payments", json={"amount": "12.345"}, headers={"X-API-Key": BANK_KEY}
    )
    assert r.status_code == 422
    body = r.json()
    assert r.headers["content-type"] == "application/problem+json"
    assert body["field"] == "body.amount"
    assert body["errors"][0]["rule"] == "string_pattern_mismatch"


async def test_business_conflict_carries_rule_and_extensions(client: httpx.AsyncClient) -> None:
    r = await client.post("/v1/cases/c-1/recall", headers={"X-API-Key": BANK_KEY})
    assert r.status_code == 409
    body = r.json()
    assert body["rule"] == "CASE-LIFECYCLE" and body["current_state"] == "settled"
    assert body["instance"] == "/v1/cases/c-1/recall"


async def test_unhandled_error_is_a_500_problem_without_internals(
    client: httpx.AsyncClient,
) -> None:
    r = await client.get("/v1/boom", headers={"X-Request-ID": "req-123"})
    assert r.status_code == 500
    assert "secret internals" not in r.text and "1101051949" not in r.text
    assert r.json()["request_id"] == "req-123"


async def test_request_and_correlation_ids_are_echoed_or_made(client: httpx.AsyncClient) -> None:
    r = await client.get("/healthz", headers={"X-Request-ID": "abc-1", "X-Correlation-ID": "f-9"})
    assert r.headers["x-request-id"] == "abc-1" and r.headers["x-correlation-id"] == "f-9"
    r = await client.get("/healthz", headers={"X-Request-ID": "bad id with spaces"})
    assert r.headers["x-request-id"] != "bad id with spaces"
    assert len(r.headers["x-request-id"]) == 36


async def test_unknown_route_is_a_404_problem(client: httpx.AsyncClient) -> None:
    r = await client.get("/v1/nothing-here")
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"


async def test_metrics_count_requests_by_route_template(client: httpx.AsyncClient) -> None:
    await client.post("/v1/cases/c-1/recall", headers={"X-API-Key": BANK_KEY})
    await client.post("/v1/cases/c-2/recall", headers={"X-API-Key": BANK_KEY})
    text = (await client.get("/metrics")).text
    line = (
        'http_requests_total{method="POST",route="/v1/cases/{case_id}/recall",'
        'service="test-svc",status="409"} 2.0'
    )
    assert line in text


async def test_readiness_reports_database_and_broker(client: httpx.AsyncClient) -> None:
    r = await client.get("/readyz")
    assert r.status_code == 200
    assert r.json()["checks"] == {"database": "up", "broker": "down"}
    assert r.json()["status"] == "degraded"  # writes go on through the outbox


async def test_readiness_fails_when_the_broker_is_required_and_down(tmp_path: Path) -> None:
    app = create_app(_runtime(tmp_path, readiness_requires_broker=True), title="t")
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c,
    ):
        r = await c.get("/readyz")
    assert r.status_code == 503 and r.headers["retry-after"] == "5"
    assert r.headers["content-type"] == "application/problem+json"


async def test_service_info_is_for_ops_and_auditors(client: httpx.AsyncClient) -> None:
    assert (await client.get("/v1/service-info")).status_code == 401
    assert (
        await client.get("/v1/service-info", headers={"X-API-Key": BANK_KEY})
    ).status_code == 403
    r = await client.get("/v1/service-info", headers={"X-API-Key": OPS_KEY})
    assert r.status_code == 200 and r.json()["service"] == "test-svc"


def test_production_refuses_development_secrets() -> None:
    with pytest.raises(ValueError, match="development default"):
        ServiceSettings(environment="production", database_url="postgresql://db/x")
