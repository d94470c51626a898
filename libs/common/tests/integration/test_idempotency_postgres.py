"""Idempotency-Key on PostgreSQL: concurrent duplicates wait on the first claim."""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from datetime import timedelta
from pathlib import Path
from types import ModuleType

import pytest
from sqlalchemy import text
from starlette.requests import Request


def _unit_harness() -> ModuleType:
    # the app under test is the one the unit tests build, pointed at PostgreSQL
    path = Path(__file__).parents[1] / "unit" / "test_idempotency.py"
    spec = importlib.util.spec_from_file_location("_idempotency_harness", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


h = _unit_harness()
pytestmark = pytest.mark.postgres


async def test_concurrent_duplicates_apply_once_and_get_the_same_answer(pg_url: str) -> None:
    harness = h.build(pg_url)
    harness.hooks.hold = asyncio.Event()
    async with h.serving(harness) as client:
        headers = h._headers(harness, "batch-2026-11-28")

        async def release_when_all_entered() -> None:
            await harness.hooks.claimed.wait()
            while harness.hooks.entered < 5:
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.1)  # the duplicates' inserts now wait on the claim's row lock
            harness.hooks.hold.set()

        release = asyncio.create_task(release_when_all_entered())
        answers = await asyncio.gather(
            *(client.post("/v1/payments", json=h.BODY, headers=headers) for _ in range(5))
        )
        await release
        assert await harness.payment_count() == 1
        assert [r.status_code for r in answers] == [201] * 5
        assert len({r.content for r in answers}) == 1
        assert len({r.headers["location"] for r in answers}) == 1
        replayed = [r.headers.get("idempotent-replayed") for r in answers]
        assert replayed.count("true") == 4 and replayed.count(None) == 1

        # a different principal's same key is its own
        other = h._headers(harness, "batch-2026-11-28", "bank-b")
        r = await client.post("/v1/payments", json=h.BODY, headers=other)
        assert r.status_code == 201 and "idempotent-replayed" not in r.headers
        assert await harness.payment_count() == 2


async def test_a_duplicate_that_waits_too_long_gets_409_with_retry_after(pg_url: str) -> None:
    harness = h.build(pg_url, wait=timedelta(milliseconds=200), retry_after_seconds=3)
    harness.hooks.hold = asyncio.Event()
    async with h.serving(harness) as client:
        headers = h._headers(harness, "slow-1")
        first = asyncio.create_task(client.post("/v1/payments", json=h.BODY, headers=headers))
        await harness.hooks.claimed.wait()

        duplicate = await client.post("/v1/payments", json=h.BODY, headers=headers)
        assert duplicate.status_code == 409
        assert duplicate.headers["retry-after"] == "3"
        assert duplicate.json()["rule"] == "IDEMPOTENCY-KEY-IN-PROGRESS"
        assert duplicate.json()["field"] == "Idempotency-Key"

        harness.hooks.hold.set()
        done = await first
        assert done.status_code == 201
        retry = await client.post("/v1/payments", json=h.BODY, headers=headers)
        assert retry.content == done.content and retry.headers["idempotent-replayed"] == "true"

        assert await harness.payment_count() == 1

        # the short lock_timeout covers the claim only; the work after it waits normally
        async with harness.runtime.uow() as uow:
            await uow.session.execute(text("SET LOCAL lock_timeout = '7s'"))
            assert await harness.keys.begin(uow, _request(b"{}"), "bank-c", "k-x") is None
            setting = await uow.session.execute(text("SELECT current_setting('lock_timeout')"))
            assert setting.scalar_one() == "7s"


def _request(body: bytes) -> Request:
    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": body, "more_body": False}

    scope = {"type": "http", "method": "POST", "path": "/v1/x", "query_string": b"", "headers": []}
    return Request(scope, receive)
