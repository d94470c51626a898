"""Handling a complaint on PostgreSQL: the joint investigation's findings and outcome per
cycle (COMP-JOINT, COMP-SANCTION), the steps each cycle kept (COMP-ESCALATE), and
business-hours calendars from a bank contract's policy file (COMP-SLA-*)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import text

from collect_common.clock import FrozenClock
from collect_common.security.auth import Role, TokenService
from collect_common.settings import DEV_TOKEN_SECRET
from collect_common.testing.apps import offline_settings, service_client
from complaint_svc.main import create_app
from complaint_svc.settings import Settings

NOW = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)  # the conftest's clock start (a Saturday)
DEPARTMENTS = ("collection", "compliance", "customer_service")
PII = "张三 says agent 7 called 13812345678 at 23:00"

pytestmark = pytest.mark.postgres


async def sql(api: httpx.AsyncClient, query: str, **params: Any) -> list[Any]:
    engine = api.app.state.runtime.engine  # type: ignore[attr-defined]
    async with engine.connect() as conn:
        return list((await conn.execute(text(query), params)).all())


async def fire(api: httpx.AsyncClient) -> int:
    count: int = await api.app.state.runtime.scheduler.fire_due()  # type: ignore[attr-defined]
    return count


def advance(api: httpx.AsyncClient, clock: FrozenClock, by: timedelta) -> None:
    """Move the clock and sign the handler in again (a token lives less than hours)."""
    clock.advance(by)
    token = TokenService(DEV_TOKEN_SECRET, "collect-platform", clock).issue(
        "handler-1", [Role.COMPLAINT]
    )
    api.headers["Authorization"] = f"Bearer {token}"


async def open_investigating(api: httpx.AsyncClient) -> str:
    r = await api.post(
        "/v1/tickets",
        json={
            "type": "violation",
            "complainant_name": "张三",
            "complainant_contact": "13812345678",
            "content": "Called at night.",
            "case_id": "case-9",
            "agent_id": "agent-7",
        },
    )
    assert r.status_code == 201, r.text
    tid: str = r.json()["id"]
    for name in ("contact", "verify", "evidence"):
        done = await api.post(f"/v1/tickets/{tid}/steps/{name}/complete")
        assert done.status_code == 200, done.text
    return tid


async def add_finding(
    api: httpx.AsyncClient, tid: str, department: str, note: str = "checked", **headers: str
) -> httpx.Response:
    return await api.post(
        f"/v1/tickets/{tid}/findings",
        json={"department": department, "text": note},
        headers=headers,
    )


async def outbox(api: httpx.AsyncClient, tid: str, event_type: str) -> list[dict[str, Any]]:
    """The events' data as written to the outbox (the CloudEvents envelope's ``data``)."""
    rows = await sql(
        api,
        "SELECT payload FROM outbox WHERE key = :k AND event_type = :t ORDER BY id",
        k=tid,
        t=event_type,
    )
    return [json.loads(bytes(r[0]))["data"] for r in rows]


async def test_the_outcome_waits_for_all_three_departments_and_is_emitted(
    api: httpx.AsyncClient,
) -> None:
    tid = await open_investigating(api)
    t = (await api.get(f"/v1/tickets/{tid}")).json()
    assert t["pending_departments"] == list(DEPARTMENTS)

    r = await add_finding(api, tid, "compliance", PII)
    assert r.status_code == 201, r.text
    t = r.json()
    assert t["pending_departments"] == ["collection", "customer_service"]
    [finding] = t["cycles"][0]["findings"]
    assert finding["department"] == "compliance" and finding["author"] == "handler-1"
    assert finding["text"] == PII and finding["cycle"] == 1
    stored = await sql(api, "SELECT text FROM complaint_findings WHERE ticket_id = :t", t=tid)
    assert "13812345678" not in stored[0][0] and "张三" not in stored[0][0]

    early = await api.post(f"/v1/tickets/{tid}/outcome", json={"substantiated": True})
    assert early.status_code == 409
    problem = early.json()
    assert problem["rule"] == "COMP-JOINT" and problem["current_state"] == "investigating"
    assert problem["pending_departments"] == ["collection", "customer_service"]
    assert "collection, customer_service" in problem["detail"]

    for department in ("collection", "customer_service"):
        assert (await add_finding(api, tid, department)).status_code == 201
    over = await api.post(
        f"/v1/tickets/{tid}/outcome",
        json={"substantiated": True, "remedies": ["fee_waiver"], "fee_waiver_amount": "5000.01"},
    )
    assert over.status_code == 422
    assert (over.json()["field"], over.json()["rule"]) == ("fee_waiver_amount", "COMP-SANCTION")
    unnamed = await api.post(
        f"/v1/tickets/{tid}/outcome", json={"substantiated": True, "sanction_requested": True}
    )
    assert unnamed.status_code == 422 and unnamed.json()["field"] == "sanction_severity"

    r = await api.post(
        f"/v1/tickets/{tid}/outcome",
        json={
            "substantiated": True,
            "remedies": ["fee_waiver", "change_of_approach"],
            "fee_waiver_amount": "300.50",
            "sanction_requested": True,
            "sanction_severity": "serious",
            "apology_recorded": True,
        },
    )
    assert r.status_code == 200, r.text
    t = r.json()
    assert t["pending_departments"] == []
    assert t["cycles"][0]["outcome"] == {
        "substantiated": True,
        "remedies": ["fee_waiver", "change_of_approach"],
        "fee_waiver_amount": "300.50",
        "sanction_requested": True,
        "sanction_severity": "serious",
        "apology_recorded": True,
        "decided_by": "handler-1",
        "decided_at": "2026-11-28T02:00:00Z",
    }
    [data] = await outbox(api, tid, "complaint.outcome_recorded.v1")
    assert data["ticket_id"] == tid and data["agent_id"] == "agent-7"
    assert data["case_id"] == "case-9" and data["cycle"] == 1
    assert data["sanction_requested"] is True and data["sanction_severity"] == "serious"
    assert data["fee_waiver_amount"] == "300.50"
    assert "13812345678" not in json.dumps(data) and "checked" not in json.dumps(data)

    again = await api.post(f"/v1/tickets/{tid}/outcome", json={"substantiated": False})
    assert again.status_code == 409 and "cycle 1 has its outcome" in again.json()["detail"]
    late = await add_finding(api, tid, "collection")
    assert late.status_code == 409 and late.json()["current_state"] == "investigating"
    got = (await api.get(f"/v1/tickets/{tid}")).json()
    assert len(got["cycles"][0]["findings"]) == 3 and got["cycles"][0]["outcome"] is not None


async def test_a_retried_finding_or_outcome_is_recorded_once(api: httpx.AsyncClient) -> None:
    tid = await open_investigating(api)
    first = await add_finding(api, tid, "collection", **{"Idempotency-Key": "finding-1"})
    again = await add_finding(api, tid, "collection", **{"Idempotency-Key": "finding-1"})
    assert first.status_code == 201 and again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    rows = await sql(api, "SELECT count(*) FROM complaint_findings WHERE ticket_id = :t", t=tid)
    assert rows[0][0] == 1
    for department in ("compliance", "customer_service"):
        assert (await add_finding(api, tid, department)).status_code == 201
    key = {"Idempotency-Key": "outcome-1"}
    body = {"substantiated": True, "apology_recorded": True}
    decided = await api.post(f"/v1/tickets/{tid}/outcome", json=body, headers=key)
    retried = await api.post(f"/v1/tickets/{tid}/outcome", json=body, headers=key)
    assert decided.status_code == 200 and retried.status_code == 200
    assert retried.json() == decided.json()
    assert len(await outbox(api, tid, "complaint.outcome_recorded.v1")) == 1


async def test_findings_on_an_unknown_ticket_or_department_are_refused(
    api: httpx.AsyncClient,
) -> None:
    assert (await add_finding(api, "nope", "collection")).status_code == 404
    tid = await open_investigating(api)
    assert (await add_finding(api, tid, "marketing")).status_code == 422
    outcome = await api.post("/v1/tickets/nope/outcome", json={"substantiated": False})
    assert outcome.status_code == 404


async def investigate_jointly(api: httpx.AsyncClient, tid: str, **outcome: Any) -> None:
    for department in DEPARTMENTS:
        assert (await add_finding(api, tid, department)).status_code == 201
    r = await api.post(f"/v1/tickets/{tid}/outcome", json={"substantiated": False, **outcome})
    assert r.status_code == 200, r.text


async def test_each_escalated_cycle_needs_its_findings_and_outcome_and_keeps_its_steps(
    api: httpx.AsyncClient, clock: FrozenClock
) -> None:
    tid = await open_investigating(api)
    assert (await api.post(f"/v1/tickets/{tid}/steps/investigate/complete")).status_code == 200
    refused = await api.post(f"/v1/tickets/{tid}/steps/resolve/complete")
    assert refused.status_code == 409
    assert refused.json()["rule"] == "COMP-JOINT"
    assert refused.json()["type"] == "/problems/outcome-missing"
    assert refused.json()["current_state"] == "investigating"

    await investigate_jointly(api, tid)
    advance(api, clock, timedelta(hours=25))  # the result is an hour late
    assert (await api.post(f"/v1/tickets/{tid}/steps/resolve/complete")).status_code == 200
    advance(api, clock, timedelta(hours=1))
    r = await api.post(f"/v1/tickets/{tid}/followup", json={"satisfied": False})
    assert r.status_code == 200 and r.json()["cycle"] == 2
    escalated = NOW + timedelta(hours=26)
    t = r.json()
    assert t["pending_departments"] == list(DEPARTMENTS)
    first, second = t["cycles"]
    steps1 = {s["step"]: s for s in first["steps"]}
    assert list(steps1) == ["contact", "verify", "evidence", "investigate", "resolve", "followup"]
    assert steps1["resolve"]["deadline"] == "2026-11-29T02:00:00Z"
    assert steps1["resolve"]["completed_at"] == "2026-11-29T03:00:00Z"
    assert steps1["resolve"]["within_sla"] is False
    assert steps1["investigate"]["within_sla"] is True
    assert steps1["followup"]["completed_at"] == "2026-11-29T04:00:00Z"
    assert first["outcome"]["substantiated"] is False and first["pending_departments"] == []
    assert [s["step"] for s in second["steps"]] == ["investigate", "resolve", "followup"]
    assert datetime.fromisoformat(second["steps"][0]["deadline"]) == escalated + timedelta(hours=8)
    assert second["findings"] == [] and second["outcome"] is None

    assert (await api.post(f"/v1/tickets/{tid}/steps/investigate/complete")).status_code == 200
    early = await api.post(f"/v1/tickets/{tid}/outcome", json={"substantiated": True})
    assert early.status_code == 409 and early.json()["pending_departments"] == list(DEPARTMENTS)
    again = await api.post(f"/v1/tickets/{tid}/steps/resolve/complete")
    assert again.status_code == 409 and again.json()["cycle"] == 2
    await investigate_jointly(api, tid, substantiated=True, remedies=["new_plan"])
    assert (await api.post(f"/v1/tickets/{tid}/steps/resolve/complete")).status_code == 200
    r = await api.post(f"/v1/tickets/{tid}/followup", json={"satisfied": True})
    assert r.status_code == 200 and r.json()["state"] == "closed"

    final = (await api.get(f"/v1/tickets/{tid}")).json()
    first, second = final["cycles"]
    assert {s["step"]: s for s in first["steps"]}["resolve"] == steps1["resolve"]
    assert first["outcome"]["substantiated"] is False
    assert second["outcome"]["substantiated"] is True and second["outcome"]["remedies"] == [
        "new_plan"
    ]
    assert all(s["within_sla"] is True for s in second["steps"])
    assert len(second["findings"]) == 3
    events = await outbox(api, tid, "complaint.outcome_recorded.v1")
    assert [e["cycle"] for e in events] == [1, 2]
    history = await sql(
        api, "SELECT cycle, step FROM complaint_step_history WHERE ticket_id = :t", t=tid
    )
    assert sorted(history) == [(1, "followup"), (1, "investigate"), (1, "resolve")]
    # the statistics keep reading the live steps, one row per step
    live = await sql(api, "SELECT count(*) FROM complaint_steps WHERE ticket_id = :t", t=tid)
    assert live[0][0] == 6


# -- business hours from the bank contract's policy (COMP-SLA-*) -------------------------

SHANGHAI = ZoneInfo("Asia/Shanghai")


def sh(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=SHANGHAI).astimezone(UTC)


@asynccontextmanager
async def office_hours_api(
    pg_url: str, clock: FrozenClock, tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    policy = tmp_path / "policy.toml"
    policy.write_text(
        '[[policies]]\ncontract = "bank-a"\n'
        '[policies.contact_calendar]\nhours = [["09:00", "18:00"]]\n'
        '[policies.verify_calendar]\nhours = [["09:00", "18:00"]]\nholidays = ["2026-11-30"]\n',
        encoding="utf-8",
    )
    settings = offline_settings(Settings, pg_url, policy_file=policy, policy_contract="bank-a")
    token = TokenService(DEV_TOKEN_SECRET, "collect-platform", clock).issue(
        "handler-1", [Role.COMPLAINT]
    )
    async with service_client(
        create_app, settings, clock, headers={"Authorization": f"Bearer {token}"}
    ) as client:
        yield client


async def test_a_contract_calendar_puts_deadlines_and_timers_in_working_time(
    pg_url: str, clock: FrozenClock, tmp_path: Path
) -> None:
    async with office_hours_api(pg_url, clock, tmp_path) as api:
        r = await api.post(
            "/v1/tickets",
            json={
                "type": "attitude",
                "complainant_name": "李四",
                "complainant_contact": "13900000000",
                "content": "rude",
            },
        )
        assert r.status_code == 201, r.text
        t = r.json()
        tid = t["id"]
        steps = {s["step"]: s for s in t["steps"]}
        # accepted Saturday 10:00 in Shanghai: the call-back is due Monday 09:10
        monday, tuesday = date(2026, 11, 30), date(2026, 12, 1)
        assert datetime.fromisoformat(steps["contact"]["deadline"]) == sh(monday, 9, 10)
        # verification: Monday is this contract's holiday, so Tuesday 11:00 (2 working hours)
        assert datetime.fromisoformat(steps["verify"]["deadline"]) == sh(tuesday, 11)
        # steps without a calendar run around the clock
        assert datetime.fromisoformat(steps["evidence"]["deadline"]) == NOW + timedelta(hours=4)
        due = dict(
            await sql(
                api,
                "SELECT timer_key, due_at FROM timers WHERE timer_key LIKE :k",
                k=f"complaint:{tid}:contact:%",
            )
        )
        assert due[f"complaint:{tid}:contact:warn_first"] == sh(monday, 9, 5)
        assert due[f"complaint:{tid}:contact:breach"] == sh(monday, 9, 10)

        # over the weekend only the around-the-clock steps' timers fire (evidence,
        # investigate and resolve: three each), not the call-back's nor verification's
        advance(api, clock, timedelta(hours=40))  # Monday 02:00 in Shanghai
        assert await fire(api) == 9
        advance(api, clock, timedelta(hours=7, minutes=6))  # Monday 09:06
        assert await fire(api) == 1  # the call-back's first warning

        # paused from Monday 09:06 to Tuesday 09:30: verification's deadline moves by the
        # 30 working minutes of Tuesday (Monday is its holiday); the call-back had 4 minutes
        # left, counted from the resume
        assert (await api.post(f"/v1/tickets/{tid}/pause")).status_code == 200
        advance(api, clock, sh(tuesday, 9, 30) - clock.now())
        r = await api.post(f"/v1/tickets/{tid}/resume")
        assert r.status_code == 200, r.text
        steps = {s["step"]: s for s in r.json()["steps"]}
        assert datetime.fromisoformat(steps["verify"]["deadline"]) == sh(tuesday, 11, 30)
        assert datetime.fromisoformat(steps["contact"]["deadline"]) == sh(
            tuesday, 9, 30
        ) + timedelta(minutes=4)
        timers = dict(
            await sql(
                api,
                "SELECT timer_key, due_at FROM timers WHERE timer_key LIKE :k AND state = :s",
                k=f"complaint:{tid}:verify:%",
                s="scheduled",
            )
        )
        assert timers[f"complaint:{tid}:verify:breach"] == sh(tuesday, 11, 30)
        assert timers[f"complaint:{tid}:verify:warn_first"] == sh(tuesday, 10, 30)
