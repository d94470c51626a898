"""The portal form's limits (COMP-CHANNELS) on PostgreSQL: the rate per client address,
shared by replicas on one database, with 429 and Retry-After; the size limit, declared or
streamed."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from collect_common.clock import FrozenClock
from complaint_svc.domain.policy import ComplaintPolicy

pytestmark = pytest.mark.postgres
Api = Callable[[], AbstractAsyncContextManager[httpx.AsyncClient]]

POLICY = ComplaintPolicy()
LIMIT = POLICY.portal_rate_limit  # 10 per 60 seconds by default
FORM = {
    "type": "frequency",
    "complainant_name": "李四",
    "complainant_contact": "13912345678",
    "content": "They call me every hour.",
}
PUBLIC = {"Authorization": ""}


@asynccontextmanager
async def from_address(api: httpx.AsyncClient, host: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the same app, seen from another address."""
    transport = httpx.ASGITransport(app=api.app, client=(host, 40000))  # type: ignore[attr-defined]
    async with httpx.AsyncClient(transport=transport, base_url="http://complaint-svc") as client:
        yield client


async def post(client: httpx.AsyncClient, **kwargs: Any) -> httpx.Response:
    kwargs.setdefault("json", FORM)
    return await client.post("/v1/portal/complaints", headers=PUBLIC, **kwargs)


async def tickets(api: httpx.AsyncClient) -> int:
    engine = api.app.state.runtime.engine  # type: ignore[attr-defined]
    async with engine.connect() as conn:
        return int(
            (await conn.execute(text("SELECT count(*) FROM complaint_tickets"))).scalar_one()
        )


async def test_beyond_the_rate_an_address_gets_429_with_retry_after_until_the_window_ends(
    api: httpx.AsyncClient, clock: FrozenClock
) -> None:
    clock.advance(timedelta(seconds=42))  # 02:00:42: the window ends at 02:01:00
    for _ in range(LIMIT):
        assert (await post(api)).status_code == 201
    refused = await post(api)
    assert refused.status_code == 429
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.headers["retry-after"] == "18"
    problem = refused.json()
    assert (problem["rule"], problem["limit"], problem["window_seconds"]) == (
        "COMP-CHANNELS",
        LIMIT,
        60,
    )
    assert await tickets(api) == LIMIT  # the refused form filed nothing

    async with from_address(api, "203.0.113.7") as other:
        assert (await post(other)).status_code == 201  # another address has its own count

    clock.advance(timedelta(seconds=18))  # the next window
    assert (await post(api)).status_code == 201


async def test_two_replicas_on_one_database_share_the_count(start_api: Api) -> None:
    async with start_api() as first, start_api() as second:
        for i in range(LIMIT):
            assert (await post(first if i % 2 else second)).status_code == 201
        assert (await post(first)).status_code == 429
        assert (await post(second)).status_code == 429


async def test_the_address_is_kept_only_as_a_keyed_hash_and_past_windows_are_removed(
    api: httpx.AsyncClient, clock: FrozenClock
) -> None:
    assert (await post(api)).status_code == 201
    clock.advance(timedelta(minutes=5))
    assert (await post(api)).status_code == 201  # a new window: the old one is cleaned
    engine = api.app.state.runtime.engine  # type: ignore[attr-defined]
    async with engine.connect() as conn:
        rows = (await conn.execute(text("SELECT client, hits FROM complaint_portal_rate"))).all()
    assert len(rows) == 1 and rows[0][1] == 1
    assert len(rows[0][0]) == 64 and "127.0.0.1" not in rows[0][0]


async def test_concurrent_forms_from_one_address_get_exactly_the_limit(
    api: httpx.AsyncClient,
) -> None:
    statuses = await asyncio.gather(*(post(api) for _ in range(LIMIT + 5)))
    assert sorted(r.status_code for r in statuses) == [201] * LIMIT + [429] * 5
    assert await tickets(api) == LIMIT


def form_of_size(size: int) -> bytes:
    """A valid form of exactly ``size`` bytes (UTF-8; Chinese text is 3 bytes a character)."""
    base = json.dumps({**FORM, "content": ""}, ensure_ascii=False).encode()
    wide = 5000  # 15000 bytes
    narrow = size - len(base) - 3 * wide
    assert narrow >= 0 and wide + narrow <= 8000
    body = json.dumps({**FORM, "content": "投" * wide + "x" * narrow}, ensure_ascii=False).encode()
    assert len(body) == size
    return body


async def test_a_form_of_the_limit_is_accepted_and_one_byte_more_is_413(
    api: httpx.AsyncClient,
) -> None:
    limit = POLICY.portal_max_body_bytes
    json_type = {**PUBLIC, "Content-Type": "application/json"}
    ok = await api.post("/v1/portal/complaints", content=form_of_size(limit), headers=json_type)
    assert ok.status_code == 201, ok.text
    over = await api.post(
        "/v1/portal/complaints", content=form_of_size(limit + 1), headers=json_type
    )
    assert over.status_code == 413
    assert over.json()["rule"] == "COMP-CHANNELS"
    assert str(limit) in over.json()["detail"]
    assert await tickets(api) == 1


async def test_a_streamed_form_without_a_length_is_cut_at_the_limit(
    api: httpx.AsyncClient,
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(64):  # 64 KiB offered, four times the limit, no Content-Length
            yield b"x" * 1024

    r = await api.post(
        "/v1/portal/complaints",
        content=chunks(),
        headers={**PUBLIC, "Content-Type": "application/json"},
    )
    assert r.status_code == 413 and r.json()["rule"] == "COMP-CHANNELS"
    assert await tickets(api) == 0
