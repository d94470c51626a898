"""Repayment plans broken by their installment timers over PostgreSQL (CASE-HARDSHIP).

Default policy: two installments missed and not made good, or one still unpaid 30 days
after its day, break the plan. The clock is moved and the scheduler fired by hand."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from collect_common import timers
from collect_common.clock import FrozenClock
from collect_common.settings import DEV_API_KEYS
from collect_common.timers import TimerState

pytestmark = pytest.mark.postgres

OPS = {"X-API-Key": DEV_API_KEYS["ops-dashboard"][1]}


def _end_of(day: str) -> datetime:
    """Just after the Shanghai day ``day`` (YYYY-MM-DD) ended: 16:00:01 UTC that day."""
    y, m, d = (int(p) for p in day.split("-"))
    return datetime(y, m, d, 16, 0, 1, tzinfo=UTC)


async def _open(api: httpx.AsyncClient, contract: str) -> str:
    row = {
        "contract_no": contract,
        "name": "张三",
        "national_id": "11010519491231002X",
        "phones": ["13812345678"],
        "principal": "3000.00",
        "overdue_since": "2026-10-29",
        "history": "good",
    }
    r = await api.post("/v1/accounts/import", json={"accounts": [row]})
    assert r.status_code == 200 and r.json()["rows"][0]["outcome"] == "created", r.text
    return str(r.json()["rows"][0]["case_id"])


async def _plan(api: httpx.AsyncClient, case_id: str, *due: str) -> dict[str, Any]:
    body = {
        "agreement_ref": "AGR-7",
        "installments": [{"due_date": d, "amount": "1000.00"} for d in due],
    }
    r = await api.post(f"/v1/cases/{case_id}/plans", json=body, headers=OPS)
    assert r.status_code == 201, r.text
    return dict(r.json())


def _runtime(api: httpx.AsyncClient) -> Any:
    return api.app.state.runtime  # type: ignore[attr-defined]


async def _fire(api: httpx.AsyncClient) -> int:
    return int(await _runtime(api).scheduler.fire_due())


async def _timer(api: httpx.AsyncClient, key: str) -> timers.Timer:
    async with _runtime(api).sessions() as s:
        timer = await timers.get(s, key)
    assert timer is not None, key
    return timer


async def _feed(api: httpx.AsyncClient, case_id: str) -> list[tuple[str, dict[str, Any]]]:
    async with _runtime(api).sessions() as s:
        rows = (
            await s.execute(
                text("SELECT change, data FROM case_changes WHERE case_id = :id ORDER BY seq"),
                {"id": case_id},
            )
        ).all()
    return [(r.change, json.loads(r.data)) for r in rows]


async def _plan_now(api: httpx.AsyncClient, case_id: str) -> dict[str, Any]:
    plans = (await api.get(f"/v1/cases/{case_id}/plans", headers=OPS)).json()
    return dict(plans[-1])


async def test_the_second_missed_installment_breaks_the_plan(
    case_api: httpx.AsyncClient, clock: FrozenClock
) -> None:
    case_id = await _open(case_api, "LN-PB1")
    plan = await _plan(case_api, case_id, "2026-11-30", "2026-12-10", "2026-12-20")
    pid = plan["id"]

    clock.set(_end_of("2026-11-30"))
    assert await _fire(case_api) == 2  # the installment's, and the bucket's midnight
    first = await _timer(case_api, f"installment:{pid}:1")  # moved to the late check
    assert first.state == TimerState.SCHEDULED
    assert first.payload["stage"] == "late"
    assert first.due_at == _end_of("2026-12-30").replace(second=0)  # 30 days later
    assert (await _plan_now(case_api, case_id))["status"] == "active"

    clock.set(_end_of("2026-12-10"))
    await _fire(case_api)

    now_plan = await _plan_now(case_api, case_id)
    assert now_plan["status"] == "broken"
    assert [i["status"] for i in now_plan["installments"]] == ["missed", "missed", "due"]
    case = (await case_api.get(f"/v1/cases/{case_id}")).json()
    assert case["status"] == "active"
    assert case["strategy"]["track"] == "standard"  # willingness low after a broken plan
    feed = await _feed(case_api, case_id)
    broken = [d for c, d in feed if c == "case.plan_broken.v1"]
    assert len(broken) == 1
    assert (broken[0]["plan_id"], broken[0]["reason"]) == (pid, "missed_installments")
    assert (broken[0]["missed_installments"], broken[0]["amount_overdue"]) == (2, "2000.00")
    moves = [(d["previous_status"], d["status"]) for c, d in feed if c == "case.status_changed.v1"]
    assert moves == [("active", "plan"), ("plan", "active")]
    # nothing more is due on the broken plan
    assert (await _timer(case_api, f"installment:{pid}:1")).state == TimerState.CANCELLED
    assert (await _timer(case_api, f"installment:{pid}:3")).state == TimerState.CANCELLED
    clock.set(_end_of("2027-01-30"))
    await _fire(case_api)
    assert [c for c, _ in await _feed(case_api, case_id)].count("case.plan_broken.v1") == 1


async def test_one_installment_unpaid_thirty_days_late_breaks_the_plan(
    case_api: httpx.AsyncClient, clock: FrozenClock
) -> None:
    case_id = await _open(case_api, "LN-PB2")
    pid = (await _plan(case_api, case_id, "2026-11-30", "2027-02-28"))["id"]
    clock.set(_end_of("2026-11-30"))
    await _fire(case_api)
    clock.set(_end_of("2026-12-29"))  # 29 days late: not yet
    await _fire(case_api)
    assert (await _plan_now(case_api, case_id))["status"] == "active"

    clock.set(_end_of("2026-12-30"))
    assert await _fire(case_api) >= 1

    assert (await _plan_now(case_api, case_id))["status"] == "broken"
    broken = [d for c, d in await _feed(case_api, case_id) if c == "case.plan_broken.v1"]
    assert [(d["reason"], d["missed_installments"]) for d in broken] == [("installment_late", 1)]
    assert (await _timer(case_api, f"installment:{pid}:2")).state == TimerState.CANCELLED


async def test_paying_a_missed_installment_cancels_its_late_check(
    case_api: httpx.AsyncClient, clock: FrozenClock
) -> None:
    case_id = await _open(case_api, "LN-PB3")
    pid = (await _plan(case_api, case_id, "2026-11-30", "2027-02-28"))["id"]
    clock.set(_end_of("2026-11-30"))
    await _fire(case_api)
    r = await case_api.post(
        f"/v1/cases/{case_id}/payments",
        json={"payment_id": "P-LATE", "amount": "1000.00", "paid_at": clock.now().isoformat()},
    )
    assert r.status_code == 201, r.text
    assert (await _timer(case_api, f"installment:{pid}:1")).state == TimerState.CANCELLED

    clock.set(_end_of("2027-01-15"))
    await _fire(case_api)
    plan = await _plan_now(case_api, case_id)
    assert plan["status"] == "active"
    assert [i["status"] for i in plan["installments"]] == ["paid", "due"]
    assert (await case_api.get(f"/v1/cases/{case_id}")).json()["status"] == "plan"


async def test_a_second_plan_while_one_runs_is_409_naming_the_state(
    case_api: httpx.AsyncClient,
) -> None:
    case_id = await _open(case_api, "LN-PB4")
    await _plan(case_api, case_id, "2026-11-30")
    r = await case_api.post(
        f"/v1/cases/{case_id}/plans",
        json={
            "agreement_ref": "AGR-8",
            "installments": [{"due_date": "2026-12-30", "amount": "5"}],
        },
        headers=OPS,
    )
    assert r.status_code == 409
    problem = r.json()
    assert (problem["current_state"], problem["rule"]) == ("plan", "CASE-HARDSHIP")
    assert "case is plan" in problem["detail"]
