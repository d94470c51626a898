"""Field visits over PostgreSQL (VISIT-TEAM): two staff in good standing (QA-SANCTION), a time
the contact policy allows in the debtor's local time (CALL-QUIET, CASE-STRATEGY), the
place encrypted and masked, completion with recordings counted as a contact."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text

from collect_common.clock import FrozenClock
from collect_common.events.types import AgentSuspended, CaseStrategyChanged
from collect_common.security.auth import Role, TokenService
from collect_common.settings import DEV_API_KEYS, DEV_TOKEN_SECRET
from collect_common.testing.apps import offline_settings, service_client
from contact_svc.adapters.tables import contact_attempts, contact_denials
from contact_svc.main import create_app
from contact_svc.settings import Settings

from .conftest import NOW, Apply, imported

OPS = {"X-API-Key": DEV_API_KEYS["ops-dashboard"][1]}
AUDITOR = {"X-API-Key": DEV_API_KEYS["bank-auditor"][1]}
PLACE = "上海市浦东新区世纪大道100号"
# NOW is 10:00 in Shanghai on Tuesday 2026-11-24
TOMORROW_10 = "2026-11-25T02:00:00Z"
TOMORROW_1230 = "2026-11-25T04:30:00Z"


@pytest.fixture
async def contact_api(pg_url: str, clock: FrozenClock) -> AsyncIterator[httpx.AsyncClient]:
    """The service without a default caller: each request names who calls."""
    settings = offline_settings(Settings, pg_url)
    async with service_client(create_app, settings, clock) as client:
        yield client


def _agent(clock: FrozenClock) -> dict[str, str]:
    token = TokenService(DEV_TOKEN_SECRET, "collect-platform", clock).issue("a-1", [Role.AGENT])
    return {"Authorization": f"Bearer {token}"}


async def _rows(api: httpx.AsyncClient, query: Any) -> list[Any]:
    runtime = api.app.state.runtime  # type: ignore[attr-defined]
    async with runtime.sessions() as session:
        return list((await session.execute(query)).mappings().all())


async def _case(apply: Apply, channels: list[str], case_id: str = "c-1") -> None:
    await apply(imported(case_id, "d-1"))
    await apply(
        CaseStrategyChanged(
            case_id=case_id,
            debtor_id="d-1",
            previous_track=None,
            track="firm",
            channels=channels,
            rule_name=None,
            table_version="1",
            reason="test",
        )
    )


def _plan(at: str = TOMORROW_10, staff: list[str] | None = None, case_id: str = "c-1") -> Any:
    return {
        "case_id": case_id,
        "purpose": "negotiate a repayment plan",
        "planned_at": at,
        "place": PLACE,
        "staff": ["a-1", "a-2"] if staff is None else staff,
    }


async def test_a_visit_needs_two_staff_none_suspended(
    contact_api: httpx.AsyncClient, apply: Apply, clock: FrozenClock
) -> None:
    await _case(apply, ["visit", "letter"])
    agent = _agent(clock)
    r = await contact_api.post("/v1/visits", json=_plan(staff=["a-1"]), headers=agent)
    assert r.status_code == 422
    assert r.json()["rule"] == "VISIT-TEAM" and r.json()["field"] == "staff"
    r = await contact_api.post("/v1/visits", json=_plan(staff=["a-1", "a-1"]), headers=agent)
    assert r.status_code == 422 and r.json()["rule"] == "VISIT-TEAM"
    await apply(
        AgentSuspended(agent_id="a-2", suspended_at=NOW, rule_id="QA-SANCTION", reason="test")
    )
    r = await contact_api.post("/v1/visits", json=_plan(), headers=agent)
    assert r.status_code == 409
    assert r.json()["rule"] == "QA-SANCTION" and r.json()["field"] == "staff"
    assert "a-2" in r.json()["detail"]
    r = await contact_api.post("/v1/visits", json=_plan(staff=["a-1", "a-3"]), headers=agent)
    assert r.status_code == 201, r.text
    r = await contact_api.post(
        "/v1/visits", json=_plan(at="2026-11-24T01:00:00Z"), headers=agent
    )  # an hour ago
    assert r.status_code == 422 and r.json()["field"] == "planned_at"


async def test_the_planned_time_must_pass_the_policy_in_the_debtors_local_time(
    contact_api: httpx.AsyncClient, apply: Apply, clock: FrozenClock
) -> None:
    await apply(imported("c-0", "d-0"))  # no track yet: no visits
    r = await contact_api.post("/v1/visits", json=_plan(case_id="c-0"), headers=OPS)
    assert r.status_code == 409 and r.json()["rule"] == "CASE-STRATEGY"
    await _case(apply, ["visit"])
    r = await contact_api.post("/v1/visits", json=_plan(at=TOMORROW_1230), headers=OPS)
    assert r.status_code == 409, r.text
    problem = r.json()
    assert problem["rules"] == ["CALL-QUIET"] and "12:30" in problem["detail"]
    assert problem["next_allowed_at"] == "2026-11-25T06:00:00Z"  # 14:00 in Shanghai
    denials = await _rows(contact_api, select(contact_denials))
    assert [d["decision_id"] for d in denials][-1] == problem["decision_id"]
    assert denials[-1]["denied_at"] == clock.now()  # recorded when asked, about tomorrow
    r = await contact_api.post("/v1/visits", json=_plan(at=problem["next_allowed_at"]), headers=OPS)
    assert r.status_code == 201
    # a do-not-contact hold until the day after tomorrow: a visit before then is denied,
    # one after it is not (the hold is asked about the planned instant)
    r = await contact_api.post(
        "/v1/contact-holds",
        json={
            "kind": "do_not_contact",
            "debtor_id": "d-1",
            "reason": "hospitalised",
            "until": "2026-11-26T00:00:00Z",
        },
        headers=OPS,
    )
    assert r.status_code == 201, r.text
    r = await contact_api.post("/v1/visits", json=_plan(), headers=OPS)
    assert r.status_code == 409 and r.json()["rules"] == ["CONTACT-CONDUCT"]
    assert r.json()["next_allowed_at"] == "2026-11-26T00:00:00Z"  # 08:00 in Shanghai
    r = await contact_api.post("/v1/visits", json=_plan(at="2026-11-26T02:00:00Z"), headers=OPS)
    assert r.status_code == 201


async def test_a_visit_is_planned_completed_with_recordings_and_counted(
    contact_api: httpx.AsyncClient, apply: Apply, clock: FrozenClock
) -> None:
    await _case(apply, ["visit"])
    agent = _agent(clock)
    r = await contact_api.post("/v1/visits", json=_plan(), headers=agent)
    assert r.status_code == 201, r.text
    visit = r.json()
    visit_id = visit["visit_id"]
    assert visit["status"] == "planned" and visit["staff"] == ["a-1", "a-2"]
    assert visit["place"] != PLACE  # the answer is kept for retries: masked
    r = await contact_api.get(f"/v1/visits/{visit_id}", headers=agent)
    assert r.json()["place"] == PLACE  # the staff who go there read it
    raw = await _rows(
        contact_api, text("SELECT place FROM visits WHERE visit_id = :id").bindparams(id=visit_id)
    )
    assert PLACE not in raw[0]["place"]  # SEC-PII: encrypted at rest
    r = await contact_api.get(f"/v1/visits/{visit_id}", headers=AUDITOR)
    assert r.json()["place"] == "上海市浦东新" + "*" * (len(PLACE) - 6)  # SEC-PII: masked

    clock.advance(timedelta(days=1, minutes=30))
    agent = _agent(clock)  # a fresh token on the day of the visit
    r = await contact_api.post(
        f"/v1/visits/{visit_id}/complete",
        json={"outcome": "promise_made", "recording_refs": [" "]},
        headers=agent,
    )
    assert r.status_code == 422
    assert r.json()["rule"] == "VISIT-TEAM" and r.json()["field"] == "recording_refs"
    r = await contact_api.post(
        f"/v1/visits/{visit_id}/complete",
        json={
            "outcome": "promise_made",
            "recording_refs": ["rec://visits/v1-body.mp4", "rec://visits/v1-audio.ogg"],
        },
        headers=agent,
    )
    assert r.status_code == 200, r.text
    done = r.json()
    assert done["status"] == "completed" and done["outcome"] == "promise_made"
    assert done["recording_refs"] == ["rec://visits/v1-body.mp4", "rec://visits/v1-audio.ogg"]
    (attempt,) = await _rows(contact_api, select(contact_attempts))
    assert attempt["channel"] == "visit" and attempt["id"] == done["contact_id"]
    r = await contact_api.post(
        f"/v1/visits/{visit_id}/cancel", json={"reason": "too late"}, headers=agent
    )
    assert r.status_code == 409 and r.json()["current_state"] == "completed"

    outbox = await _rows(contact_api, select(contact_api.app.state.runtime.outbox))  # type: ignore[attr-defined]
    kinds = [row["event_type"] for row in outbox]
    assert kinds == [
        "contact.visit_planned.v1",
        "contact.attempted.v1",
        "contact.visit_completed.v1",
    ]
    for row in outbox:
        data = json.loads(row["payload"])["data"]
        assert PLACE not in json.dumps(data, ensure_ascii=False)
        assert row["key"] == "d-1"
    completed = json.loads(outbox[2]["payload"])["data"]
    assert completed["visit_id"] == visit_id and completed["staff"] == ["a-1", "a-2"]


async def test_visits_are_cancelled_listed_by_page_and_retried_posts_plan_once(
    contact_api: httpx.AsyncClient, apply: Apply, clock: FrozenClock
) -> None:
    await _case(apply, ["visit"])
    key = {**OPS, "Idempotency-Key": "visit-c-1-1"}
    first = await contact_api.post("/v1/visits", json=_plan(), headers=key)
    again = await contact_api.post("/v1/visits", json=_plan(), headers=key)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["visit_id"] == first.json()["visit_id"]
    other = await contact_api.post("/v1/visits", json=_plan(at="2026-11-26T02:00:00Z"), headers=OPS)
    r = await contact_api.post(
        f"/v1/visits/{other.json()['visit_id']}/cancel",
        json={"reason": "debtor moved"},
        headers=OPS,
    )
    assert r.json()["status"] == "cancelled" and r.json()["cancel_reason"] == "debtor moved"
    page = (await contact_api.get("/v1/visits?case_id=c-1&limit=1", headers=AUDITOR)).json()
    assert [v["visit_id"] for v in page["items"]] == [first.json()["visit_id"]]
    page = (
        await contact_api.get(
            f"/v1/visits?case_id=c-1&limit=1&cursor={page['next_cursor']}", headers=AUDITOR
        )
    ).json()
    assert [v["status"] for v in page["items"]] == ["cancelled"]
    assert page["next_cursor"] is None
