"""Several push targets (CASE-FEEDBACK): each bank may have more than one endpoint, each
with its own cursor, retries and backoff; a target can be disabled. The banks' endpoints
are an httpx.MockTransport; the backoff runs on the frozen clock."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from case_svc.entrypoints.feed_pusher import FeedPusher
from case_svc.main import create_app
from case_svc.service_layer.feed_push import backoff_seconds, claim
from case_svc.settings import Settings
from collect_common.clock import FrozenClock
from collect_common.security.webhooks import WebhookVerifier
from collect_common.settings import DEV_API_KEYS

pytestmark = pytest.mark.postgres

BANK = {"X-API-Key": DEV_API_KEYS["bank-core"][1]}
OPS = {"X-API-Key": DEV_API_KEYS["ops-dashboard"][1]}
AUDITOR = {"X-API-Key": DEV_API_KEYS["bank-auditor"][1]}
NOW = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)
SECRETS = {"core-a": "a" * 32 + "-secret", "core-b": "b" * 32 + "-secret"}


class Endpoints:
    """Each host answers from its own script (then 204) and checks its own signature."""

    def __init__(self, clock: FrozenClock, scripts: dict[str, list[int]]) -> None:
        self.clock = clock
        self.scripts = scripts
        self.received: dict[str, list[int]] = {}

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host
        verifier = WebhookVerifier({"case-feed": SECRETS[host].encode()}, self.clock)
        await verifier.verify(dict(request.headers), request.content)
        script = self.scripts.setdefault(host, [])
        if script:
            return httpx.Response(script.pop(0))
        body = json.loads(request.content)
        self.received.setdefault(host, []).extend(c["seq"] for c in body["changes"])
        return httpx.Response(204)


@pytest.fixture
async def env(pg_url: str) -> AsyncIterator[tuple[Any, httpx.AsyncClient, Settings]]:
    settings = Settings(
        database_url=pg_url,
        kafka_bootstrap_servers="127.0.0.1:1",
        relay_enabled=False,
        consumer_enabled=False,
        scheduler_enabled=False,
        log_json=False,
        feed_push_batch=100,
        feed_push_max_backoff_seconds=4.0,
    )
    app = create_app(settings, FrozenClock(NOW))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://case-svc", headers=OPS
        ) as api,
    ):
        yield app.state.runtime, api, settings


async def _register(api: httpx.AsyncClient, name: str, host: str, **over: Any) -> httpx.Response:
    body = {"bank_id": "bank-core", "url": f"https://{host}/feed", "secret": SECRETS[host]}
    body.update(over)
    return await api.put(f"/v1/feed-targets/{name}", json=body)


async def _seed(api: httpx.AsyncClient, n: int, start: int = 0) -> list[int]:
    rows = [
        {
            "contract_no": f"LN-T{i}",
            "name": "张三",
            "national_id": "11010519491231002X",
            "phones": ["13812345678"],
            "principal": "100.00",
            "overdue_since": "2026-10-10",
        }
        for i in range(start, start + n)
    ]
    r = await api.post("/v1/accounts/import", json={"accounts": rows}, headers=BANK)
    assert r.status_code == 200 and r.json()["created"] == n, r.text
    feed = (await api.get("/v1/changes", params={"limit": 100}, headers=BANK)).json()
    return [item["seq"] for item in feed["items"]]


async def _targets(api: httpx.AsyncClient) -> dict[str, dict[str, Any]]:
    r = await api.get("/v1/feed-targets", headers=AUDITOR)
    assert r.status_code == 200, r.text
    return {t["target"]: t for t in r.json()["items"]}


async def test_two_targets_of_one_bank_keep_their_own_cursor_and_backoff(env) -> None:
    runtime, api, settings = env
    assert (await _register(api, "core-primary", "core-a")).status_code == 200
    assert (await _register(api, "core-dr", "core-b")).status_code == 200
    seqs = await _seed(api, 2)
    endpoints = Endpoints(runtime.clock, {"core-b": [500, 503]})
    pusher = FeedPusher(runtime, settings, transport=httpx.MockTransport(endpoints))
    try:
        assert await pusher.push_once() == {"core-dr": "failed", "core-primary": "pushed"}
        listed = await _targets(api)
        assert (listed["core-primary"]["cursor"], listed["core-primary"]["failures"]) == (
            seqs[-1],
            0,
        )
        dr = listed["core-dr"]
        assert (dr["cursor"], dr["failures"], dr["last_error"]) == (0, 1, "HTTP 500")
        assert datetime.fromisoformat(dr["next_attempt_at"]) == NOW + timedelta(seconds=0.5)

        more = await _seed(api, 1, start=2)  # the healthy target goes on meanwhile
        assert await pusher.push_once() == {"core-dr": "waiting", "core-primary": "pushed"}
        runtime.clock.advance(timedelta(seconds=0.5))
        assert (await pusher.push_once())["core-dr"] == "failed"  # 503: now 1 s
        runtime.clock.advance(timedelta(seconds=1))
        assert (await pusher.push_once())["core-dr"] == "pushed"
    finally:
        await pusher.close()
    assert endpoints.received["core-a"] == more
    assert endpoints.received["core-b"] == more  # all of it, in order, once
    healed = (await _targets(api))["core-dr"]
    assert (healed["failures"], healed["next_attempt_at"], healed["last_error"]) == (0, None, None)


async def test_a_target_gets_only_its_banks_changes(env) -> None:
    runtime, api, settings = env
    await _register(api, "core-primary", "core-a")
    await _register(api, "other-bank", "core-b", bank_id="bank-other")
    seqs = await _seed(api, 2)
    endpoints = Endpoints(runtime.clock, {})
    pusher = FeedPusher(runtime, settings, transport=httpx.MockTransport(endpoints))
    try:
        # the other bank's target only moves its cursor past these changes
        assert await pusher.push_once() == {"core-primary": "pushed", "other-bank": "pushed"}
    finally:
        await pusher.close()
    assert endpoints.received == {"core-a": seqs}
    assert (await _targets(api))["other-bank"]["cursor"] == seqs[-1]  # passed, not sent


async def test_a_disabled_target_is_skipped_and_resumes_from_its_cursor(env) -> None:
    runtime, api, settings = env
    await _register(api, "core-primary", "core-a")
    first = await _seed(api, 1)
    endpoints = Endpoints(runtime.clock, {"core-a": [500]})
    pusher = FeedPusher(runtime, settings, transport=httpx.MockTransport(endpoints))
    try:
        assert await pusher.push_once() == {"core-primary": "failed"}
        off = await _register(api, "core-primary", "core-a", enabled=False, secret=None)
        assert off.status_code == 200 and off.json()["enabled"] is False
        assert await pusher.push_once() == {}  # not even looked at
        after = await _seed(api, 1, start=1)
        on = await _register(api, "core-primary", "core-a", secret=None)  # secret kept
        assert (on.json()["enabled"], on.json()["failures"]) == (True, 0)  # due at once
        assert await pusher.push_once() == {"core-primary": "pushed"}
    finally:
        await pusher.close()
    assert endpoints.received["core-a"] == after
    assert after[: len(first)] == first


async def test_targets_are_checked_and_their_secret_never_shown(env) -> None:
    _runtime, api, _settings = env
    no_secret = await _register(api, "core-new", "core-a", secret=None)
    assert no_secret.status_code == 422
    assert (no_secret.json()["rule"], no_secret.json()["field"]) == ("CASE-FEEDBACK", "secret")
    assert (await _register(api, "core-new", "core-a", secret="short")).status_code == 422
    assert (await _register(api, "core-new", "core-a", url="not a url")).status_code == 422
    r = await api.put(
        "/v1/feed-targets/core-new",
        json={"bank_id": "bank-core", "url": "https://core-a/feed", "secret": SECRETS["core-a"]},
        headers=BANK,
    )
    assert r.status_code == 403
    ok = await _register(api, "core-new", "core-a")
    assert ok.status_code == 200
    assert SECRETS["core-a"] not in ok.text
    assert SECRETS["core-a"] not in (await api.get("/v1/feed-targets")).text


async def test_one_pusher_at_a_time_delivers_to_a_target(env) -> None:
    runtime, api, settings = env
    await _register(api, "core-primary", "core-a")
    seqs = await _seed(api, 1)
    endpoints = Endpoints(runtime.clock, {})
    pusher = FeedPusher(runtime, settings, transport=httpx.MockTransport(endpoints))
    try:
        async with runtime.sessions() as s, s.begin():  # another replica is delivering
            assert await claim(s, "core-primary", runtime.clock.now(), pusher.lease)
        assert await pusher.push_once() == {"core-primary": "busy"}
        assert endpoints.received == {}
        runtime.clock.advance(timedelta(seconds=pusher.lease))  # that replica died
        assert await pusher.push_once() == {"core-primary": "pushed"}
        assert await pusher.push_once() == {"core-primary": "idle"}  # lease freed
    finally:
        await pusher.close()
    assert endpoints.received == {"core-a": seqs}


def test_the_backoff_doubles_up_to_its_cap() -> None:
    assert [backoff_seconds(n, 0.5, 4.0) for n in range(7)] == [0, 0.5, 1, 2, 4, 4, 4]
