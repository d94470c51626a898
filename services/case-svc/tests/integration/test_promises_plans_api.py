"""Timers of case-svc over real PostgreSQL: the daily bucket (CASE-BUCKET), promises to pay
(CASE-PROMISE) and repayment plans (CASE-HARDSHIP). Time is moved with the frozen clock and
the runtime's scheduler is fired by hand (``runtime.scheduler.fire_due()``); nothing sleeps."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
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
# The fixtures' clock: 2026-11-28 02:00 UTC, 10:00 in Shanghai. Shanghai's next midnight:
SHANGHAI_MIDNIGHT = datetime(2026, 11, 28, 16, 0, tzinfo=UTC)


def account(contract: str, **over: object) -> dict[str, object]:
    row: dict[str, object] = {
        "contract_no": contract,
        "name": "张三",
        "national_id": "11010519491231002X",
        "phones": ["13812345678"],
        "principal": "3000.00",
        "interest": "0.00",
        "fees": "0.00",
        "overdue_since": "2026-10-29",  # day 30 on 2026-11-28 in Shanghai: M1
        "history": "good",
    }
    row.update(over)
    return row


async def _open(api: httpx.AsyncClient, contract: str, **over: object) -> str:
    r = await api.post("/v1/accounts/import", json={"accounts": [account(contract, **over)]})
    assert r.status_code == 200, r.text
    row = r.json()["rows"][0]
    assert row["outcome"] == "created", row
    return str(row["case_id"])


def _runtime(api: httpx.AsyncClient) -> Any:
    return api.app.state.runtime  # type: ignore[attr-defined]


async def _fire(api: httpx.AsyncClient) -> int:
    scheduler = _runtime(api).scheduler
    assert scheduler is not None
    return int(await scheduler.fire_due())


async def _feed(api: httpx.AsyncClient, case_id: str) -> list[tuple[str, dict[str, Any]]]:
    async with _runtime(api).sessions() as s:
        rows = (
            await s.execute(
                text("SELECT change, data FROM case_changes WHERE case_id = :id ORDER BY seq"),
                {"id": case_id},
            )
        ).all()
    return [(r.change, json.loads(r.data)) for r in rows]


async def _timer(api: httpx.AsyncClient, key: str) -> timers.Timer:
    async with _runtime(api).sessions() as s:
        timer = await timers.get(s, key)
    assert timer is not None, key
    return timer


async def _pay(api: httpx.AsyncClient, case_id: str, pid: str, amount: str, at: datetime) -> None:
    r = await api.post(
        f"/v1/cases/{case_id}/payments",
        json={"payment_id": pid, "amount": amount, "paid_at": at.isoformat()},
    )
    assert r.status_code == 201, r.text


# -- CASE-BUCKET ------------------------------------------------------------------------


async def test_bucket_moves_to_m2_when_the_debtors_day_turns(
    case_api: httpx.AsyncClient, clock: FrozenClock
) -> None:
    """rule: CASE-BUCKET. Day 30 is M1; after the debtor's midnight, day 31 is M2."""
    case_id = await _open(case_api, "LN-B1")
    assert (await case_api.get(f"/v1/cases/{case_id}")).json()["bucket"] == "M1"
    timer = await _timer(case_api, f"bucket:{case_id}")
    assert (timer.kind, timer.due_at) == ("case.bucket", SHANGHAI_MIDNIGHT)

    clock.set(SHANGHAI_MIDNIGHT - timedelta(seconds=1))
    assert await _fire(case_api) == 0  # still the 28th in Shanghai
    clock.set(SHANGHAI_MIDNIGHT + timedelta(minutes=1))
    assert await _fire(case_api) == 1

    assert (await case_api.get(f"/v1/cases/{case_id}")).json()["bucket"] == "M2"
    changes = [(c, d) for c, d in await _feed(case_api, case_id) if c == "case.bucket_changed.v1"]
    assert len(changes) == 1
    data = changes[0][1]
    assert (data["previous"], data["bucket"], data["days_past_due"]) == ("M1", "M2", 31)
    assert data["as_of"] == "2026-11-29"
    again = await _timer(case_api, f"bucket:{case_id}")  # the next midnight, still scheduled
    assert again.state == TimerState.SCHEDULED
    assert again.due_at == SHANGHAI_MIDNIGHT + timedelta(days=1)


async def test_bucket_follows_the_debtors_own_time_zone(
    case_api: httpx.AsyncClient, clock: FrozenClock
) -> None:
    """rule: CASE-BUCKET. A debtor in London turns the day at London's midnight."""
    case_id = await _open(
        case_api, "LN-B2", debtor_timezone="Europe/London", overdue_since="2026-10-28"
    )
    timer = await _timer(case_api, f"bucket:{case_id}")
    assert timer.due_at == datetime(2026, 11, 29, 0, 0, tzinfo=UTC)
    clock.set(SHANGHAI_MIDNIGHT + timedelta(hours=1))  # Shanghai's day turned, London's not
    assert await _fire(case_api) == 0
    clock.set(datetime(2026, 11, 29, 0, 1, tzinfo=UTC))
    assert await _fire(case_api) == 1
    assert (await case_api.get(f"/v1/cases/{case_id}")).json()["bucket"] == "M2"


async def test_a_settled_case_stops_its_daily_bucket_timer(
    case_api: httpx.AsyncClient, clock: FrozenClock
) -> None:
    case_id = await _open(case_api, "LN-B3")
    await _pay(case_api, case_id, "P-ALL", "3000.00", clock.now())
    assert (await _timer(case_api, f"bucket:{case_id}")).state == TimerState.CANCELLED
    clock.set(SHANGHAI_MIDNIGHT + timedelta(days=2))
    assert await _fire(case_api) == 0


# -- CASE-PROMISE -----------------------------------------------------------------------


async def _promise(api: httpx.AsyncClient, case_id: str, amount: str, due: str) -> dict[str, Any]:
    r = await api.post(
        f"/v1/cases/{case_id}/promises", json={"amount": amount, "due_date": due}, headers=OPS
    )
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


async def test_promise_kept_by_payments_before_its_day_ends(
    case_api: httpx.AsyncClient, clock: FrozenClock
) -> None:
    """rule: CASE-PROMISE. Payments recorded by the deadline that cover it keep the promise."""
    case_id = await _open(case_api, "LN-P1")
    promise = await _promise(case_api, case_id, "500.00", "2026-11-30")
    assert promise["status"] == "pending"
    assert promise["due_at"].startswith("2026-11-30T16:00:00")  # end of the 30th in Shanghai
    clock.advance(timedelta(days=1))
    await _pay(case_api, case_id, "P-1", "300.00", clock.now())
    await _pay(case_api, case_id, "P-2", "200.00", clock.now())

    listed = (await case_api.get(f"/v1/cases/{case_id}/promises", headers=OPS)).json()
    assert [(p["id"], p["status"], p["paid"]) for p in listed] == [
        (promise["id"], "kept", "500.00")
    ]
    assert (await _timer(case_api, f"promise:{promise['id']}")).state == TimerState.CANCELLED
    clock.set(datetime(2026, 12, 1, tzinfo=UTC))
    await _fire(case_api)
    kinds = [c for c, _ in await _feed(case_api, case_id)]
    assert "case.promise_made.v1" in kinds and kinds.count("case.promise_kept.v1") == 1
    assert "case.promise_broken.v1" not in kinds


async def test_promise_broken_when_its_timer_fires_first(
    case_api: httpx.AsyncClient, clock: FrozenClock
) -> None:
    """rule: CASE-PROMISE. The deadline passes with 400 of 500 unpaid: PromiseBroken."""
    case_id = await _open(case_api, "LN-P2")
    promise = await _promise(case_api, case_id, "500.00", "2026-11-29")
    await _pay(case_api, case_id, "P-1", "100.00", clock.now())
    clock.set(datetime(2026, 11, 29, 15, 59, tzinfo=UTC))  # 23:59 on the 29th in Shanghai
    await _fire(case_api)  # the bucket timer only
    listed = (await case_api.get(f"/v1/cases/{case_id}/promises")).json()  # the bank reads too
    assert listed[0]["status"] == "pending"
    clock.set(datetime(2026, 11, 29, 16, 0, 1, tzinfo=UTC))
    assert await _fire(case_api) >= 1

    listed = (await case_api.get(f"/v1/cases/{case_id}/promises", headers=OPS)).json()
    assert listed[0]["status"] == "broken"
    broken = [d for c, d in await _feed(case_api, case_id) if c == "case.promise_broken.v1"]
    assert len(broken) == 1
    assert broken[0]["promise_id"] == promise["id"]
    assert (broken[0]["amount_due"], broken[0]["due_date"]) == ("400.00", "2026-11-29")
    assert (await _timer(case_api, f"promise:{promise['id']}")).state == TimerState.FIRED


async def test_promises_only_on_open_cases_and_only_for_agency_roles(
    case_api: httpx.AsyncClient,
) -> None:
    case_id = await _open(case_api, "LN-P3")
    bank = await case_api.post(
        f"/v1/cases/{case_id}/promises", json={"amount": "1.00", "due_date": "2026-11-29"}
    )
    assert bank.status_code == 403
    past = await case_api.post(
        f"/v1/cases/{case_id}/promises",
        json={"amount": "1.00", "due_date": "2026-11-27"},
        headers=OPS,
    )
    assert past.status_code == 422
    assert (past.json()["field"], past.json()["rule"]) == ("due_date", "CASE-PROMISE")
    assert (await case_api.post(f"/v1/cases/{case_id}/recall", json={})).status_code == 200
    r = await case_api.post(
        f"/v1/cases/{case_id}/promises",
        json={"amount": "1.00", "due_date": "2026-11-29"},
        headers=OPS,
    )
    assert r.status_code == 409 and r.json()["current_state"] == "recalled"
    missing = await case_api.get("/v1/cases/nope/promises", headers=OPS)
    assert missing.status_code == 404


# -- CASE-HARDSHIP ----------------------------------------------------------------------


async def _plan(api: httpx.AsyncClient, case_id: str, body: dict[str, Any]) -> httpx.Response:
    return await api.post(f"/v1/cases/{case_id}/plans", json=body, headers=OPS)


async def test_plan_installment_missed_when_its_timer_fires(
    case_api: httpx.AsyncClient, clock: FrozenClock
) -> None:
    """rule: CASE-HARDSHIP. Payments go to installments in order; #1 is short at its end."""
    case_id = await _open(case_api, "LN-H1")
    r = await _plan(
        case_api,
        case_id,
        {
            "agreement_ref": "AGR-1",
            "installments": [
                {"due_date": "2026-11-30", "amount": "1000.00"},
                {"due_date": "2026-12-30", "amount": "1000.00"},
            ],
        },
    )
    assert r.status_code == 201, r.text
    plan = r.json()
    assert (plan["status"], plan["total"]) == ("active", "2000.00")
    assert (await case_api.get(f"/v1/cases/{case_id}")).json()["status"] == "plan"
    await _pay(case_api, case_id, "P-1", "600.00", clock.now())

    clock.set(datetime(2026, 11, 30, 16, 0, 1, tzinfo=UTC))  # the 30th ended in Shanghai
    await _fire(case_api)
    plans = (await case_api.get(f"/v1/cases/{case_id}/plans", headers=OPS)).json()
    first, second = plans[0]["installments"]
    assert (first["status"], first["paid"]) == ("missed", "600.00")
    assert (second["status"], second["paid"]) == ("due", "0.00")
    feed = await _feed(case_api, case_id)
    missed = [d for c, d in feed if c == "case.installment_missed.v1"]
    assert len(missed) == 1
    assert (missed[0]["installment_no"], missed[0]["amount"]) == (1, "400.00")
    assert missed[0]["due_date"] == "2026-11-30"
    assert [c for c, _ in feed].count("case.plan_created.v1") == 1
    status = [d for c, d in feed if c == "case.status_changed.v1"]
    assert (status[0]["status"], status[0]["rule_id"]) == ("plan", "CASE-HARDSHIP")


async def test_paid_installments_are_never_missed_and_a_paid_plan_ends(
    case_api: httpx.AsyncClient, clock: FrozenClock
) -> None:
    case_id = await _open(case_api, "LN-H2")
    r = await _plan(
        case_api,
        case_id,
        {"agreement_ref": "AGR-2", "count": 2, "first_due_date": "2026-11-30", "interval_days": 7},
    )
    assert r.status_code == 201, r.text
    items = r.json()["installments"]
    assert [(i["due_date"], i["amount"]) for i in items] == [
        ("2026-11-30", "1500.00"),
        ("2026-12-07", "1500.00"),
    ]
    plan_id = r.json()["id"]
    await _pay(case_api, case_id, "P-1", "1500.00", clock.now())
    assert (await _timer(case_api, f"installment:{plan_id}:1")).state == TimerState.CANCELLED
    clock.set(datetime(2026, 12, 1, tzinfo=UTC))
    await _fire(case_api)
    kinds = [c for c, _ in await _feed(case_api, case_id)]
    assert "case.installment_missed.v1" not in kinds
    await _pay(case_api, case_id, "P-2", "1500.00", clock.now())  # pays the balance too
    case = (await case_api.get(f"/v1/cases/{case_id}")).json()
    assert case["status"] == "settled"
    plans = (await case_api.get(f"/v1/cases/{case_id}/plans", headers=OPS)).json()
    assert plans[0]["status"] == "completed"
    assert (await _timer(case_api, f"installment:{plan_id}:2")).state == TimerState.CANCELLED


async def test_plan_installments_may_not_exceed_the_balance(case_api: httpx.AsyncClient) -> None:
    case_id = await _open(case_api, "LN-H3")
    r = await _plan(
        case_api,
        case_id,
        {
            "agreement_ref": "AGR-3",
            "installments": [
                {"due_date": "2026-11-30", "amount": "2000.00"},
                {"due_date": "2026-12-30", "amount": "1000.01"},
            ],
        },
    )
    assert r.status_code == 422
    body = r.json()
    assert (body["field"], body["rule"]) == ("installments", "CASE-HARDSHIP")
    assert (await case_api.get(f"/v1/cases/{case_id}")).json()["status"] == "active"
    no_ref = await _plan(
        case_api, case_id, {"installments": [{"due_date": "2026-11-30", "amount": "1.00"}]}
    )
    assert no_ref.status_code == 422


async def test_plan_on_a_settled_case_is_409_naming_its_state(
    case_api: httpx.AsyncClient, clock: FrozenClock
) -> None:
    case_id = await _open(case_api, "LN-H4")
    await _pay(case_api, case_id, "P-ALL", "3000.00", clock.now())
    r = await _plan(
        case_api,
        case_id,
        {"agreement_ref": "AGR-4", "installments": [{"due_date": "2026-11-30", "amount": "1.00"}]},
    )
    assert r.status_code == 409
    assert r.json()["current_state"] == "settled"
    count = await _plan(
        case_api,
        case_id,
        {"agreement_ref": "AGR-4", "count": 2, "first_due_date": "2026-11-30", "interval_days": 7},
    )
    assert count.status_code == 409 and count.json()["current_state"] == "settled"
