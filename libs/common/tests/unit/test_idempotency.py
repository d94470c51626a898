"""Idempotency-Key: a retried POST gets the first answer and changes nothing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.operations import Operations
from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import Column, MetaData, String, Table, func, select

from collect_common.clock import FrozenClock
from collect_common.db import NAMING_CONVENTION, BigId, new_metadata
from collect_common.runtime import ServiceRuntime
from collect_common.security.auth import Role
from collect_common.settings import ServiceSettings
from collect_common.web.app import create_app
from collect_common.web.auth import require_roles
from collect_common.web.idempotency import (
    IDEMPOTENCY_KEYS,
    IdempotencyKeyHeader,
    IdempotencyKeys,
    RequiredIdempotencyKeyHeader,
    add_idempotency_table,
)
from collect_common.web.idempotency_migrations import (
    create_idempotency_table,
    drop_idempotency_table,
)
from collect_common.web.problems import problem_response


class PaymentIn(BaseModel):
    case_id: str = Field(examples=["case-1"])
    amount: str = Field(pattern=r"^\d+(\.\d{1,2})?$", examples=["120.00"])


@dataclass
class Hooks:
    """Test levers inside the endpoint."""

    fail_next: int = 0
    hold: asyncio.Event | None = None  # the claimer waits for it before finishing
    claimed: asyncio.Event = field(default_factory=asyncio.Event)
    entered: int = 0  # requests that reached begin()


@dataclass
class Harness:
    app: FastAPI
    runtime: ServiceRuntime
    keys: IdempotencyKeys
    payments: Table
    hooks: Hooks
    clock: FrozenClock

    async def payment_count(self) -> int:
        async with self.runtime.sessions() as s:
            return int(
                (await s.execute(select(func.count()).select_from(self.payments))).scalar_one()
            )

    async def idempotency_rows(self) -> int:
        async with self.runtime.sessions() as s:
            table = self.keys.table
            return int((await s.execute(select(func.count()).select_from(table))).scalar_one())

    def token(self, subject: str) -> dict[str, str]:
        token = self.app.state.authenticator.tokens.issue(subject, [Role.BANK])
        return {"Authorization": f"Bearer {token}"}


def build(database_url: str, clock: FrozenClock | None = None, **key_options: object) -> Harness:
    clock = clock or FrozenClock()
    metadata = new_metadata()
    add_idempotency_table(metadata)
    payments = Table(
        "payments",
        metadata,
        Column("id", BigId, primary_key=True, autoincrement=True),
        Column("case_id", String(50), nullable=False),
        Column("amount", String(20), nullable=False),
    )
    settings = ServiceSettings(
        service_name="test-svc",
        database_url=database_url,
        kafka_bootstrap_servers="127.0.0.1:1",
        relay_enabled=False,
    )
    runtime = ServiceRuntime(settings=settings, metadata=metadata, clock=clock)
    keys = IdempotencyKeys(metadata.tables[IDEMPOTENCY_KEYS], clock, **key_options)  # type: ignore[arg-type]
    hooks = Hooks()
    router = APIRouter(prefix="/v1")

    async def pay(body: PaymentIn, request: Request, key: str | None) -> Response:
        async with runtime.uow() as uow:
            hooks.entered += 1
            replay = await keys.begin(uow, request, request.state.principal, key)
            if replay is not None:
                return replay
            hooks.claimed.set()
            if hooks.hold is not None:
                await hooks.hold.wait()
            if body.amount in ("0", "0.00"):  # a business refusal, stored like a success
                refusal = problem_response(
                    request,
                    422,
                    title="Validation failed",
                    detail="a payment must be positive",
                    slug="payment-amount",
                    rule="PAY-AMOUNT",
                    field="amount",
                )
                await keys.record(uow, refusal)
                await uow.commit()
                return refusal
            new_id = (
                await uow.session.execute(
                    payments.insert()
                    .values(case_id=body.case_id, amount=body.amount)
                    .returning(payments.c.id)
                )
            ).scalar_one()
            if hooks.fail_next > 0:
                hooks.fail_next -= 1
                raise RuntimeError("the work failed half-way")
            response = JSONResponse(
                {"id": new_id, "case_id": body.case_id, "amount": body.amount},
                status_code=201,
                headers={"Location": f"/v1/payments/{new_id}"},
            )
            await keys.record(uow, response)
            await uow.commit()
            return response

    @router.post("/payments", status_code=201, dependencies=[require_roles(Role.BANK)])
    async def create_payment(
        body: PaymentIn, request: Request, key: IdempotencyKeyHeader
    ) -> Response:
        return await pay(body, request, key)

    @router.post("/imports", status_code=201, dependencies=[require_roles(Role.BANK)])
    async def create_import(
        body: PaymentIn, request: Request, key: RequiredIdempotencyKeyHeader
    ) -> Response:
        return await pay(body, request, key)

    app = create_app(runtime, title="test", routers=[router])
    return Harness(app, runtime, keys, payments, hooks, clock)


@asynccontextmanager
async def serving(harness: Harness) -> AsyncIterator[httpx.AsyncClient]:
    app = harness.app
    async with app.router.lifespan_context(app):
        async with harness.runtime.engine.begin() as conn:
            await conn.run_sync(harness.runtime.metadata.create_all)
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            yield client


@pytest.fixture
def harness(tmp_path: Path) -> Harness:
    return build(f"sqlite+aiosqlite:///{tmp_path}/t.db")


@pytest.fixture
async def client(harness: Harness) -> AsyncIterator[httpx.AsyncClient]:
    async with serving(harness) as c:
        yield c


BODY = {"case_id": "case-1", "amount": "120.00"}


def _headers(harness: Harness, key: str | None, subject: str = "bank-core") -> dict[str, str]:
    headers = harness.token(subject)
    if key is not None:
        headers["Idempotency-Key"] = key
    return headers


async def test_a_retry_gets_the_first_answer_byte_for_byte_and_changes_nothing(
    harness: Harness, client: httpx.AsyncClient
) -> None:
    headers = _headers(harness, "k-1")
    first = await client.post("/v1/payments", json=BODY, headers=headers)
    assert first.status_code == 201 and "idempotent-replayed" not in first.headers
    assert await harness.payment_count() == 1

    retry = await client.post("/v1/payments", json=BODY, headers=headers)
    assert retry.status_code == 201
    assert retry.content == first.content
    assert retry.headers["content-type"] == first.headers["content-type"]
    assert retry.headers["location"] == first.headers["location"] == "/v1/payments/1"
    assert retry.headers["idempotent-replayed"] == "true"
    assert await harness.payment_count() == 1


async def test_without_a_key_every_request_is_applied(
    harness: Harness, client: httpx.AsyncClient
) -> None:
    for _ in range(2):
        r = await client.post("/v1/payments", json=BODY, headers=_headers(harness, None))
        assert r.status_code == 201
    assert await harness.payment_count() == 2
    assert await harness.idempotency_rows() == 0


async def test_the_same_key_for_a_different_request_is_refused(
    harness: Harness, client: httpx.AsyncClient
) -> None:
    headers = _headers(harness, "k-2")
    assert (await client.post("/v1/payments", json=BODY, headers=headers)).status_code == 201
    other = {**BODY, "amount": "99.00"}
    r = await client.post("/v1/payments", json=other, headers=headers)
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    problem = r.json()
    assert problem["rule"] == "IDEMPOTENCY-KEY-REUSE"
    assert problem["field"] == "Idempotency-Key"
    # another path with the same key is another request too
    r = await client.post("/v1/imports", json=BODY, headers=headers)
    assert r.status_code == 422 and r.json()["rule"] == "IDEMPOTENCY-KEY-REUSE"
    assert await harness.payment_count() == 1


async def test_keys_are_scoped_per_principal(harness: Harness, client: httpx.AsyncClient) -> None:
    a = await client.post("/v1/payments", json=BODY, headers=_headers(harness, "k-3", "bank-a"))
    b = await client.post("/v1/payments", json=BODY, headers=_headers(harness, "k-3", "bank-b"))
    assert a.status_code == b.status_code == 201
    assert "idempotent-replayed" not in b.headers
    assert a.json()["id"] != b.json()["id"]
    assert await harness.payment_count() == 2
    # and each one's retry replays its own answer
    again = await client.post("/v1/payments", json=BODY, headers=_headers(harness, "k-3", "bank-b"))
    assert again.content == b.content and again.headers["idempotent-replayed"] == "true"


async def test_concurrent_duplicates_apply_once_and_answer_alike(
    harness: Harness, client: httpx.AsyncClient
) -> None:
    harness.hooks.hold = asyncio.Event()
    headers = _headers(harness, "k-4")

    async def release_when_claimed() -> None:
        await harness.hooks.claimed.wait()
        while harness.hooks.entered < 3:  # the duplicates are on their way into begin()
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)  # where their claim waits on the first one's
        assert harness.hooks.hold is not None
        harness.hooks.hold.set()

    release = asyncio.create_task(release_when_claimed())
    answers = await asyncio.gather(
        *(client.post("/v1/payments", json=BODY, headers=headers) for _ in range(3))
    )
    await release
    assert await harness.payment_count() == 1
    assert {r.status_code for r in answers} == {201}
    assert len({r.content for r in answers}) == 1
    assert sorted(r.headers.get("idempotent-replayed", "") for r in answers) == ["", "true", "true"]


async def test_work_that_fails_stores_nothing_and_a_retry_runs_again(
    harness: Harness, client: httpx.AsyncClient
) -> None:
    harness.hooks.fail_next = 1
    headers = _headers(harness, "k-5")
    r = await client.post("/v1/payments", json=BODY, headers=headers)
    assert r.status_code == 500
    assert await harness.payment_count() == 0
    assert await harness.idempotency_rows() == 0
    r = await client.post("/v1/payments", json=BODY, headers=headers)
    assert r.status_code == 201 and "idempotent-replayed" not in r.headers
    assert await harness.payment_count() == 1


async def test_a_business_refusal_is_stored_and_replayed(
    harness: Harness, client: httpx.AsyncClient
) -> None:
    headers = _headers(harness, "k-6")
    zero = {**BODY, "amount": "0"}
    first = await client.post("/v1/payments", json=zero, headers=headers)
    assert first.status_code == 422 and first.json()["rule"] == "PAY-AMOUNT"
    retry = await client.post("/v1/payments", json=zero, headers=headers)
    assert retry.status_code == 422 and retry.content == first.content
    assert retry.headers["content-type"] == "application/problem+json"
    assert retry.headers["idempotent-replayed"] == "true"


async def test_requests_refused_before_the_endpoint_do_not_use_the_key(
    harness: Harness, client: httpx.AsyncClient
) -> None:
    headers = _headers(harness, "k-7")
    bad = await client.post("/v1/payments", json={**BODY, "amount": "x"}, headers=headers)
    assert bad.status_code == 422 and bad.json()["field"] == "body.amount"
    assert await harness.idempotency_rows() == 0
    assert (await client.post("/v1/payments", json=BODY, headers=headers)).status_code == 201


@pytest.mark.parametrize("key", ["", "has space", "x" * 201, "ключ", "tab\tkey"])
async def test_a_malformed_key_is_a_400_problem_naming_the_header(
    harness: Harness, client: httpx.AsyncClient, key: str
) -> None:
    headers = harness.token("bank-core")
    r = await client.post(
        "/v1/payments",
        json=BODY,
        headers=[
            *((k.encode(), v.encode()) for k, v in headers.items()),
            (b"Idempotency-Key", key.encode()),
        ],
    )
    assert r.status_code == 400, r.text
    assert r.json()["field"] == "Idempotency-Key" and r.json()["rule"] == "IDEMPOTENCY-KEY"
    assert await harness.payment_count() == 0


async def test_a_route_that_requires_the_key_answers_428_without_it(
    harness: Harness, client: httpx.AsyncClient
) -> None:
    r = await client.post("/v1/imports", json=BODY, headers=_headers(harness, None))
    assert r.status_code == 428
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["field"] == "Idempotency-Key" and r.json()["rule"] == "IDEMPOTENCY-KEY"
    key = "x" * 200
    r = await client.post("/v1/imports", json=BODY, headers=_headers(harness, key))
    assert r.status_code == 201


async def test_expired_keys_are_ignored_and_pruned(
    harness: Harness, client: httpx.AsyncClient
) -> None:
    headers = _headers(harness, "k-8")
    assert (await client.post("/v1/payments", json=BODY, headers=headers)).status_code == 201
    await client.post("/v1/payments", json=BODY, headers=_headers(harness, "k-9"))
    harness.clock.advance(timedelta(hours=23, minutes=59))
    headers = _headers(harness, "k-8")  # a fresh token: the clock moved
    r = await client.post("/v1/payments", json=BODY, headers=headers)
    assert r.headers.get("idempotent-replayed") == "true"
    harness.clock.advance(timedelta(minutes=1))  # 24 hours since the first: expired
    headers = _headers(harness, "k-8")
    r = await client.post("/v1/payments", json={**BODY, "amount": "5"}, headers=headers)
    assert r.status_code == 201 and "idempotent-replayed" not in r.headers
    assert await harness.payment_count() == 3

    async with harness.runtime.sessions() as session, session.begin():
        pruned = await harness.keys.prune(session, harness.clock.now())
    assert pruned == 1  # k-9; k-8 was taken over just now
    assert await harness.idempotency_rows() == 1


async def test_record_refuses_server_errors(harness: Harness, client: httpx.AsyncClient) -> None:
    async with harness.runtime.uow() as uow:
        with pytest.raises(ValueError, match="5xx"):
            await harness.keys.record(uow, JSONResponse({}, status_code=503))


async def test_the_header_is_documented_in_openapi(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    params = spec["paths"]["/v1/payments"]["post"]["parameters"]
    header = next(p for p in params if p["name"] == "Idempotency-Key")
    assert header["in"] == "header" and "24 hours" in header["description"]


def test_the_migration_creates_the_table_the_metadata_describes(tmp_path: Path) -> None:
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    add_idempotency_table(metadata)
    assert add_idempotency_table(metadata) is metadata.tables[IDEMPOTENCY_KEYS]
    engine = sa.create_engine(f"sqlite:///{tmp_path}/m.db")
    with engine.begin() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        with Operations.context(context):
            create_idempotency_table()
        assert compare_metadata(context, metadata) == []
        with Operations.context(context):
            drop_idempotency_table()
        assert not sa.inspect(conn).has_table(IDEMPOTENCY_KEYS)
    engine.dispose()
