"""COMP-STATS reports on PostgreSQL: weekly counts, monthly trends by the read model's case
dimensions, SLA attainment per step; weeks and months in the reporting zone (Asia/Shanghai)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest

from collect_common.bus.consumer import HandlerContext
from collect_common.clock import FrozenClock
from collect_common.events.catalogue import Event
from collect_common.events.codec import wrap
from collect_common.events.types import CaseBucketChanged, CaseImported
from collect_common.security.auth import Role, TokenService
from collect_common.settings import DEV_TOKEN_SECRET
from complaint_svc.entrypoints.consumer import handlers

pytestmark = pytest.mark.postgres


def auth(clock: FrozenClock, role: Role, subject: str = "ops-1") -> dict[str, str]:
    token = TokenService(DEV_TOKEN_SECRET, "collect-platform", clock).issue(subject, [role])
    return {"Authorization": f"Bearer {token}"}


async def deliver(api: httpx.AsyncClient, event: Event) -> None:
    """Apply one event through its handler in a real unit of work, as the consumer does."""
    app: Any = api.app  # type: ignore[attr-defined]
    envelope = wrap(event, source="/test", time=datetime.now(UTC))
    async with app.state.runtime.uow() as uow:
        ctx = HandlerContext(uow=uow, envelope=envelope, record=None)  # type: ignore[arg-type]
        await handlers(lambda: app.state.complaint_context)[event.type_name](event, ctx)
        await uow.commit()


def imported(case_id: str, bucket: str, **dims: str | None) -> CaseImported:
    return CaseImported(
        case_id=case_id,
        debtor_id=f"debtor-of-{case_id}",
        bank_id="bank-a",
        overdue_total=Decimal("5000.00"),
        overdue_since=date(2026, 10, 1),
        bucket=bucket,  # type: ignore[arg-type]
        debtor_timezone="Asia/Shanghai",
        **dims,  # type: ignore[arg-type]
    )


async def file(
    api: httpx.AsyncClient,
    clock: FrozenClock,
    at: str,
    type_: str = "attitude",
    channel: str = "hotline",
    case_id: str | None = None,
) -> dict[str, Any]:
    clock.set(datetime.fromisoformat(at))
    body = {
        "type": type_,
        "channel": channel,
        "complainant_name": "张三",
        "complainant_contact": "13812345678",
        "content": "complaint",
        "case_id": case_id,
    }
    if channel == "portal":
        body.pop("channel")
        r = await api.post("/v1/portal/complaints", json=body, headers={"Authorization": ""})
    else:
        r = await api.post("/v1/tickets", json=body, headers=auth(clock, Role.COMPLAINT))
    assert r.status_code == 201, r.text
    result: dict[str, Any] = r.json()
    return result


def counts(items: list[dict[str, Any]]) -> dict[str, int]:
    return {i["key"]: i["count"] for i in items}


async def test_weekly_counts_by_type_channel_and_case_type_in_the_local_week(
    api: httpx.AsyncClient, clock: FrozenClock
) -> None:
    await deliver(api, imported("case-a", "M1", case_type="credit_card"))
    await deliver(api, imported("case-b", "M2", case_type="consumer_loan"))
    await file(api, clock, "2026-11-28T02:00:00+00:00", "attitude", "hotline", "case-a")
    await file(api, clock, "2026-11-28T03:00:00+00:00", "frequency", "email", "case-b")
    await file(api, clock, "2026-11-28T04:00:00+00:00", "attitude", "portal")
    # Sunday 23:59 in Shanghai: still week 48; Monday 00:00 there: week 49 (UTC: Sunday)
    await file(api, clock, "2026-11-29T15:59:00+00:00", "violation", "hotline", "case-a")
    await file(api, clock, "2026-11-29T16:00:00+00:00", "attitude", "hotline", "case-a")

    r = await api.get("/v1/stats/weekly?week=2026-W48", headers=auth(clock, Role.OPS))
    assert r.status_code == 200, r.text
    week = r.json()
    assert (week["week"], week["timezone"], week["total"]) == ("2026-W48", "Asia/Shanghai", 4)
    assert week["start"] == "2026-11-22T16:00:00Z" and week["end"] == "2026-11-29T16:00:00Z"
    assert counts(week["by_type"]) == {"attitude": 2, "frequency": 1, "violation": 1, "other": 0}
    assert counts(week["by_channel"]) == {"hotline": 2, "email": 1, "portal": 1, "contact": 0}
    assert counts(week["by_case_type"]) == {"credit_card": 2, "consumer_loan": 1, "unknown": 1}

    current = await api.get("/v1/stats/weekly", headers=auth(clock, Role.AUDITOR))
    assert current.status_code == 200
    assert (current.json()["week"], current.json()["total"]) == ("2026-W49", 1)


async def test_reports_admit_ops_and_auditors_only_and_name_a_bad_period(
    api: httpx.AsyncClient, clock: FrozenClock
) -> None:
    denied = await api.get("/v1/stats/weekly", headers=auth(clock, Role.COMPLAINT))
    assert denied.status_code == 403 and denied.json()["rule"] == "SEC-ACCESS"
    bad = await api.get("/v1/stats/weekly?week=2026-48", headers=auth(clock, Role.OPS))
    assert bad.status_code == 422
    assert (bad.json()["field"], bad.json()["rule"]) == ("week", "COMP-STATS")
    too_long = await api.get("/v1/stats/monthly?months=25", headers=auth(clock, Role.OPS))
    assert too_long.status_code == 422
    assert (too_long.json()["field"], too_long.json()["rule"]) == ("months", "COMP-STATS")
    backwards = await api.get(
        "/v1/stats/sla?from=2026-11-02&to=2026-11-01", headers=auth(clock, Role.OPS)
    )
    assert backwards.status_code == 422 and backwards.json()["field"] == "to"


async def test_monthly_trend_by_region_group_and_the_stage_when_accepted(
    api: httpx.AsyncClient, clock: FrozenClock
) -> None:
    await deliver(api, imported("case-a", "M1", region="310000", customer_group="retail"))
    await deliver(api, imported("case-b", "M2", region="440000", customer_group="vip"))
    await file(api, clock, "2026-11-28T02:00:00+00:00", case_id="case-a")
    # case-a moves to M2 on the debtor's local 5 December (from 2026-12-04T16:00Z)
    await deliver(
        api,
        CaseBucketChanged(
            case_id="case-a",
            debtor_id="debtor-of-case-a",
            previous="M1",
            bucket="M2",
            days_past_due=31,
            as_of=date(2026, 12, 5),
        ),
    )
    await file(api, clock, "2026-12-04T15:00:00+00:00", case_id="case-a")  # still M1
    await file(api, clock, "2026-12-04T16:30:00+00:00", case_id="case-a")  # M2
    # 1 January 00:30 in Shanghai is still 31 December in UTC: January there
    await file(api, clock, "2026-12-31T16:30:00+00:00", case_id="case-b")
    await file(api, clock, "2026-12-31T17:00:00+00:00", channel="portal")  # no case

    r = await api.get("/v1/stats/monthly?months=3&through=2027-01", headers=auth(clock, Role.OPS))
    assert r.status_code == 200, r.text
    trend = r.json()
    assert [m["month"] for m in trend["months"]] == ["2026-11", "2026-12", "2027-01"]
    assert trend["months"][2]["start"] == "2026-12-31T16:00:00Z"
    assert trend["totals"] == [1, 2, 2]

    def series(name: str) -> dict[str, list[int]]:
        return {s["key"]: s["counts"] for s in trend[name]}

    assert series("by_region") == {"310000": [1, 2, 0], "440000": [0, 0, 1], "unknown": [0, 0, 1]}
    assert series("by_customer_group") == {
        "retail": [1, 2, 0],
        "vip": [0, 0, 1],
        "unknown": [0, 0, 1],
    }
    assert series("by_bucket") == {"M1": [1, 1, 0], "M2": [0, 1, 1], "unknown": [0, 0, 1]}


async def test_sla_attainment_per_step_with_breaches_in_the_period(
    api: httpx.AsyncClient, clock: FrozenClock
) -> None:
    on_time = await file(api, clock, "2026-11-28T02:00:00+00:00")
    late = await file(api, clock, "2026-11-28T02:00:00+00:00")
    handler = auth(clock, Role.COMPLAINT)
    clock.advance(timedelta(minutes=5))
    r = await api.post(f"/v1/tickets/{on_time['id']}/steps/contact/complete", headers=handler)
    assert r.status_code == 200, r.text
    clock.advance(timedelta(minutes=6))  # 11 minutes: the late one's call-back is breached
    await api.app.state.runtime.scheduler.fire_due()  # type: ignore[attr-defined]
    clock.advance(timedelta(minutes=4))
    r = await api.post(f"/v1/tickets/{late['id']}/steps/contact/complete", headers=handler)
    assert r.status_code == 200, r.text
    r = await api.post(f"/v1/tickets/{on_time['id']}/steps/verify/complete", headers=handler)
    assert r.status_code == 200, r.text

    r = await api.get("/v1/stats/sla?from=2026-11-28&to=2026-11-28", headers=auth(clock, Role.OPS))
    assert r.status_code == 200, r.text
    steps = {s["step"]: s for s in r.json()["steps"]}
    assert list(steps) == ["contact", "verify", "evidence", "investigate", "resolve", "followup"]
    contact = steps["contact"]
    assert (contact["rule"], contact["completed"], contact["within_sla"]) == (
        "COMP-SLA-CONTACT",
        2,
        1,
    )
    assert (contact["attainment"], contact["breached"]) == (0.5, 1)
    verify = steps["verify"]
    assert (verify["completed"], verify["within_sla"], verify["attainment"]) == (1, 1, 1.0)
    assert steps["resolve"] == {
        "step": "resolve",
        "rule": "COMP-SLA-RESOLVE",
        "completed": 0,
        "within_sla": 0,
        "attainment": None,
        "breached": 0,
    }
    # the day before, in the reporting zone, saw none of it
    before = await api.get(
        "/v1/stats/sla?from=2026-11-27&to=2026-11-27", headers=auth(clock, Role.AUDITOR)
    )
    assert [s["completed"] + s["breached"] for s in before.json()["steps"]] == [0] * 6


async def test_sla_attainment_counts_the_steps_of_past_investigation_cycles(
    api: httpx.AsyncClient, clock: FrozenClock
) -> None:
    """An escalation (COMP-ESCALATE) restarts investigate, resolve and follow-up; the cycle it
    ended keeps its clocks in ``complaint_step_history``, and they count in their period."""
    from complaint_svc.adapters.tables import metadata

    ticket = await file(api, clock, "2026-11-28T02:00:00+00:00")
    history = metadata.tables["complaint_step_history"]
    accepted = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)
    rows = [
        {  # cycle 1: investigated in 6 h of 8, resolved 2 h late
            "ticket_id": ticket["id"],
            "cycle": 1,
            "step": step,
            "rule_id": rule,
            "started_at": accepted,
            "deadline": accepted + timedelta(hours=hours),
            "completed_at": accepted + timedelta(hours=done),
            "warned_first_at": None,
            "warned_second_at": None,
            "breached_at": breached,
        }
        for step, rule, hours, done, breached in (
            ("investigate", "COMP-SLA-INVESTIGATE", 8, 6, None),
            ("resolve", "COMP-SLA-RESOLVE", 24, 26, accepted + timedelta(hours=24)),
        )
    ]
    engine = api.app.state.runtime.engine  # type: ignore[attr-defined]
    async with engine.begin() as conn:
        await conn.execute(history.insert(), rows)

    r = await api.get("/v1/stats/sla?from=2026-11-28&to=2026-11-29", headers=auth(clock, Role.OPS))
    steps = {s["step"]: s for s in r.json()["steps"]}
    assert (steps["investigate"]["completed"], steps["investigate"]["within_sla"]) == (1, 1)
    assert (steps["resolve"]["completed"], steps["resolve"]["within_sla"]) == (1, 0)
    assert steps["resolve"]["breached"] == 1 and steps["resolve"]["attainment"] == 0.0
