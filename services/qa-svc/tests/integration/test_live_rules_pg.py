"""The live rules through their handlers, on PostgreSQL; state survives a restart; the API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import httpx
import pytest
from qa_test_helpers import NOW, attempt, completed, deliver, settings_for
from sqlalchemy import func, select

from collect_common.clock import FrozenClock
from collect_common.security.auth import Role, TokenService
from collect_common.settings import DEV_API_KEYS, DEV_TOKEN_SECRET
from qa_svc.adapters.tables import alerts
from qa_svc.entrypoints.consumer import handlers
from qa_svc.main import create_app
from qa_svc.service_layer.live_rules import LiveRules

pytestmark = pytest.mark.postgres
H = timedelta(hours=1)
DAY_START = NOW - 4 * H  # 10:00 Shanghai


@asynccontextmanager
async def running(pg_url: str, clock: FrozenClock) -> AsyncIterator[tuple[Any, Any]]:
    app = create_app(settings_for(pg_url), clock)
    async with app.router.lifespan_context(app):
        runtime = app.state.runtime
        yield app, runtime


def _handlers(runtime: Any, clock: FrozenClock) -> dict[str, Any]:
    return handlers(lambda: runtime.context_of(LiveRules), clock)


async def _count(runtime: Any) -> int:
    async with runtime.sessions() as s:
        return int((await s.execute(select(func.count()).select_from(alerts))).scalar_one())


def _metric(runtime: Any, rule: str) -> float:
    value = runtime.registry.get_sample_value("alerts_raised_total", {"rule": rule})
    return float(value or 0)


async def test_over_the_limit_raises_one_alert_and_state_survives_a_restart(
    pg_url: str, clock: FrozenClock
) -> None:
    async with running(pg_url, clock) as (_, runtime):
        h = _handlers(runtime, clock)
        for i in range(3):
            await deliver(runtime, h, attempt("D1", DAY_START + i * H))
        assert await _count(runtime) == 0
    # a new app and runtime: the window lives in the database, nothing in memory
    async with running(pg_url, clock) as (_, runtime):
        h = _handlers(runtime, clock)
        ids = [await deliver(runtime, h, attempt("D1", DAY_START + (3 + i) * H)) for i in range(3)]
        assert await _count(runtime) == 1  # three events over the limit, one breach
        assert _metric(runtime, "QA-REALTIME") == 1
        async with runtime.sessions() as s:
            row = (await s.execute(select(alerts))).one()
            outbox = (
                await s.execute(select(runtime.outbox.c.event_type, runtime.outbox.c.key))
            ).all()
        assert row.rule_id == "QA-REALTIME" and row.kind == "call_frequency"
        assert set(ids) <= set(__import__("json").loads(row.evidence))
        assert [(o.event_type, o.key) for o in outbox] == [("qa.alert_raised.v1", "D1")]


async def test_a_late_event_raises_the_alert_late_and_only_once(
    pg_url: str, clock: FrozenClock
) -> None:
    async with running(pg_url, clock) as (_, runtime):
        h = _handlers(runtime, clock)
        for hours in (0, 2, 3):
            await deliver(runtime, h, attempt("D2", DAY_START + hours * H))
        await deliver(runtime, h, attempt("D2", DAY_START + 30 * H))  # another day
        assert await _count(runtime) == 0
        await deliver(runtime, h, attempt("D2", DAY_START + 1 * H))  # late
        assert await _count(runtime) == 1
        await deliver(runtime, h, attempt("D2", DAY_START - 1 * H))  # later still, same breach
        assert await _count(runtime) == 1
        await deliver(runtime, h, attempt("D3", DAY_START))  # another debtor: own window
        assert await _count(runtime) == 1


async def test_quiet_hours_and_duration_raise_their_alerts(pg_url: str, clock: FrozenClock) -> None:
    async with running(pg_url, clock) as (_, runtime):
        h = _handlers(runtime, clock)
        at_2200 = NOW + 8 * H  # 22:00 Shanghai
        await deliver(runtime, h, attempt("D4", at_2200 - timedelta(minutes=1)))
        assert await _count(runtime) == 0
        await deliver(runtime, h, attempt("D4", at_2200, channel="sms"))
        await deliver(runtime, h, attempt("D5", at_2200, channel="letter"))  # not timed
        await deliver(runtime, h, completed("D4", NOW, 5))
        await deliver(runtime, h, completed("D4", NOW + H, 60))
        async with runtime.sessions() as s:
            kinds = sorted((await s.execute(select(alerts.c.rule_id, alerts.c.kind))).all())
        assert kinds == [("QA-QUIET", "quiet_hours"), ("QA-REALTIME", "call_duration")]
        assert _metric(runtime, "QA-QUIET") == 1


async def test_qa_works_the_alert_list(pg_url: str, clock: FrozenClock) -> None:
    async with running(pg_url, clock) as (app, runtime):
        h = _handlers(runtime, clock)
        await deliver(runtime, h, attempt("D6", NOW + 8 * H))  # quiet hours
        await deliver(runtime, h, completed("D6", NOW, 3600))  # too long
        await deliver(runtime, h, completed("D7", NOW, 1))  # too short
        token = TokenService(DEV_TOKEN_SECRET, "collect-platform", clock).issue("qa-1", [Role.QA])
        qa = {"Authorization": f"Bearer {token}"}
        ops = {"X-API-Key": DEV_API_KEYS["ops-dashboard"][1]}
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://qa-svc"
        ) as api:
            r = await api.get("/v1/alerts", params={"limit": 2}, headers=ops)
            assert r.status_code == 200, r.text
            first = r.json()
            assert len(first["items"]) == 2 and first["next_cursor"]
            r = await api.get("/v1/alerts", params={"cursor": first["next_cursor"]}, headers=ops)
            assert len(r.json()["items"]) == 1 and r.json()["next_cursor"] is None
            r = await api.get("/v1/alerts", params={"rule": "QA-QUIET"}, headers=qa)
            (quiet,) = r.json()["items"]
            assert quiet["check"] == "quiet_hours" and quiet["status"] == "open"
            alert_id = quiet["alert_id"]

            r = await api.post(f"/v1/alerts/{alert_id}/acknowledge", headers=ops)
            assert r.status_code == 403  # ops reads, QA acts
            r = await api.post(f"/v1/alerts/{alert_id}/acknowledge", headers=qa)
            assert r.status_code == 200 and r.json()["status"] == "acknowledged"
            r = await api.post(f"/v1/alerts/{alert_id}/acknowledge", headers=qa)
            assert r.status_code == 409 and "acknowledged" in r.json()["detail"]
            assert r.json()["current_status"] == "acknowledged"
            r = await api.post(f"/v1/alerts/{alert_id}/dismiss", json={}, headers=qa)
            assert r.status_code == 422  # the reason is required
            r = await api.post(
                f"/v1/alerts/{alert_id}/dismiss", json={"reason": "debtor's request"}, headers=qa
            )
            assert r.status_code == 200 and r.json()["status_reason"] == "debtor's request"
            r = await api.post(f"/v1/alerts/{alert_id}/escalate", headers=qa)
            assert r.status_code == 409 and r.json()["current_status"] == "dismissed"
            r = await api.post("/v1/alerts/nope/escalate", headers=qa)
            assert r.status_code == 404

            r = await api.get("/v1/alerts", params={"status": "open"}, headers=ops)
            other = r.json()["items"][0]["alert_id"]
            r = await api.post(f"/v1/alerts/{other}/escalate", headers=qa)
            assert r.status_code == 200 and r.json()["status"] == "escalated"
            r = await api.get("/v1/alerts", params={"status": "open"}, headers=ops)
            assert len(r.json()["items"]) == 1
