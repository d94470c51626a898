"""The OpenAPI document lists the problems the shared machinery answers with."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel

from collect_common.clock import FrozenClock
from collect_common.security.auth import ApiKeyRegistry, Role, TokenService
from collect_common.settings import DEV_API_KEYS, DEV_TOKEN_SECRET, ServiceSettings
from collect_common.web.auth import PUBLIC, Authenticator, require_roles
from collect_common.web.idempotency import IdempotencyKeyHeader, RequiredIdempotencyKeyHeader
from collect_common.web.openapi import document_platform_responses
from collect_common.web.pagination import PageQuery
from collect_common.web.problems import PROBLEM_JSON, install_problem_handlers

PROBLEM = {"$ref": "#/components/schemas/Problem"}


class PaymentIn(BaseModel):
    amount: Decimal


def _app() -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)
    keys = ApiKeyRegistry.parse(ServiceSettings().api_keys.get_secret_value())
    app.state.authenticator = Authenticator(
        keys, TokenService(DEV_TOKEN_SECRET, "collect", FrozenClock())
    )

    @app.get("/healthz", dependencies=[PUBLIC])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/cases", dependencies=[require_roles(Role.OPS)])
    async def cases(page: PageQuery) -> list[str]:
        return []

    @app.post("/v1/cases/{case_id}/payments", dependencies=[require_roles(Role.BANK)])
    async def pay(case_id: str, body: PaymentIn, key: IdempotencyKeyHeader) -> dict[str, str]:
        return {"case_id": case_id}

    @app.post("/v1/exports", dependencies=[require_roles(Role.BANK)])
    async def export(key: RequiredIdempotencyKeyHeader) -> dict[str, str]:
        return {}

    document_platform_responses(app)
    return app


def _responses(document: dict[str, Any], path: str, method: str) -> dict[str, Any]:
    responses: dict[str, Any] = document["paths"][path][method]["responses"]
    return responses


def test_each_operation_documents_the_problems_it_can_answer() -> None:
    document = _app().openapi()
    assert set(_responses(document, "/healthz", "get")) == {"200"}
    assert set(_responses(document, "/v1/cases", "get")) == {"200", "400", "401", "403", "422"}
    assert set(_responses(document, "/v1/cases/{case_id}/payments", "post")) == {
        "200", "400", "401", "403", "404", "422"
    }  # fmt: skip
    assert "428" in _responses(document, "/v1/exports", "post")
    for code, response in _responses(document, "/v1/cases/{case_id}/payments", "post").items():
        if code != "200":
            assert response["content"] == {PROBLEM_JSON: {"schema": PROBLEM}}, code
    schemas = document["components"]["schemas"]
    assert "HTTPValidationError" not in schemas and "ValidationError" not in schemas
    assert schemas["Problem"]["required"] == ["type", "title", "status", "detail"]


def test_the_idempotency_key_header_documents_the_keys_it_accepts() -> None:
    document = _app().openapi()
    params = document["paths"]["/v1/cases/{case_id}/payments"]["post"]["parameters"]
    header = next(p for p in params if p["name"] == "Idempotency-Key")
    schema = header["schema"]  # string or null; the string keywords constrain the string
    assert schema["pattern"] == "^[!-~]+$" and schema["maxLength"] == 200


@pytest.mark.parametrize("document_first", [True, False])
async def test_the_documented_validation_problem_is_what_is_sent(document_first: bool) -> None:
    app = _app()
    if document_first:
        app.openapi()
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://svc"
    ) as client:
        response = await client.post(
            "/v1/cases/0/payments",
            json={"amount": ""},
            headers={"X-API-Key": DEV_API_KEYS["bank-core"][1]},
        )
    assert response.status_code == 422
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    documented = _responses(app.openapi(), "/v1/cases/{case_id}/payments", "post")["422"]
    assert list(documented["content"]) == [PROBLEM_JSON]
    assert set(app.openapi()["components"]["schemas"]["Problem"]["required"]) <= set(
        response.json()
    )
