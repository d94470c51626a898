"""Contact holds over PostgreSQL (CONTACT-CONDUCT): do-not-contact and complaint holds deny
every channel with their rule and say when contact is next allowed; complaint holds come
from complaint-svc's complaint.opened.v1 and are lifted by its complaint.closed.v1; placing
and lifting are audited."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from collect_common.clock import FrozenClock
from collect_common.events.complaint import ComplaintClosed
from collect_common.events.types import ComplaintOpened
from collect_common.security.auth import Role, TokenService
from collect_common.settings import DEV_API_KEYS, DEV_TOKEN_SECRET
from collect_common.testing.apps import offline_settings, service_client
from contact_svc.main import create_app
from contact_svc.settings import Settings

from .conftest import Apply, imported

OPS = {"X-API-Key": DEV_API_KEYS["ops-dashboard"][1]}
DIALER = {"X-API-Key": DEV_API_KEYS["dialer"][1]}
AUDITOR = {"X-API-Key": DEV_API_KEYS["bank-auditor"][1]}
URL = "/v1/contact-decisions"


@pytest.fixture
async def contact_api(pg_url: str, clock: FrozenClock) -> AsyncIterator[httpx.AsyncClient]:
    """The service without a default caller: each request names who calls."""
    settings = offline_settings(Settings, pg_url)
    async with service_client(create_app, settings, clock) as client:
        yield client


def _person(clock: FrozenClock, subject: str, role: Role) -> dict[str, str]:
    token = TokenService(DEV_TOKEN_SECRET, "collect-platform", clock).issue(subject, [role])
    return {"Authorization": f"Bearer {token}"}


async def _decide(api: httpx.AsyncClient, channel: str, case_id: str = "c-1") -> Any:
    r = await api.post(URL, json={"case_id": case_id, "channel": channel}, headers=DIALER)
    assert r.status_code == 200, r.text
    return r.json()


async def test_do_not_contact_until_a_date_denies_every_channel_until_then(
    contact_api: httpx.AsyncClient, apply: Apply, clock: FrozenClock
) -> None:
    await apply(imported("c-1", "d-1"))
    assert (await _decide(contact_api, "call"))["allowed"]
    until = "2026-11-27T01:30:00Z"  # 09:30 in Shanghai, Friday
    r = await contact_api.post(
        "/v1/contact-holds",
        json={
            "kind": "do_not_contact",
            "case_id": "c-1",
            "reason": "asked in writing",
            "until": until,
        },
        headers=OPS,
    )
    assert r.status_code == 201, r.text
    hold = r.json()
    assert hold["debtor_id"] == "d-1" and hold["state"] == "active"
    assert hold["rule"] == "CONTACT-CONDUCT" and hold["placed_by"] == "ops-dashboard"
    for channel in ("call", "sms"):
        d = await _decide(contact_api, channel)
        assert d["allowed"] is False
        assert [x["rule"] for x in d["denials"]] == ["CONTACT-CONDUCT"]
        assert hold["hold_id"] in d["denials"][0]["reason"]
        assert d["next_allowed_at"] == until
    clock.advance(timedelta(days=3))  # past the end
    assert (await _decide(contact_api, "call"))["allowed"]
    r = await contact_api.get("/v1/contact-holds?debtor_id=d-1", headers=AUDITOR)
    assert [h["state"] for h in r.json()["items"]] == ["expired"]
    r = await contact_api.post(
        f"/v1/contact-holds/{hold['hold_id']}/lift", json={"reason": "x"}, headers=OPS
    )
    assert r.status_code == 409 and r.json()["current_state"] == "expired"


async def test_an_open_ended_hold_stops_contact_until_lifted_and_both_are_audited(
    contact_api: httpx.AsyncClient, apply: Apply, clock: FrozenClock
) -> None:
    await apply(imported("c-1", "d-1"))
    handler = _person(clock, "handler-7", Role.COMPLAINT)
    r = await contact_api.post(
        "/v1/contact-holds",
        json={"kind": "do_not_contact", "debtor_id": "d-1", "reason": "lawyer 13812345678 asks"},
        headers=handler,
    )
    assert r.status_code == 201, r.text
    hold_id = r.json()["hold_id"]
    # SEC-PII: the stored answer and auditors see the phone masked; complaint handling reads it
    assert r.json()["reason"] == "lawyer 138****5678 asks"
    r = await contact_api.get(f"/v1/contact-holds/{hold_id}", headers=handler)
    assert r.json()["reason"] == "lawyer 13812345678 asks"
    r = await contact_api.get(f"/v1/contact-holds/{hold_id}", headers=AUDITOR)
    assert r.json()["reason"] == "lawyer 138****5678 asks"
    d = await _decide(contact_api, "sms")
    assert [x["rule"] for x in d["denials"]] == ["CONTACT-CONDUCT"]
    assert d["next_allowed_at"] is None  # only lifting it allows contact again
    # least privilege: auditors read, agents neither place nor read
    auditor_post = await contact_api.post(
        "/v1/contact-holds",
        json={"kind": "do_not_contact", "debtor_id": "d-1", "reason": "x"},
        headers=AUDITOR,
    )
    assert auditor_post.status_code == 403
    agent = _person(clock, "a-1", Role.AGENT)
    assert (await contact_api.get("/v1/contact-holds", headers=agent)).status_code == 403

    clock.advance(timedelta(hours=1))
    r = await contact_api.post(
        f"/v1/contact-holds/{hold_id}/lift", json={"reason": "debtor agreed to calls"}, headers=OPS
    )
    assert r.status_code == 200, r.text
    lifted = r.json()
    assert lifted["state"] == "lifted" and lifted["lifted_by"] == "ops-dashboard"
    assert lifted["placed_by"] == "handler-7" and lifted["lift_reason"] == "debtor agreed to calls"
    assert lifted["lifted_at"] == "2026-11-24T03:00:00Z"
    assert (await _decide(contact_api, "call"))["allowed"]
    r = await contact_api.post(
        f"/v1/contact-holds/{hold_id}/lift", json={"reason": "again"}, headers=OPS
    )
    assert r.status_code == 409 and r.json()["current_state"] == "lifted"
    r = await contact_api.get("/v1/contact-holds?debtor_id=d-1&active=false", headers=AUDITOR)
    assert [h["hold_id"] for h in r.json()["items"]] == [hold_id]
    r = await contact_api.get("/v1/contact-holds?active=true", headers=AUDITOR)
    assert r.json()["items"] == []


async def test_an_opened_complaint_puts_its_debtor_on_hold_once(
    contact_api: httpx.AsyncClient, apply: Apply, clock: FrozenClock
) -> None:
    await apply(imported("c-1", "d-1"))
    await apply(imported("c-2", "d-1"))  # the same debtor's other case
    opened = ComplaintOpened(
        ticket_id="t-1", channel="hotline", case_id="c-1", opened_at=clock.now()
    )
    await apply(opened)
    await apply(opened.model_copy())  # redelivered under another event id: still one hold
    await apply(
        ComplaintOpened(ticket_id="t-9", channel="portal", case_id="unknown", opened_at=clock.now())
    )
    r = await contact_api.get("/v1/contact-holds", headers=AUDITOR)
    (hold,) = r.json()["items"]
    assert hold["kind"] == "complaint" and hold["ticket_id"] == "t-1"
    assert hold["debtor_id"] == "d-1" and hold["placed_by"] == "complaint-svc"
    d = await _decide(contact_api, "sms", "c-2")
    assert [x["rule"] for x in d["denials"]] == ["CONTACT-CONDUCT"]
    assert "complaint hold" in d["denials"][0]["reason"]
    # a person cannot file a second hold for the same ticket
    r = await contact_api.post(
        "/v1/contact-holds",
        json={"kind": "complaint", "case_id": "c-1", "ticket_id": "t-1", "reason": "dup"},
        headers=OPS,
    )
    assert r.status_code == 409 and r.json()["field"] == "ticket_id"
    r = await contact_api.post(
        "/v1/contact-holds",
        json={"kind": "complaint", "case_id": "c-1", "reason": "no ticket"},
        headers=OPS,
    )
    assert r.status_code == 422 and r.json()["field"] == "ticket_id"


async def test_a_closed_complaint_lifts_its_hold_once_and_leaves_an_ops_lift_as_it_is(
    contact_api: httpx.AsyncClient, apply: Apply, clock: FrozenClock
) -> None:
    await apply(imported("c-1", "d-1"))
    await apply(imported("c-2", "d-2"))
    for ticket_id, case_id in (("t-1", "c-1"), ("t-2", "c-2")):
        await apply(
            ComplaintOpened(
                ticket_id=ticket_id, channel="hotline", case_id=case_id, opened_at=clock.now()
            )
        )
    assert (await _decide(contact_api, "call", "c-1"))["allowed"] is False
    # ops lifts t-2's hold before the ticket closes
    (held_2,) = (await contact_api.get("/v1/contact-holds?debtor_id=d-2", headers=AUDITOR)).json()[
        "items"
    ]
    r = await contact_api.post(
        f"/v1/contact-holds/{held_2['hold_id']}/lift",
        json={"reason": "handled by phone"},
        headers=OPS,
    )
    assert r.status_code == 200, r.text

    clock.advance(timedelta(days=1))
    closed_at = clock.now()
    closed = ComplaintClosed(ticket_id="t-1", case_id="c-1", debtor_id="d-1", closed_at=closed_at)
    await apply(closed)
    assert (await _decide(contact_api, "call", "c-1"))["allowed"] is True
    (hold,) = (await contact_api.get("/v1/contact-holds?debtor_id=d-1", headers=AUDITOR)).json()[
        "items"
    ]
    assert hold["state"] == "lifted" and hold["lifted_by"] == "complaint-svc"
    assert hold["lift_reason"] == "ticket closed"
    assert hold["lifted_at"] == "2026-11-25T02:00:00Z"

    clock.advance(timedelta(hours=1))
    await apply(closed.model_copy())  # redelivered under another event id: no second lift
    again = (await contact_api.get(f"/v1/contact-holds/{hold['hold_id']}", headers=AUDITOR)).json()
    assert again["lifted_at"] == "2026-11-25T02:00:00Z"

    await apply(
        ComplaintClosed(ticket_id="t-2", case_id="c-2", debtor_id="d-2", closed_at=clock.now())
    )
    kept = (await contact_api.get(f"/v1/contact-holds/{held_2['hold_id']}", headers=AUDITOR)).json()
    assert kept["lifted_by"] == "ops-dashboard" and kept["lift_reason"] == "handled by phone"
    # a ticket that never held contact (unknown case at opening): nothing to lift
    await apply(ComplaintClosed(ticket_id="t-9", case_id=None, closed_at=clock.now()))
    listed = (await contact_api.get("/v1/contact-holds", headers=AUDITOR)).json()["items"]
    assert sorted(h["ticket_id"] for h in listed) == ["t-1", "t-2"]


async def test_holds_are_listed_newest_first_by_page_and_retries_place_one(
    contact_api: httpx.AsyncClient, apply: Apply, clock: FrozenClock
) -> None:
    await apply(imported("c-1", "d-1"))
    r = await contact_api.post(
        "/v1/contact-holds",
        json={"kind": "do_not_contact", "debtor_id": "nobody", "reason": "x"},
        headers=OPS,
    )
    assert r.status_code == 404 and r.json()["field"] == "debtor_id"
    r = await contact_api.post(
        "/v1/contact-holds",
        json={
            "kind": "do_not_contact",
            "debtor_id": "d-1",
            "reason": "x",
            "until": "2026-11-01T00:00:00Z",
        },
        headers=OPS,
    )
    assert r.status_code == 422 and r.json()["field"] == "until"
    assert r.json()["rule"] == "CONTACT-CONDUCT"
    ids = []
    for n in range(3):
        key = {**OPS, "Idempotency-Key": f"hold-{n}"}
        body = {"kind": "do_not_contact", "debtor_id": "d-1", "reason": f"r{n}"}
        first = await contact_api.post("/v1/contact-holds", json=body, headers=key)
        again = await contact_api.post("/v1/contact-holds", json=body, headers=key)
        assert again.json()["hold_id"] == first.json()["hold_id"]
        ids.append(first.json()["hold_id"])
        clock.advance(timedelta(minutes=1))
    seen: list[str] = []
    cursor = None
    while True:
        url = "/v1/contact-holds?debtor_id=d-1&limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = (await contact_api.get(url, headers=OPS)).json()
        seen += [h["hold_id"] for h in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ids[::-1]
    d = await _decide(contact_api, "call")
    assert [x["rule"] for x in d["denials"]] == ["CONTACT-CONDUCT"] * 3
    assert str(uuid.UUID(ids[0])) in " ".join(x["reason"] for x in d["denials"])
