"""Cursor pagination: typed opaque cursors, keyset queries, a Page model, ?cursor=&limit=."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict
from sqlalchemy import Column, DateTime, String, Table, insert, select

from collect_common.clock import FrozenClock
from collect_common.db import BigId, new_metadata
from collect_common.runtime import ServiceRuntime
from collect_common.security.auth import Role
from collect_common.settings import DEV_API_KEYS, ServiceSettings
from collect_common.web.app import create_app
from collect_common.web.auth import require_roles
from collect_common.web.pagination import (
    Page,
    PageQuery,
    decode_cursor,
    encode_cursor,
    keyset,
    page_of,
)
from collect_common.web.problems import ProblemError

BANK = {"X-API-Key": DEV_API_KEYS["bank-core"][1]}
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
ROWS = 137


class CaseOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"id": 7, "ref": "C-0007", "opened_at": T0.isoformat()}]}
    )

    id: int
    ref: str
    opened_at: datetime


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


# --- cursors -------------------------------------------------------------------------


def test_cursor_values_round_trip_with_their_types() -> None:
    values: list[Any] = [
        "C-0007 王",
        2**62,
        -3,
        T0,
        datetime(2026, 1, 5, 17, 30, 0, 123456, tzinfo=UTC),
        datetime(2026, 1, 5, 9, 0),  # naive, as SQLite gives them back
        date(2026, 2, 28),
        Decimal("1200.50"),
    ]
    cursor = encode_cursor(values)
    assert cursor.isascii() and "=" not in cursor and "+" not in cursor and "/" not in cursor
    back = decode_cursor(cursor)
    assert back == values
    assert [type(v) for v in back] == [type(v) for v in values]
    assert str(back[-1]) == "1200.50"  # the exponent survives
    aware, naive = back[3], back[5]
    assert isinstance(aware, datetime) and isinstance(naive, datetime)
    assert aware.tzinfo is not None and naive.tzinfo is None


@pytest.mark.parametrize("value", [True, None, 1.5, Decimal("NaN"), b"x"])
def test_values_a_cursor_cannot_hold_are_refused(value: Any) -> None:
    with pytest.raises((TypeError, ValueError)):
        encode_cursor([value])


@pytest.mark.parametrize(
    "text",
    [
        "",
        "not a cursor!",
        "x" * 3000,
        _b64(b"\xff\xfe"),
        _b64(b"{not json"),
        _b64(b"[]"),
        _b64(b'{"s": "x"}'),
        _b64(b'[["s"]]'),
        _b64(b'[["q", "x"]]'),
        _b64(b'[["i", "12"]]'),
        _b64(b'[["i", true]]'),
        _b64(json.dumps([["i", 2**64]]).encode()),
        _b64(b'[["t", "yesterday"]]'),
        _b64(b'[["n", "NaN"]]'),
        _b64(b'[["n", "1e"]]'),
        _b64(b"[" * 5000 + b"]" * 5000),
    ],
)
def test_garbage_is_a_400_problem_naming_the_cursor(text: str) -> None:
    with pytest.raises(ProblemError) as caught:
        decode_cursor(text)
    assert caught.value.status == 400
    assert caught.value.field == "cursor" and caught.value.rule == "PAGINATION"


def test_page_of_cuts_at_the_limit_and_points_past_the_last_item() -> None:
    rows = [(T0, i) for i in range(6)]
    items, cursor = page_of(rows, lambda r: r, 5)
    assert items == rows[:5] and cursor is not None
    assert decode_cursor(cursor) == [T0, 4]
    assert page_of(rows[:5], lambda r: r, 5) == (rows[:5], None)
    assert page_of([], lambda r: r, 5) == ([], None)


# --- the keyset query ------------------------------------------------------------------

metadata = new_metadata()
cases = Table(
    "cases",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("ref", String(20), nullable=False),
    Column("opened_at", DateTime(timezone=True), nullable=False),
)
ORDER = (cases.c.opened_at, cases.c.id)


def test_keyset_filters_by_row_value_orders_and_fetches_one_more() -> None:
    query = keyset(select(cases).order_by(cases.c.ref), ORDER, encode_cursor([T0, 9]), 50)
    sql = str(query.compile()).replace("\n", " ")
    assert "WHERE (cases.opened_at, cases.id) > (" in sql
    assert sql.endswith("ORDER BY cases.opened_at ASC, cases.id ASC  LIMIT :param_3")
    assert "cases.ref" not in sql.split("ORDER BY")[1]  # an earlier ORDER BY is replaced
    assert query.compile().params["param_3"] == 51
    backwards = str(keyset(select(cases), ORDER, encode_cursor([T0, 9]), 10, descending=True))
    assert "(cases.opened_at, cases.id) < (" in backwards and "cases.id DESC" in backwards


@pytest.mark.parametrize(
    "values", [[T0], [T0, 1, 2], ["2026-01-05", 1], [T0, "1"], [date(2026, 1, 5), 1]]
)
def test_a_cursor_of_another_listing_is_a_400_problem(values: list[Any]) -> None:
    with pytest.raises(ProblemError) as caught:
        keyset(select(cases), ORDER, encode_cursor(values), 50)
    assert caught.value.status == 400 and caught.value.field == "cursor"


# --- through the API -------------------------------------------------------------------


def _app(tmp_path: Path) -> tuple[Any, ServiceRuntime]:
    settings = ServiceSettings(
        service_name="test-svc",
        database_url=f"sqlite+aiosqlite:///{tmp_path}/p.db",
        kafka_bootstrap_servers="127.0.0.1:1",
        relay_enabled=False,
    )
    runtime = ServiceRuntime(settings=settings, metadata=metadata, clock=FrozenClock())
    router = APIRouter(prefix="/v1")

    @router.get("/cases", dependencies=[require_roles(Role.BANK)])
    async def list_cases(page: PageQuery, newest_first: bool = False) -> Page[CaseOut]:
        async with runtime.uow() as uow:
            query = page.keyset(select(cases), ORDER, descending=newest_first)
            rows = (await uow.session.execute(query)).all()
        items, next_cursor = page.page_of(rows, lambda r: (r.opened_at, r.id))
        return Page(
            items=[CaseOut(id=r.id, ref=r.ref, opened_at=r.opened_at) for r in items],
            next_cursor=next_cursor,
        )

    return create_app(runtime, title="test", routers=[router]), runtime


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    app, runtime = _app(tmp_path)
    async with app.router.lifespan_context(app):
        async with runtime.engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
            # seven distinct instants for 137 rows: most rows tie on the first sort key,
            # and ids do not follow time (row 0 is the latest)
            await conn.execute(
                insert(cases),
                [
                    {"ref": f"C-{i:04d}", "opened_at": T0 + timedelta(minutes=(ROWS - i) % 7)}
                    for i in range(ROWS)
                ],
            )
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            yield c


async def _walk(client: httpx.AsyncClient, **params: Any) -> tuple[list[dict[str, Any]], int]:
    items: list[dict[str, Any]] = []
    sizes = []
    cursor = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        r = await client.get("/v1/cases", params=query, headers=BANK)
        assert r.status_code == 200, r.text
        page = r.json()
        items += page["items"]
        sizes.append(len(page["items"]))
        cursor = page["next_cursor"]
        if cursor is None:
            return items, len(sizes)
        assert sizes[-1] == params.get("limit", 50)


def _key(item: dict[str, Any]) -> tuple[datetime, int]:
    return datetime.fromisoformat(item["opened_at"]), item["id"]


async def test_walking_all_pages_gives_every_row_once_in_order(client: httpx.AsyncClient) -> None:
    items, pages = await _walk(client, limit=50)
    assert pages == 3 and len(items) == ROWS
    ids = [item["id"] for item in items]
    assert len(set(ids)) == ROWS and set(ids) == set(range(1, ROWS + 1))
    assert [_key(i) for i in items] == sorted(_key(i) for i in items)
    # rows that tie on opened_at come in id order, across page boundaries too
    first_instant = [i["id"] for i in items if _key(i)[0] == _key(items[0])[0]]
    assert len(first_instant) > 1 and first_instant == sorted(first_instant)
    assert _key(items[49])[0] == _key(items[50])[0]  # page 1 ends inside a tie


async def test_default_limit_and_newest_first(client: httpx.AsyncClient) -> None:
    r = await client.get("/v1/cases", headers=BANK)
    assert len(r.json()["items"]) == 50
    items, pages = await _walk(client, limit=40, newest_first="true")
    assert pages == 4 and len({i["id"] for i in items}) == ROWS
    assert [_key(i) for i in items] == sorted((_key(i) for i in items), reverse=True)


async def test_a_forged_cursor_is_a_400_problem_naming_the_cursor(
    client: httpx.AsyncClient,
) -> None:
    for cursor in ["forged", encode_cursor(["x", 1]), encode_cursor([T0])]:
        r = await client.get("/v1/cases", params={"cursor": cursor}, headers=BANK)
        assert r.status_code == 400
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["field"] == "cursor" and r.json()["rule"] == "PAGINATION"


@pytest.mark.parametrize("limit", ["0", "501", "-1", "ten"])
async def test_a_bad_limit_is_a_422_naming_it(client: httpx.AsyncClient, limit: str) -> None:
    r = await client.get("/v1/cases", params={"limit": limit}, headers=BANK)
    assert r.status_code == 422
    assert r.json()["field"] == "query.limit"


async def test_the_page_schema_carries_an_example(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    schemas = spec["components"]["schemas"]
    page = next(v for k, v in schemas.items() if k.startswith("Page"))
    example = page["examples"][0]
    assert example["items"] == [{"id": 7, "ref": "C-0007", "opened_at": T0.isoformat()}]
    assert decode_cursor(example["next_cursor"])
    params = {p["name"]: p for p in spec["paths"]["/v1/cases"]["get"]["parameters"]}
    assert (
        params["limit"]["schema"]["maximum"] == 500 and params["limit"]["schema"]["default"] == 50
    )
