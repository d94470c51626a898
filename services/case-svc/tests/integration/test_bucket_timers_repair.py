"""Repairing the daily bucket timers (CASE-BUCKET) over PostgreSQL: open cases that lost
their timer (or never had one) get one again, in one set-based statement."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from case_svc.entrypoints.scheduler import attach_bucket_repair
from case_svc.main import create_app
from case_svc.service_layer.schedule import REPAIR_KEY
from case_svc.settings import Settings
from collect_common import timers
from collect_common.clock import FrozenClock
from collect_common.settings import DEV_API_KEYS
from collect_common.testing.apps import offline_settings, service_client
from collect_common.timers import TimerState

pytestmark = pytest.mark.postgres

BANK = {"X-API-Key": DEV_API_KEYS["bank-core"][1]}
OPS = {"X-API-Key": DEV_API_KEYS["ops-dashboard"][1]}
NOW = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
SHANGHAI_MIDNIGHT = datetime(2026, 11, 28, 16, 0, tzinfo=UTC)


def account(contract: str) -> dict[str, object]:
    return {
        "contract_no": contract,
        "name": "张三",
        "national_id": "11010519491231002X",
        "phones": ["13812345678"],
        "principal": "3000.00",
        "overdue_since": "2026-10-29",  # day 30 in Shanghai today: M1; M2 tomorrow
        "history": "good",
    }


async def _import(api: httpx.AsyncClient, *contracts: str) -> list[str]:
    r = await api.post("/v1/accounts/import", json={"accounts": [account(c) for c in contracts]})
    assert r.status_code == 200, r.text
    return [str(row["case_id"]) for row in r.json()["rows"]]


def _runtime(api: httpx.AsyncClient) -> Any:
    return api.app.state.runtime  # type: ignore[attr-defined]


async def _timer(api: httpx.AsyncClient, key: str) -> timers.Timer | None:
    async with _runtime(api).sessions() as s:
        return await timers.get(s, key)


async def _lose_timers(api: httpx.AsyncClient, deleted: str, failed: str) -> None:
    """One case's timer row is gone (as before the timers existed), another's failed."""
    async with _runtime(api).sessions() as s, s.begin():
        await s.execute(text("DELETE FROM timers WHERE timer_key = :k"), {"k": f"bucket:{deleted}"})
        await s.execute(
            text("UPDATE timers SET state = 'failed' WHERE timer_key = :k"),
            {"k": f"bucket:{failed}"},
        )


async def test_repair_gives_every_open_case_a_timer_and_buckets_move_at_midnight(
    case_api: httpx.AsyncClient, clock: FrozenClock
) -> None:
    lost, failed, fine, recalled = await _import(case_api, "LN-R1", "LN-R2", "LN-R3", "LN-R4")
    r = await case_api.post(f"/v1/cases/{recalled}/recall", json={"reason": "bank-withdrawn"})
    assert r.status_code == 200, r.text
    await _lose_timers(case_api, lost, failed)
    untouched = await _timer(case_api, f"bucket:{fine}")

    r = await case_api.post("/v1/cases/bucket-timers/repair", headers=OPS)
    assert r.status_code == 200, r.text
    assert r.json()["repaired"] == 2
    for case_id in (lost, failed):
        timer = await _timer(case_api, f"bucket:{case_id}")
        assert timer is not None and timer.state == TimerState.SCHEDULED
        assert (timer.kind, timer.due_at, timer.payload) == (
            "case.bucket",
            NOW,
            {"case_id": case_id},
        )
    assert await _timer(case_api, f"bucket:{fine}") == untouched  # pending: left alone
    gone = await _timer(case_api, f"bucket:{recalled}")
    assert gone is not None and gone.state == TimerState.CANCELLED  # out of collection
    again = await case_api.post("/v1/cases/bucket-timers/repair", headers=OPS)
    assert again.json()["repaired"] == 0
    repair = await _timer(case_api, REPAIR_KEY)  # the daily pass is scheduled
    assert repair is not None and repair.due_at == datetime(2026, 11, 29, tzinfo=UTC)

    # due at once: recomputed now (still M1), then waiting for the debtor's midnight
    assert await _runtime(case_api).scheduler.fire_due() == 2
    for case_id in (lost, failed):
        timer = await _timer(case_api, f"bucket:{case_id}")
        assert timer is not None and timer.due_at == SHANGHAI_MIDNIGHT
        assert (await case_api.get(f"/v1/cases/{case_id}")).json()["bucket"] == "M1"

    clock.set(SHANGHAI_MIDNIGHT + timedelta(minutes=1))  # the 29th in Shanghai: day 31
    await _runtime(case_api).scheduler.fire_due()
    for case_id in (lost, failed, fine):
        assert (await case_api.get(f"/v1/cases/{case_id}")).json()["bucket"] == "M2"
    assert (await case_api.get(f"/v1/cases/{recalled}")).json()["bucket"] == "M1"

    # the daily pass (UTC midnight) repairs a timer lost since, and schedules the next pass
    await _lose_timers(case_api, fine, "none")
    clock.set(datetime(2026, 11, 29, 0, 0, 1, tzinfo=UTC))
    await _runtime(case_api).scheduler.fire_due()
    back = await _timer(case_api, f"bucket:{fine}")
    assert back is not None and back.state == TimerState.SCHEDULED
    nxt = await _timer(case_api, REPAIR_KEY)
    assert nxt is not None and nxt.due_at == datetime(2026, 11, 30, tzinfo=UTC)


async def test_the_repair_is_for_ops_only(case_api: httpx.AsyncClient) -> None:
    r = await case_api.post("/v1/cases/bucket-timers/repair")  # the bank's key
    assert r.status_code == 403


async def test_the_repair_runs_when_the_scheduler_starts(pg_url: str) -> None:
    clock = FrozenClock(NOW)
    quiet = offline_settings(Settings, pg_url)
    async with service_client(create_app, quiet, clock, headers=BANK) as api:
        (lost,) = await _import(api, "LN-R9")
        await _lose_timers(api, lost, "none")
        assert await _timer(api, f"bucket:{lost}") is None

    def with_repair(settings: Settings, clk: FrozenClock) -> Any:
        app = create_app(settings, clk)
        attach_bucket_repair(app, app.state.runtime)
        return app

    running = offline_settings(Settings, pg_url, scheduler_enabled=True)
    async with service_client(with_repair, running, clock, headers=BANK) as api:
        timer = await _timer(api, f"bucket:{lost}")
        assert timer is not None and timer.state == TimerState.SCHEDULED
        assert await _timer(api, REPAIR_KEY) is not None
