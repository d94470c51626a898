"""``POST /v1/webhooks/dialer/calls`` over PostgreSQL: signed, replay-safe, idempotent; calls
recorded, attempts settled (the unanswered cap), completions and complaints emitted, calls the
policy would have denied flagged."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import select

from collect_common.clock import FrozenClock
from collect_common.events.types import AgentSuspended
from collect_common.security.webhooks import sign
from contact_svc.adapters.tables import calls, contact_attempts, dialer_deliveries

from .conftest import Apply, imported

URL = "/v1/webhooks/dialer/calls"
KEY_ID = "dialer-dev"
SECRET = b"dev-webhook-secret-not-for-production"


async def _rows(api: httpx.AsyncClient, query):  # type: ignore[no-untyped-def]
    runtime = api.app.state.runtime  # type: ignore[attr-defined]
    async with runtime.sessions() as session:
        return (await session.execute(query)).mappings().all()


async def _outbox(api: httpx.AsyncClient) -> list[dict[str, Any]]:
    rows = await _rows(api, select(api.app.state.runtime.outbox))  # type: ignore[attr-defined]
    return [dict(r) for r in rows]


def _delivery(event: str, clock: FrozenClock, n: str = "1", **extra: Any) -> dict[str, Any]:
    return {
        "delivery_id": f"dlv-{event}-{n}",
        "event": event,
        "call_id": f"call-{n}",
        "case_id": "c-1",
        "debtor_id": "d-1",
        "agent_id": "a-1",
        "at": clock.now().isoformat(),
        **extra,
    }


def _ended(clock: FrozenClock, n: str = "1", disposition: str = "answered") -> dict[str, Any]:
    return _delivery(
        "ended",
        clock,
        n,
        duration_seconds=95,
        disposition=disposition,
        recording_uri=f"s3://recordings/call-{n}.ogg",
        speech_rate_wpm=142.5,
        volume_db=-18.0,
    )


async def _send(
    api: httpx.AsyncClient,
    clock: FrozenClock,
    payload: dict[str, Any],
    *,
    secret: bytes = SECRET,
    key_id: str = KEY_ID,
    timestamp: int | None = None,
    body: bytes | None = None,
) -> httpx.Response:
    raw = json.dumps(payload).encode()
    ts = timestamp if timestamp is not None else int(clock.now().timestamp())
    headers = sign(secret, ts, payload["delivery_id"], raw, key_id=key_id)
    headers["Content-Type"] = "application/json"
    return await api.post(URL, content=body if body is not None else raw, headers=headers)


def _refused(r: httpx.Response, code: str) -> None:
    assert r.status_code == 401, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    problem = r.json()
    assert problem["rule"] == "SEC-ACCESS" and problem["code"] == code, problem


async def test_unsigned_altered_stale_and_replayed_requests_are_refused(
    contact_api: httpx.AsyncClient, apply: Apply, clock: FrozenClock
) -> None:
    await apply(imported("c-1", "d-1"))
    started = _delivery("started", clock)
    _refused(await _send(contact_api, clock, started, secret=b"x" * 40), "bad-signature")
    altered = json.dumps({**started, "agent_id": "a-2"}).encode()
    _refused(await _send(contact_api, clock, started, body=altered), "bad-signature")
    _refused(await _send(contact_api, clock, started, key_id="other"), "unknown-key")
    stale = int((clock.now() - timedelta(minutes=6)).timestamp())
    _refused(await _send(contact_api, clock, started, timestamp=stale), "stale-timestamp")
    r = await contact_api.post(URL, json=started)  # no signature headers at all
    _refused(r, "missing-header")
    assert await _rows(contact_api, select(calls)) == []

    ts = int(clock.now().timestamp())
    first = await _send(contact_api, clock, started, timestamp=ts)
    assert first.status_code == 200, first.text
    _refused(await _send(contact_api, clock, started, timestamp=ts), "replayed")


async def test_a_redelivery_re_signed_changes_nothing_and_gets_the_first_outcome(
    contact_api: httpx.AsyncClient, apply: Apply, clock: FrozenClock
) -> None:
    await apply(imported("c-1", "d-1"))
    started = _delivery("started", clock)
    first = await _send(contact_api, clock, started)
    assert first.status_code == 200, first.text
    assert first.json()["duplicate"] is False
    clock.advance(timedelta(seconds=30))
    ended = _ended(clock)
    assert (await _send(contact_api, clock, ended)).status_code == 200
    outbox_before = await _outbox(contact_api)

    clock.advance(timedelta(seconds=5))  # re-signed: a new timestamp, the same delivery
    again = await _send(contact_api, clock, started)
    assert again.status_code == 200, again.text
    assert again.json() == {**first.json(), "duplicate": True}
    other_id = {**_ended(clock), "delivery_id": "dlv-other"}  # same call event, new id
    again_ended = await _send(contact_api, clock, other_id)
    assert again_ended.status_code == 200 and again_ended.json()["duplicate"] is True
    assert again_ended.json()["delivery_id"] == "dlv-ended-1"

    assert len(await _rows(contact_api, select(calls))) == 1
    assert len(await _rows(contact_api, select(dialer_deliveries))) == 2
    assert len(await _rows(contact_api, select(contact_attempts))) == 1
    assert await _outbox(contact_api) == outbox_before


async def test_an_ended_call_is_recorded_settles_its_attempt_and_emits_call_completed(
    contact_api: httpx.AsyncClient, apply: Apply, clock: FrozenClock
) -> None:
    await apply(imported("c-1", "d-1"))
    decision = await contact_api.post(
        "/v1/contact-decisions", json={"case_id": "c-1", "channel": "call", "agent_id": "a-1"}
    )
    assert decision.json()["allowed"] is True
    clock.advance(timedelta(seconds=10))
    started_at = clock.now()
    r = await _send(contact_api, clock, _delivery("started", clock))
    assert r.status_code == 200 and r.json()["contact_id"] == decision.json()["decision_id"]
    assert r.json()["flagged"] is False
    clock.advance(timedelta(seconds=5))
    assert (await _send(contact_api, clock, _delivery("answered", clock))).status_code == 200
    clock.advance(timedelta(seconds=95))
    assert (await _send(contact_api, clock, _ended(clock))).status_code == 200

    (call,) = await _rows(contact_api, select(calls))
    assert call["started_at"] == started_at and call["ended_at"] == clock.now()
    assert call["answered_at"] == started_at + timedelta(seconds=5)
    assert call["duration_seconds"] == 95 and call["disposition"] == "answered"
    assert call["recording_uri"] == "s3://recordings/call-1.ogg"
    assert call["speech_rate_wpm"] == 142.5 and call["volume_db"] == -18.0
    assert call["flagged"] is False and call["flag_rules"] is None
    (attempt,) = await _rows(contact_api, select(contact_attempts))
    assert attempt["answered"] is True

    completed = [
        json.loads(row["payload"])
        for row in await _outbox(contact_api)
        if row["event_type"] == "contact.call_completed.v1"
    ]
    assert len(completed) == 1
    data = completed[0]["data"]
    assert data["recording_uri"] == "s3://recordings/call-1.ogg"
    assert data["contact_id"] == decision.json()["decision_id"]
    assert data["duration_seconds"] == 95 and data["agent_id"] == "a-1"
    assert datetime.fromisoformat(data["started_at"]) == started_at
    # the dialer's measurements travel on for qa-svc's live rules (QA-REALTIME)
    assert data["speech_rate_wpm"] == 142.5 and data["volume_db"] == -18.0


async def test_a_call_without_a_pre_dial_decision_is_emitted_as_an_attempt(
    contact_api: httpx.AsyncClient, apply: Apply, clock: FrozenClock
) -> None:
    """qa-svc's call-frequency window (QA-REALTIME) counts the calls the dialer made
    without asking, as contact-svc's own daily cap does."""
    await apply(imported("c-1", "d-1"))
    r = await _send(contact_api, clock, _ended(clock))
    assert r.status_code == 200, r.text
    attempted = [
        json.loads(row["payload"])["data"]
        for row in await _outbox(contact_api)
        if row["event_type"] == "contact.attempted.v1"
    ]
    assert len(attempted) == 1
    assert attempted[0]["contact_id"] == r.json()["contact_id"]
    assert attempted[0]["channel"] == "call" and attempted[0]["agent_id"] == "a-1"
    assert datetime.fromisoformat(attempted[0]["attempted_at"]) == clock.now() - timedelta(
        seconds=95
    )
    # the dialer retries the delivery, re-signed a little later: nothing more is emitted
    payload = _ended(clock)
    clock.advance(timedelta(seconds=5))
    again = await _send(contact_api, clock, payload)
    assert again.status_code == 200 and again.json()["duplicate"] is True
    kinds = [row["event_type"] for row in await _outbox(contact_api)]
    assert kinds.count("contact.attempted.v1") == 1


async def test_a_complaint_disposition_reports_a_complaint(
    contact_api: httpx.AsyncClient, apply: Apply, clock: FrozenClock
) -> None:
    await apply(imported("c-1", "d-1"))
    assert (await _send(contact_api, clock, _delivery("started", clock))).status_code == 200
    clock.advance(timedelta(minutes=2))
    r = await _send(contact_api, clock, _ended(clock, disposition="complaint"))
    assert r.status_code == 200, r.text
    outbox = await _outbox(contact_api)
    (reported,) = [r for r in outbox if r["event_type"] == "contact.complaint_reported.v1"]
    assert reported["key"] == "d-1" and reported["topic"] == "contact.events"
    data = json.loads(reported["payload"])["data"]
    assert data["call_id"] == "call-1" and data["case_id"] == "c-1"
    assert data["agent_id"] == "a-1" and data["recording_uri"] == "s3://recordings/call-1.ogg"
    assert datetime.fromisoformat(data["reported_at"]) == clock.now()
    (attempt,) = await _rows(contact_api, select(contact_attempts))
    assert attempt["answered"] is True  # a complaint was heard: the call was answered


async def test_a_call_at_12_30_debtor_time_is_recorded_and_flagged_call_quiet(
    contact_api: httpx.AsyncClient, apply: Apply, clock: FrozenClock
) -> None:
    await apply(imported("c-1", "d-1"))
    clock.advance(timedelta(hours=2, minutes=30))  # 12:30 in Shanghai
    r = await _send(contact_api, clock, _delivery("started", clock))
    assert r.status_code == 200, r.text
    assert r.json()["flagged"] is True and r.json()["flag_rules"] == ["CALL-QUIET"]
    (call,) = await _rows(contact_api, select(calls))
    assert call["flagged"] is True and call["flag_rules"] == "CALL-QUIET"
    (flagged,) = [
        json.loads(row["payload"])["data"]
        for row in await _outbox(contact_api)
        if row["event_type"] == "contact.call_flagged.v1"
    ]
    assert flagged["rules"] == ["CALL-QUIET"] and flagged["call_id"] == "call-1"
    # a call without a pre-dial decision is still an attempt, and counts
    (attempt,) = await _rows(contact_api, select(contact_attempts))
    assert attempt["decision_id"] is None and attempt["attempted_at"] == clock.now()


async def test_a_call_by_a_suspended_agent_is_flagged_qa_sanction(
    contact_api: httpx.AsyncClient, apply: Apply, clock: FrozenClock
) -> None:
    await apply(imported("c-1", "d-1"))
    await apply(
        AgentSuspended(
            agent_id="a-1", suspended_at=clock.now(), rule_id="QA-SANCTION", reason="test"
        )
    )
    r = await _send(contact_api, clock, _delivery("started", clock))
    assert r.json()["flag_rules"] == ["QA-SANCTION"]


async def test_unanswered_attempts_reported_by_the_dialer_count_towards_the_cap(
    contact_api: httpx.AsyncClient, apply: Apply, clock: FrozenClock
) -> None:
    await apply(imported("c-1", "d-1"))
    for n in ("1", "2"):
        d = await contact_api.post(
            "/v1/contact-decisions", json={"case_id": "c-1", "channel": "call", "agent_id": "a-1"}
        )
        assert d.json()["allowed"] is True
        clock.advance(timedelta(seconds=5))
        assert (await _send(contact_api, clock, _delivery("started", clock, n))).status_code == 200
        clock.advance(timedelta(seconds=30))
        r = await _send(contact_api, clock, _ended(clock, n, disposition="no_answer"))
        assert r.status_code == 200 and r.json()["flagged"] is False, r.text
    attempts = await _rows(contact_api, select(contact_attempts))
    assert [a["answered"] for a in attempts] == [False, False]
    r = await contact_api.post(
        "/v1/contact-decisions", json={"case_id": "c-1", "channel": "call", "agent_id": "a-1"}
    )
    body = r.json()
    assert body["allowed"] is False, body
    assert [d["rule"] for d in body["denials"]] == ["CALL-DAILY-CAP"]
    assert "unanswered" in body["denials"][0]["reason"]
