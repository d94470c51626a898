"""Pushing the change feed to the bank (CASE-FEEDBACK), the bank being an httpx.MockTransport."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import text

from case_svc.adapters.tables import case_changes
from case_svc.entrypoints.feed_pusher import FeedPusher, attach_feed_pusher
from case_svc.main import create_app
from case_svc.service_layer.feed_push import GapWatch, load_cursor, next_batch
from case_svc.settings import Settings
from collect_common.clock import FrozenClock
from collect_common.security.webhooks import WebhookVerifier
from collect_common.settings import DEV_API_KEYS

pytestmark = pytest.mark.postgres

BANK = {"X-API-Key": DEV_API_KEYS["bank-core"][1]}
NOW = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)

SECRET = "feed-push-test-secret-0123456789abcdef"
URL = "https://bank.example/collections/feed"
POLL = 5.0  # distinct from every backoff below (0.5, 1, 2, 4)


def settings_for(pg_url: str, **over: object) -> Settings:
    values: dict[str, object] = {
        "database_url": pg_url,
        "kafka_bootstrap_servers": "127.0.0.1:1",
        "relay_enabled": False,
        "consumer_enabled": False,
        "log_json": False,
        "feed_push_url": URL,
        "feed_push_secret": SECRET,
        "feed_push_batch": 2,
        "feed_push_poll_seconds": POLL,
        "feed_push_max_backoff_seconds": 4.0,
    }
    values.update(over)
    return Settings(**values)  # type: ignore[arg-type]


def account(contract: str) -> dict[str, object]:
    return {
        "contract_no": contract,
        "name": "张三",
        "national_id": "11010519491231002X",
        "phones": ["13812345678"],
        "principal": "12000.00",
        "interest": "350.25",
        "fees": "50.00",
        "overdue_since": "2026-10-10",
        "history": "good",
    }


@pytest.fixture
async def app_and_api(pg_url: str) -> AsyncIterator[tuple[object, httpx.AsyncClient, Settings]]:
    """The app without a pusher of its own; the tests build theirs from ``settings``."""
    settings = settings_for(pg_url)
    quiet = settings_for(pg_url, feed_push_url=None, scheduler_enabled=False)
    app = create_app(quiet, FrozenClock(NOW))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://case-svc", headers=BANK
        ) as client,
    ):
        yield app, client, settings


async def _seed(api: httpx.AsyncClient, n: int) -> list[int]:
    r = await api.post(
        "/v1/accounts/import", json={"accounts": [account(f"LN-{i}") for i in range(n)]}
    )
    assert r.status_code == 200 and r.json()["created"] == n
    feed = (await api.get("/v1/changes", params={"limit": 100})).json()
    return [item["seq"] for item in feed["items"]]


class Bank:
    """The bank's endpoint: answers from a script, then 200; verifies every signature."""

    def __init__(self, clock: FrozenClock, script: list[object]) -> None:
        self.script = list(script)
        self.received: list[int] = []  # seqs acknowledged with 2xx
        self.attempts = 0
        self.clock = clock

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.attempts += 1
        body = request.content
        verifier = WebhookVerifier({"case-feed": SECRET.encode()}, self.clock, timedelta(minutes=5))
        await verifier.verify(dict(request.headers), body)  # raises unless authentic
        if self.script:
            step = self.script.pop(0)
            if isinstance(step, Exception):
                raise step
            assert isinstance(step, int)
            return httpx.Response(step)
        payload = json.loads(body)
        self.received.extend(c["seq"] for c in payload["changes"])
        assert payload["cursor"] >= payload["changes"][-1]["seq"]
        return httpx.Response(204)


async def test_failures_then_success_deliver_every_change_once_in_order(app_and_api) -> None:
    app, api, settings = app_and_api
    runtime = app.state.runtime  # type: ignore[attr-defined]
    seqs = await _seed(api, 3)  # 3 cases -> at least 3 changes
    assert seqs == sorted(seqs) and len(seqs) >= 3
    bank = Bank(runtime.clock, [500, httpx.ConnectError("refused"), 503])
    waits: list[float] = []

    async def wait(seconds: float) -> None:
        waits.append(seconds)
        runtime.clock.advance(timedelta(seconds=seconds))  # the backoff is on the clock
        if seconds == POLL:
            pusher.request_stop()

    pusher = FeedPusher(runtime, settings, transport=httpx.MockTransport(bank), wait=wait)
    try:
        await asyncio.wait_for(pusher.run(), timeout=30)
    finally:
        await pusher.close()
    assert bank.received == seqs  # every change once, in order
    assert waits == [0.5, 1.0, 2.0, POLL]  # exponential backoff, then idle
    assert pusher.failures == 3 and pusher.delivered == len(seqs)
    async with runtime.sessions() as s:
        assert await load_cursor(s, "bank") == seqs[-1]


async def test_a_refusal_leaves_the_cursor_and_the_batch_is_sent_again(app_and_api) -> None:
    app, api, settings = app_and_api
    runtime = app.state.runtime  # type: ignore[attr-defined]
    seqs = await _seed(api, 1)
    bank = Bank(runtime.clock, [500, 500])
    pusher = FeedPusher(runtime, settings, transport=httpx.MockTransport(bank))
    try:
        assert await pusher.push_once() == {"bank": "failed"}
        async with runtime.sessions() as s:
            assert await load_cursor(s, "bank") == 0
        assert await pusher.push_once() == {"bank": "waiting"}  # in backoff: not tried
        runtime.clock.advance(timedelta(seconds=0.5))
        assert await pusher.push_once() == {"bank": "failed"}
        runtime.clock.advance(timedelta(seconds=0.9))
        assert await pusher.push_once() == {"bank": "waiting"}  # the second wait is 1 s
        runtime.clock.advance(timedelta(seconds=0.1))
        assert await pusher.push_once() == {"bank": "pushed"}
        assert await pusher.push_once() == {"bank": "idle"}
    finally:
        await pusher.close()
    assert bank.received == seqs and bank.attempts == 3
    async with runtime.sessions() as s:
        assert await load_cursor(s, "bank") == seqs[-1]


async def test_signatures_verify_and_a_wrong_secret_does_not(app_and_api) -> None:
    app, api, settings = app_and_api
    runtime = app.state.runtime  # type: ignore[attr-defined]
    await _seed(api, 1)
    seen: list[httpx.Request] = []

    def bank(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200)

    pusher = FeedPusher(runtime, settings, transport=httpx.MockTransport(bank))
    try:
        assert await pusher.push_once() == {"bank": "pushed"}
    finally:
        await pusher.close()
    request = seen[0]
    assert request.headers["x-webhook-key-id"] == "case-feed"
    good = WebhookVerifier({"case-feed": SECRET.encode()}, runtime.clock)
    delivery = await good.verify(dict(request.headers), request.content)
    assert delivery.delivery_id == request.headers["x-webhook-delivery-id"]
    wrong = WebhookVerifier({"case-feed": b"w" * 32}, runtime.clock)
    with pytest.raises(Exception, match="signature"):
        await wrong.verify(dict(request.headers), request.content)
    tampered = request.content.replace(b'"seq":', b'"seq": ')
    with pytest.raises(Exception, match="signature"):
        await good.verify(dict(request.headers), tampered)


async def test_a_hole_that_may_still_fill_stops_the_batch_until_it_is_settled(
    app_and_api,
) -> None:
    app, _api, _settings = app_and_api
    runtime = app.state.runtime  # type: ignore[attr-defined]

    def change(seq: int) -> dict[str, object]:
        return {
            "seq": seq,
            "bank_id": "bank-core",
            "case_id": f"c{seq}",
            "contract_no": f"LN-{seq}",
            "change": "case.updated.v1",
            "data": "{}",
            "at": NOW,
        }

    async with runtime.sessions() as s, s.begin():
        await s.execute(case_changes.insert(), [change(1), change(2), change(4)])
    clock = [0.0]
    gaps = GapWatch(grace=30.0, now=lambda: clock[0])
    writer = runtime.sessions()
    try:
        await writer.begin()
        await writer.execute(case_changes.insert(), [change(3)])  # not committed yet
        async with runtime.sessions() as s:
            batch = await next_batch(s, 0, 10, gaps)
        assert batch is not None and [c.seq for c in batch.changes] == [1, 2]
        await writer.commit()
    finally:
        await writer.close()
    async with runtime.sessions() as s:
        batch = await next_batch(s, 2, 10, gaps)
    assert batch is not None and [c.seq for c in batch.changes] == [3, 4]

    # a hole left by a rollback, with no writer about, is passed at once
    async with runtime.sessions() as s, s.begin():
        await s.execute(case_changes.insert(), [change(6)])
    async with runtime.sessions() as s:
        batch = await next_batch(s, 4, 10, gaps)
    assert batch is not None and [c.seq for c in batch.changes] == [6]

    # while some writer is busy, a hole is passed only after the grace period
    async with runtime.sessions() as s, s.begin():
        await s.execute(case_changes.insert(), [change(8)])
    busy = runtime.sessions()
    try:
        await busy.begin()
        await busy.execute(text("DELETE FROM case_changes WHERE seq = -1"))  # takes the lock
        async with runtime.sessions() as s:
            assert await next_batch(s, 6, 10, gaps) is None
            clock[0] = 31.0
            batch = await next_batch(s, 6, 10, gaps)
        assert batch is not None and [c.seq for c in batch.changes] == [8]
    finally:
        await busy.rollback()
        await busy.close()


async def test_attached_to_the_app_it_pushes_in_the_background(pg_url: str) -> None:
    settings = settings_for(pg_url, feed_push_batch=100)
    clock = FrozenClock(NOW)
    app = create_app(settings_for(pg_url, feed_push_url=None, scheduler_enabled=False), clock)
    bank = Bank(clock, [])

    async def wait(_seconds: float) -> None:
        await asyncio.sleep(0.01)

    pusher = attach_feed_pusher(
        app, app.state.runtime, settings, transport=httpx.MockTransport(bank), wait=wait
    )
    assert pusher is not None and app.state.feed_pusher is pusher
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://case-svc", headers=BANK
        ) as api,
    ):
        seqs = await _seed(api, 2)
        for _ in range(500):
            if bank.received == seqs:
                break
            await asyncio.sleep(0.01)
        assert bank.received == seqs


def test_off_without_a_url_nor_a_scheduler_and_a_url_needs_a_strong_secret(
    pg_url: str,
) -> None:
    settings = settings_for(pg_url, feed_push_url=None, scheduler_enabled=False)
    app = create_app(settings, FrozenClock(NOW))
    assert attach_feed_pusher(app, app.state.runtime, settings) is None
    # where the scheduler runs, the registered targets are pushed even without a URL
    workers = settings_for(pg_url, feed_push_url=None)
    app = create_app(workers, FrozenClock(NOW))
    pusher = app.state.feed_pusher
    assert pusher is not None and pusher.own is None
    with pytest.raises(ValueError, match="feed_push_secret"):
        settings_for(pg_url, feed_push_secret="short")
