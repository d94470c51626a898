"""Assignment by capacity and skill, reassignment on QA suspension (QA-SANCTION), skip
tracing and legal escalation (CASE-SKIP), over real PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text

from case_svc.adapters.tables import cases, idempotency_keys
from case_svc.bootstrap import bootstrap
from case_svc.entrypoints.api import ROUTERS, agents, case_actions
from case_svc.entrypoints.qa_handlers import QA_HANDLERS
from case_svc.main import DESCRIPTION, TAGS
from case_svc.service_layer.assignment import run_assignment
from case_svc.service_layer.intake import CaseContext
from case_svc.settings import Settings
from collect_common.bus.consumer import HandlerContext
from collect_common.clock import FrozenClock
from collect_common.events.codec import wrap
from collect_common.events.types import AgentReinstated, AgentSuspended
from collect_common.security.auth import Role, TokenService
from collect_common.settings import DEV_API_KEYS, DEV_TOKEN_SECRET
from collect_common.web.app import create_app as build_app
from collect_common.web.idempotency import IdempotencyKeys

pytestmark = pytest.mark.postgres

BANK = {"X-API-Key": DEV_API_KEYS["bank-core"][1]}
OPS = {"X-API-Key": DEV_API_KEYS["ops-dashboard"][1]}
AUDITOR = {"X-API-Key": DEV_API_KEYS["bank-auditor"][1]}
ZHANG = "11010519491231002X"
GENTLE = {"overdue_since": "2026-11-10", "history": "good"}  # M1, good record: gentle
STANDARD = {"overdue_since": "2026-10-10", "history": "unknown"}  # M2: standard


@pytest.fixture
async def api(pg_url: str, clock: FrozenClock) -> AsyncIterator[httpx.AsyncClient]:
    """case-svc as ``case_svc.main.create_app`` builds it, plus the assignment routers
    (until they are registered in ``entrypoints.api.ROUTERS``)."""
    settings = Settings(
        database_url=pg_url,
        kafka_bootstrap_servers="127.0.0.1:1",
        relay_enabled=False,
        consumer_enabled=False,
        log_json=False,
    )
    runtime = bootstrap(settings, clock)
    extra = [r for r in (agents.router, case_actions.router) if r not in ROUTERS]
    app = build_app(
        runtime,
        title="case-svc",
        description=DESCRIPTION,
        routers=[*ROUTERS, *extra],
        openapi_tags=[*TAGS, {"name": "agents", "description": "Agents and assignment"}],
    )
    app.state.case_context = runtime.context_of(CaseContext)
    app.state.idempotency_keys = IdempotencyKeys(idempotency_keys, runtime.clock)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://case-svc", headers=OPS
        ) as client,
    ):
        client.app = app  # type: ignore[attr-defined]
        yield client


def as_agent(api: httpx.AsyncClient, clock: FrozenClock, agent_id: str) -> httpx.AsyncClient:
    """A client of the same app authenticated as a collector (a signed token, no API key)."""
    token = TokenService(DEV_TOKEN_SECRET, "collect-platform", clock).issue(agent_id, [Role.AGENT])
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=api.app),  # type: ignore[attr-defined]
        base_url="http://case-svc",
        headers={"Authorization": f"Bearer {token}"},
    )


def account(contract: str, **over: object) -> dict[str, object]:
    row: dict[str, object] = {
        "contract_no": contract,
        "name": "张三",
        "national_id": ZHANG,
        "phones": ["13812345678"],
        "principal": "12000.00",
        "interest": "0",
        "fees": "0",
        **GENTLE,
    }
    row.update(over)
    return row


async def import_cases(api: httpx.AsyncClient, *rows: dict[str, object]) -> list[str]:
    """One import per account, a second apart: cases are taken oldest first."""
    ids = []
    for row in rows:
        r = await api.post("/v1/accounts/import", json={"accounts": [row]}, headers=BANK)
        assert r.status_code == 200, r.text
        ids.append(r.json()["rows"][0]["case_id"])
        api.app.state.runtime.clock.advance(timedelta(seconds=1))  # type: ignore[attr-defined]
    return ids


async def put_agent(api: httpx.AsyncClient, agent_id: str, **body: Any) -> dict[str, Any]:
    body = {"team_id": "team-1", "skills": ["gentle"], "capacity": 5, "active": True, **body}
    r = await api.put(f"/v1/agents/{agent_id}", json=body)
    assert r.status_code == 200, r.text
    result: dict[str, Any] = r.json()
    return result


async def agents_by_id(api: httpx.AsyncClient) -> dict[str, dict[str, Any]]:
    r = await api.get("/v1/agents", headers=AUDITOR)
    assert r.status_code == 200, r.text
    return {a["agent_id"]: a for a in r.json()["items"]}


async def owners(api: httpx.AsyncClient) -> dict[str, str | None]:
    async with api.app.state.runtime.sessions() as s:  # type: ignore[attr-defined]
        rows = (await s.execute(select(cases.c.contract_no, cases.c.agent_id))).all()
    return {r.contract_no: r.agent_id for r in rows}


async def assigned_events(api: httpx.AsyncClient) -> list[dict[str, Any]]:
    async with api.app.state.runtime.sessions() as s:  # type: ignore[attr-defined]
        rows = (
            await s.execute(
                text("SELECT payload FROM outbox WHERE event_type = 'case.assigned.v1' ORDER BY id")
            )
        ).all()
    return [json.loads(r.payload)["data"] for r in rows]


async def deliver(api: httpx.AsyncClient, event: Any, clock: FrozenClock) -> None:
    """As the consumer does: the handler inside an open unit of work, committed after."""
    runtime = api.app.state.runtime  # type: ignore[attr-defined]
    envelope = wrap(event, source="/qa-svc", time=clock.now())
    async with runtime.uow() as uow:
        ctx = HandlerContext(uow=uow, envelope=envelope, record=None)  # type: ignore[arg-type]
        await QA_HANDLERS[event.type_name](event, ctx)
        await uow.commit()


# -- agents -------------------------------------------------------------------------------


async def test_agents_upsert_and_list_with_load_paginated(api: httpx.AsyncClient) -> None:
    created = await put_agent(api, "a-1", skills=["gentle", "M1"], capacity=2)
    assert created["status"] == "active" and created["skills"] == ["M1", "gentle"]
    assert created["load"] == 0
    updated = await put_agent(api, "a-1", capacity=3, active=False)
    assert (updated["capacity"], updated["status"]) == (3, "inactive")
    await put_agent(api, "a-2")
    await put_agent(api, "a-3")
    first = (await api.get("/v1/agents?limit=2", headers=AUDITOR)).json()
    assert [a["agent_id"] for a in first["items"]] == ["a-1", "a-2"]
    rest = await api.get(f"/v1/agents?limit=2&cursor={first['next_cursor']}", headers=AUDITOR)
    assert [a["agent_id"] for a in rest.json()["items"]] == ["a-3"]
    assert rest.json()["next_cursor"] is None


async def test_agent_input_is_checked_and_only_ops_may_change_agents(
    api: httpx.AsyncClient,
) -> None:
    body = {"team_id": "t", "skills": ["gentle"], "capacity": 1}
    assert (await api.put("/v1/agents/a-1", json={**body, "capacity": -1})).status_code == 422
    assert (await api.put("/v1/agents/a-1", json={**body, "skills": ["pushy"]})).status_code == 422
    assert (await api.put("/v1/agents/a-1", json=body, headers=AUDITOR)).status_code == 403
    assert (await api.post("/v1/assignments/run", headers=AUDITOR)).status_code == 403


# -- the assignment run -----------------------------------------------------------------


async def test_run_respects_skill_capacity_and_least_loaded_first(
    api: httpx.AsyncClient,
) -> None:
    await put_agent(api, "a-1", skills=["gentle"], capacity=2)
    await put_agent(api, "a-2", skills=["gentle"], capacity=1)
    await put_agent(api, "a-3", skills=["M2"], capacity=5)  # a bucket skill
    await put_agent(api, "a-0", skills=["gentle", "standard"], capacity=9, active=False)
    await import_cases(
        api,
        account("G1"),
        account("G2"),
        account("G3"),
        account("G4"),
        account("S1", **STANDARD),
    )
    r = await api.post("/v1/assignments/run")
    assert r.status_code == 200 and r.json() == {"assigned": 4, "unassigned_remaining": 1}
    # oldest first; least loaded wins, ties by agent_id: a-1, a-2, a-1; a-2 full, a-1 full
    got = await owners(api)
    assert (got["G1"], got["G2"], got["G3"], got["G4"]) == ("a-1", "a-2", "a-1", None)
    assert got["S1"] == "a-3"  # M2 covered by the bucket skill
    listed = await agents_by_id(api)
    assert {k: v["load"] for k, v in listed.items()} == {"a-0": 0, "a-1": 2, "a-2": 1, "a-3": 1}
    events = await assigned_events(api)
    assert len(events) == 4 and all(e["previous_agent_id"] is None for e in events)
    # nothing changed: a second run assigns nothing and still counts what fits nobody
    again = await api.post("/v1/assignments/run")
    assert again.json() == {"assigned": 0, "unassigned_remaining": 1}
    # more capacity: the leftover case goes on the next run
    await put_agent(api, "a-2", skills=["gentle"], capacity=2)
    assert (await api.post("/v1/assignments/run")).json()["assigned"] == 1
    assert (await owners(api))["G4"] == "a-2"


async def test_concurrent_runs_never_double_assign_nor_overfill(api: httpx.AsyncClient) -> None:
    await put_agent(api, "a-1", capacity=3)
    await put_agent(api, "a-2", capacity=3)
    await import_cases(api, *(account(f"C{i}") for i in range(8)))
    results = await asyncio.gather(*(api.post("/v1/assignments/run") for _ in range(4)))
    assert all(r.status_code == 200 for r in results)
    assert sum(r.json()["assigned"] for r in results) == 6
    events = await assigned_events(api)
    assert len(events) == 6 and len({e["case_id"] for e in events}) == 6
    listed = await agents_by_id(api)
    assert (listed["a-1"]["load"], listed["a-2"]["load"]) == (3, 3)
    assert list((await owners(api)).values()).count(None) == 2


async def test_a_case_locked_elsewhere_is_skipped_not_waited_for(
    api: httpx.AsyncClient, clock: FrozenClock
) -> None:
    await put_agent(api, "a-1", capacity=5)
    ids = await import_cases(api, account("L1"), account("L2"))
    runtime = api.app.state.runtime  # type: ignore[attr-defined]
    ctx = api.app.state.case_context  # type: ignore[attr-defined]
    async with runtime.uow() as holder:
        await holder.session.execute(
            select(cases.c.id).where(cases.c.id == ids[0]).with_for_update()
        )
        async with runtime.uow() as uow:
            result = await asyncio.wait_for(run_assignment(uow, ctx.cipher, now=clock.now()), 10)
            await uow.commit()
        assert (result.assigned, result.unassigned_remaining) == (1, 0)
    assert (await owners(api)) == {"L1": None, "L2": "a-1"}
    assert (await api.post("/v1/assignments/run")).json()["assigned"] == 1


# -- manual assignment ------------------------------------------------------------------


async def test_manual_assignment_and_refusals(api: httpx.AsyncClient, clock: FrozenClock) -> None:
    await put_agent(api, "a-1")
    await put_agent(api, "a-2", active=False)
    (case_id,) = await import_cases(api, account("M1"))
    r = await api.post(f"/v1/cases/{case_id}/assign", json={"agent_id": "a-1"})
    assert r.status_code == 200 and (r.json()["agent_id"], r.json()["team_id"]) == ("a-1", "team-1")
    inactive = await api.post(f"/v1/cases/{case_id}/assign", json={"agent_id": "a-2"})
    assert inactive.status_code == 409 and inactive.json()["field"] == "agent_id"
    unknown = await api.post(f"/v1/cases/{case_id}/assign", json={"agent_id": "nobody"})
    assert unknown.status_code == 404 and unknown.json()["field"] == "agent_id"
    no_case = await api.post("/v1/cases/nope/assign", json={"agent_id": "a-1"})
    assert no_case.status_code == 404 and no_case.json()["field"] == "case_id"
    await put_agent(api, "a-3")
    await deliver(api, suspension("a-3", clock), clock)
    refused = await api.post(f"/v1/cases/{case_id}/assign", json={"agent_id": "a-3"})
    assert refused.status_code == 409
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["rule"] == "QA-SANCTION"
    assert (await owners(api))["M1"] == "a-1"


# -- suspension and reinstatement (QA-SANCTION) ------------------------------------------


def suspension(agent_id: str, clock: FrozenClock) -> AgentSuspended:
    return AgentSuspended(
        agent_id=agent_id, suspended_at=clock.now(), rule_id="QA-SANCTION", reason="repeated"
    )


async def test_suspension_moves_cases_to_others_or_leaves_them_unassigned(
    api: httpx.AsyncClient, clock: FrozenClock
) -> None:
    await put_agent(api, "a-1", capacity=10)
    ids = await import_cases(api, account("S1"), account("S2"), account("S3"))
    for case_id in ids:
        r = await api.post(f"/v1/cases/{case_id}/assign", json={"agent_id": "a-1"})
        assert r.status_code == 200
    await put_agent(api, "a-2", capacity=1, team_id="team-2")
    await put_agent(api, "a-3", skills=["firm"], capacity=10)  # no skill for these cases

    await deliver(api, suspension("a-1", clock), clock)

    assert await owners(api) == {"S1": "a-2", "S2": None, "S3": None}
    moved = [e for e in await assigned_events(api) if e["previous_agent_id"] == "a-1"]
    assert [(e["case_id"], e["agent_id"], e["team_id"]) for e in moved] == [
        (ids[0], "a-2", "team-2")
    ]
    feed = (await api.get("/v1/changes", headers=BANK)).json()["items"]
    assigned = [c for c in feed if c["change"] == "case.assigned.v1"]
    assert assigned[-1]["data"]["previous_agent_id"] == "a-1"
    assert assigned[-1]["data"]["agent_id"] == "a-2"
    listed = await agents_by_id(api)
    assert (listed["a-1"]["status"], listed["a-1"]["load"]) == ("suspended", 0)
    # ops cannot lift a QA suspension; a suspended agent gets nothing from a run
    assert (await put_agent(api, "a-1", capacity=10))["status"] == "suspended"
    assert (await api.post("/v1/assignments/run")).json() == {
        "assigned": 0,
        "unassigned_remaining": 2,
    }
    # reinstated: active again, nothing moved back automatically; the next run uses them
    await deliver(
        api,
        AgentReinstated(agent_id="a-1", reinstated_at=clock.now(), exam_ref="EX-1"),
        clock,
    )
    assert (await agents_by_id(api))["a-1"]["status"] == "active"
    assert (await owners(api))["S1"] == "a-2"
    assert (await api.post("/v1/assignments/run")).json()["assigned"] == 2


async def test_suspension_of_an_agent_never_registered_records_them_suspended(
    api: httpx.AsyncClient, clock: FrozenClock
) -> None:
    await deliver(api, suspension("ghost", clock), clock)
    ghost = (await agents_by_id(api))["ghost"]
    assert (ghost["status"], ghost["capacity"], ghost["team_id"]) == ("suspended", 0, None)


# -- skip tracing and legal (CASE-SKIP) --------------------------------------------------


async def test_skip_tracing_then_legal_then_no_way_back(
    api: httpx.AsyncClient, clock: FrozenClock
) -> None:
    await put_agent(api, "a-1")
    case_id, other_id = await import_cases(api, account("K1"), account("K2"))
    await api.post(f"/v1/cases/{case_id}/assign", json={"agent_id": "a-1"})
    ops = api
    async with as_agent(api, clock, "a-1") as me:
        r = await me.post(f"/v1/cases/{case_id}/skip-tracing")
        assert r.status_code == 200 and r.json()["status"] == "skip_tracing"
        back = await me.post(f"/v1/cases/{case_id}/contact-regained")
        assert back.status_code == 200 and back.json()["status"] == "active"
        await me.post(f"/v1/cases/{case_id}/skip-tracing")
        legal = await me.post(f"/v1/cases/{case_id}/legal")
        assert legal.status_code == 200 and legal.json()["status"] == "legal"
        assert legal.json()["strategy"]["track"] == "legal"

        refused = await me.post(f"/v1/cases/{case_id}/contact-regained")
        assert refused.status_code == 409
        problem = refused.json()
        assert (problem["current_state"], problem["rule"]) == ("legal", "CASE-SKIP")
        again = await ops.post(f"/v1/cases/{case_id}/skip-tracing")
        assert again.status_code == 409 and again.json()["current_state"] == "legal"

        # an agent acts on their own cases only; ops on any; the bank not at all
        assert (await me.post(f"/v1/cases/{other_id}/skip-tracing")).status_code == 404
        assert (await ops.post(f"/v1/cases/{other_id}/skip-tracing")).status_code == 200
        assert (await ops.post(f"/v1/cases/{other_id}/legal", headers=BANK)).status_code == 403
    feed = (await api.get("/v1/changes", headers=BANK)).json()["items"]
    statuses = [c["data"]["status"] for c in feed if c["change"] == "case.status_changed.v1"]
    assert statuses == ["skip_tracing", "active", "skip_tracing", "legal", "skip_tracing"]
    assert {c["data"]["rule_id"] for c in feed if c["change"] == "case.status_changed.v1"} == {
        "CASE-SKIP"
    }


def test_handlers_are_exported_by_event_type() -> None:
    assert set(QA_HANDLERS) == {"qa.agent_suspended.v1", "qa.agent_reinstated.v1"}
