"""``POST /v1/contact-decisions`` over PostgreSQL: caps counted across agents, every denial
recorded and emitted, the last allowed call given to exactly one of concurrent callers."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import select

from collect_common.clock import FrozenClock
from collect_common.events.types import (
    AgentReinstated,
    AgentSuspended,
    CaseRecalled,
    CaseStrategyChanged,
)
from collect_common.security.auth import Role, TokenService
from collect_common.settings import DEV_API_KEYS, DEV_TOKEN_SECRET
from contact_svc.adapters.tables import contact_attempts, contact_denials

from .conftest import Apply, imported

URL = "/v1/contact-decisions"


async def _rows(api: httpx.AsyncClient, query):  # type: ignore[no-untyped-def]
    runtime = api.app.state.runtime  # type: ignore[attr-defined]
    async with runtime.sessions() as session:
        return (await session.execute(query)).mappings().all()


async def test_calls_are_capped_per_debtor_per_day_across_agents(
    contact_api: httpx.AsyncClient, apply: Apply, clock: FrozenClock
) -> None:
    await apply(imported("c-1", "d-1"))
    for n, agent in enumerate(["a-1", "a-2", "a-3"]):
        r = await contact_api.post(
            URL, json={"case_id": "c-1", "channel": "call", "agent_id": agent}
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["allowed"] is True and body["denials"] == [], n
        assert body["debtor_id"] == "d-1" and body["next_allowed_at"] is None
    r = await contact_api.post(URL, json={"debtor_id": "d-1", "channel": "call", "agent_id": "a-4"})
    body = r.json()
    assert body["allowed"] is False
    assert [d["rule"] for d in body["denials"]] == ["CALL-DAILY-CAP"]
    # Shanghai: tomorrow 08:00 local is 00:00 UTC
    assert body["next_allowed_at"] == "2026-11-25T00:00:00Z"

    attempts = await _rows(contact_api, select(contact_attempts))
    assert len(attempts) == 3 and {a["agent_id"] for a in attempts} == {"a-1", "a-2", "a-3"}
    denials = await _rows(contact_api, select(contact_denials))
    assert len(denials) == 1
    assert denials[0]["decision_id"] == body["decision_id"]
    assert denials[0]["rules"] == "CALL-DAILY-CAP" and denials[0]["policy_version"] == "default/1"
    assert json.loads(denials[0]["reasons"])[0]["rule"] == "CALL-DAILY-CAP"

    outbox = await _rows(
        contact_api,
        select(contact_api.app.state.runtime.outbox),  # type: ignore[attr-defined]
    )
    kinds = [row["event_type"] for row in outbox]
    assert kinds.count("contact.attempted.v1") == 3 and kinds.count("contact.denied.v1") == 1
    denied = next(row for row in outbox if row["event_type"] == "contact.denied.v1")
    assert denied["key"] == "d-1" and denied["topic"] == "contact.events"
    payload = json.loads(denied["payload"])
    assert payload["data"]["rules"] == ["CALL-DAILY-CAP"]

    # the next local day starts a new count (after the quiet night)
    clock.advance(timedelta(days=1))
    r = await contact_api.post(URL, json={"case_id": "c-1", "channel": "call"})
    assert r.json()["allowed"] is True


async def test_two_concurrent_requests_for_the_last_call_exactly_one_is_allowed(
    contact_api: httpx.AsyncClient, apply: Apply
) -> None:
    await apply(imported("c-2", "d-2"))
    for _ in range(2):
        assert (await contact_api.post(URL, json={"case_id": "c-2", "channel": "call"})).json()[
            "allowed"
        ]
    for _ in range(5):  # repeat the race; each round starts from 2 calls of 3 made
        results = await asyncio.gather(
            *(
                contact_api.post(URL, json={"case_id": "c-2", "channel": "call", "agent_id": a})
                for a in ("agent-x", "agent-y")
            )
        )
        allowed = [r.json()["allowed"] for r in results]
        assert sorted(allowed) == [False, True]
        runtime = contact_api.app.state.runtime  # type: ignore[attr-defined]
        async with runtime.sessions() as session, session.begin():
            # undo the winner's attempt so the next round races for the last call again
            winner = next(r.json()["decision_id"] for r in results if r.json()["allowed"])
            await session.execute(
                contact_attempts.delete().where(contact_attempts.c.decision_id == winner)
            )


async def test_many_concurrent_requests_never_exceed_the_cap(
    contact_api: httpx.AsyncClient, apply: Apply
) -> None:
    await apply(imported("c-3", "d-3"))
    results = await asyncio.gather(
        *(contact_api.post(URL, json={"case_id": "c-3", "channel": "call"}) for _ in range(12))
    )
    assert sum(r.json()["allowed"] for r in results) == 3
    assert len(await _rows(contact_api, select(contact_attempts))) == 3
    assert len(await _rows(contact_api, select(contact_denials))) == 9


async def test_read_model_events_change_the_decisions(
    contact_api: httpx.AsyncClient, apply: Apply, clock: FrozenClock
) -> None:
    await apply(imported("c-4", "d-4", tz="America/New_York"))
    # 02:00 UTC is 21:00 in New York: quiet hours (CALL-QUIET) in the debtor's zone
    r = (await contact_api.post(URL, json={"case_id": "c-4", "channel": "call"})).json()
    assert [d["rule"] for d in r["denials"]] == ["CALL-QUIET"]
    assert r["next_allowed_at"] == "2026-11-24T13:00:00Z"  # 08:00 EST
    clock.advance(timedelta(hours=13))  # 08:00 in New York
    assert (await contact_api.post(URL, json={"case_id": "c-4", "channel": "sms"})).json()[
        "allowed"
    ]
    await apply(
        CaseStrategyChanged(
            case_id="c-4",
            debtor_id="d-4",
            previous_track=None,
            track="firm",
            channels=["letter", "visit"],
            rule_name=None,
            table_version="1",
            reason="test",
        )
    )
    r = (await contact_api.post(URL, json={"case_id": "c-4", "channel": "sms"})).json()
    assert [d["rule"] for d in r["denials"]] == ["CASE-STRATEGY"]
    assert (await contact_api.post(URL, json={"case_id": "c-4", "channel": "letter"})).json()[
        "allowed"
    ]
    await apply(
        AgentSuspended(
            agent_id="a-9", suspended_at=clock.now(), rule_id="QA-SANCTION", reason="test"
        )
    )
    r = (
        await contact_api.post(URL, json={"case_id": "c-4", "channel": "letter", "agent_id": "a-9"})
    ).json()
    assert [d["rule"] for d in r["denials"]] == ["QA-SANCTION"]
    await apply(AgentReinstated(agent_id="a-9", reinstated_at=clock.now(), exam_ref="exam-1"))
    r = (
        await contact_api.post(URL, json={"case_id": "c-4", "channel": "letter", "agent_id": "a-9"})
    ).json()
    assert r["allowed"] is True
    await apply(CaseRecalled(case_id="c-4", debtor_id="d-4", recalled_at=clock.now()))
    r = (await contact_api.post(URL, json={"case_id": "c-4", "channel": "letter"})).json()
    assert [d["rule"] for d in r["denials"]] == ["CASE-LIFECYCLE"]
    assert r["next_allowed_at"] is None


async def test_a_debtor_with_a_recalled_and_an_active_case_may_be_called_on_the_active_one(
    contact_api: httpx.AsyncClient, apply: Apply, clock: FrozenClock
) -> None:
    await apply(imported("c-5a", "d-5"))
    await apply(imported("c-5b", "d-5"))
    await apply(CaseRecalled(case_id="c-5a", debtor_id="d-5", recalled_at=clock.now()))
    r = (await contact_api.post(URL, json={"debtor_id": "d-5", "channel": "call"})).json()
    assert r["allowed"] is True and r["case_id"] == "c-5b"
    r = (await contact_api.post(URL, json={"case_id": "c-5a", "channel": "call"})).json()
    assert r["allowed"] is False


async def test_refusals_of_the_endpoint(
    contact_api: httpx.AsyncClient, apply: Apply, clock: FrozenClock
) -> None:
    await apply(imported("c-6", "d-6"))
    r = await contact_api.post(URL, json={"case_id": "nope", "channel": "call"})
    assert r.status_code == 404 and r.json()["field"] == "case_id"
    r = await contact_api.post(URL, json={"debtor_id": "nope", "channel": "call"})
    assert r.status_code == 404
    r = await contact_api.post(URL, json={"case_id": "c-6", "debtor_id": "d-6", "channel": "call"})
    assert r.status_code == 422
    r = await contact_api.post(URL, json={"case_id": "c-6", "channel": "fax"})
    assert r.status_code == 422
    bank = {"X-API-Key": DEV_API_KEYS["bank-core"][1]}
    r = await contact_api.post(URL, json={"case_id": "c-6", "channel": "call"}, headers=bank)
    assert r.status_code == 403
    token = TokenService(DEV_TOKEN_SECRET, "collect-platform", clock).issue("a-1", [Role.AGENT])
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=contact_api.app),  # type: ignore[attr-defined]
        base_url="http://contact-svc",
        headers={"Authorization": f"Bearer {token}"},
    ) as agent:
        r = await agent.post(URL, json={"case_id": "c-6", "channel": "call", "agent_id": "a-1"})
        assert r.status_code == 200 and r.json()["allowed"] is True
    assert datetime.now(UTC)  # the endpoint read the injected clock, not this one
