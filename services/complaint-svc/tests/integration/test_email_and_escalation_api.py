"""E-mail intake (COMP-CHANNELS) and escalation (COMP-ESCALATE) on PostgreSQL."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from email.header import Header
from email.message import EmailMessage
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from collect_common.clock import FrozenClock
from collect_common.security.auth import Role, TokenService
from collect_common.settings import DEV_TOKEN_SECRET

NOW = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)  # the conftest's clock start
RFC822 = {"Content-Type": "message/rfc822"}

pytestmark = pytest.mark.postgres


async def fire(api: httpx.AsyncClient) -> int:
    count: int = await api.app.state.runtime.scheduler.fire_due()  # type: ignore[attr-defined]
    return count


async def sql(api: httpx.AsyncClient, query: str, **params: Any) -> list[Any]:
    engine = api.app.state.runtime.engine  # type: ignore[attr-defined]
    async with engine.connect() as conn:
        return list((await conn.execute(text(query), params)).all())


def advance(api: httpx.AsyncClient, clock: FrozenClock, by: timedelta) -> None:
    """Move the clock and sign the handler in again (a token lives less than hours)."""
    clock.advance(by)
    token = TokenService(DEV_TOKEN_SECRET, "collect-platform", clock).issue(
        "handler-1", [Role.COMPLAINT]
    )
    api.headers["Authorization"] = f"Bearer {token}"


def step(ticket: dict[str, Any], name: str) -> dict[str, Any]:
    return next(s for s in ticket["steps"] if s["step"] == name)


def mail(
    subject: str = "关于招商银行催收投诉 - 张三 - 13812345678",
    body: str = "催收员电话里辱骂我。",
    message_id: str = "<m-1@mail.example>",
) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "Zhang San <zhangsan@example.com>"
    msg["To"] = "complaints@agency.example"
    msg["Subject"] = subject
    msg["Message-ID"] = message_id
    msg.set_content(body)
    return msg


async def post_mail(api: httpx.AsyncClient, raw: bytes) -> httpx.Response:
    return await api.post("/v1/inbound/email", content=raw, headers=RFC822)


async def test_a_well_formed_mail_files_an_email_ticket_with_the_sla_chain(
    api: httpx.AsyncClient,
) -> None:
    r = await post_mail(api, mail().as_bytes())
    assert r.status_code == 201, r.text
    t = r.json()
    assert t["channel"] == "email" and t["state"] == "received"
    assert t["complainant_name"] == "张三" and t["complainant_phone"] == "13812345678"
    assert t["complainant_contact"] == "zhangsan@example.com"
    assert "辱骂" in t["content"] and t["needs_triage"] is False and t["triage_reasons"] == []
    assert t["message_id"] == "<m-1@mail.example>"
    assert [e["kind"] for e in t["evidence"]] == ["email"]
    assert step(t, "contact")["deadline"].startswith("2026-11-28T02:10")
    scheduled = await sql(api, "SELECT count(*) FROM timers WHERE subject = :t", t=t["id"])
    assert scheduled[0][0] == 15
    row = (
        await sql(
            api,
            "SELECT complainant_name, complainant_contact, complainant_phone, channel"
            " FROM complaint_tickets WHERE id = :id",
            id=t["id"],
        )
    )[0]
    assert "张三" not in row[0] and "zhangsan" not in row[1] and "13812345678" not in row[2]
    assert row[3] == "email"


async def test_an_encoded_word_subject_with_full_width_dashes_is_decoded(
    api: httpx.AsyncClient,
) -> None:
    subject = Header("关于 某某银行催收投诉 － 【李四】 —  138-1234-5678", "utf-8").encode()
    raw = (
        "From: li@example.com\r\nSubject: " + subject + "\r\nMessage-ID: <enc@x>\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n\r\n<p>每天打<b>十次</b>电话</p>"
    ).encode()
    assert "=?utf-8?b?" in raw.decode()
    r = await post_mail(api, raw)
    assert r.status_code == 201, r.text
    t = r.json()
    assert (t["complainant_name"], t["complainant_phone"]) == ("李四", "13812345678")
    assert t["content"] == "每天打十次电话" and t["needs_triage"] is False


async def test_a_malformed_subject_is_filed_for_triage(api: httpx.AsyncClient) -> None:
    r = await post_mail(api, mail(subject="投诉!!! 请尽快处理").as_bytes())
    assert r.status_code == 201, r.text
    t = r.json()
    assert t["needs_triage"] is True and t["state"] == "received"
    assert any("subject" in reason for reason in t["triage_reasons"])
    assert t["complainant_contact"] == "zhangsan@example.com"
    assert t["complainant_phone"] is None
    assert step(t, "contact")["status"] == "running"  # same SLA chain


async def test_a_garbage_message_is_still_filed_for_triage(api: httpx.AsyncClient) -> None:
    raw = b"\xff\xfe this is not a mail at all\nno headers, just text"
    r = await post_mail(api, raw)
    assert r.status_code == 201, r.text
    t = r.json()
    assert t["needs_triage"] is True
    assert "not a valid RFC 822 message" in t["triage_reasons"]
    assert "not a mail at all" in t["content"]
    assert t["evidence"][0]["sha256"] == hashlib.sha256(raw).hexdigest()
    assert t["evidence"][0]["size_bytes"] == len(raw)
    # only an empty body is refused
    empty = await post_mail(api, b"  \r\n")
    assert empty.status_code == 422
    assert (await sql(api, "SELECT count(*) FROM complaint_tickets"))[0][0] == 1


async def test_an_attachment_is_recorded_as_evidence(api: httpx.AsyncClient) -> None:
    msg = mail()
    recording = b"RIFF....WAVEfmt fake recording bytes" * 10
    msg.add_attachment(recording, maintype="audio", subtype="wav", filename="通话录音.wav")
    r = await post_mail(api, msg.as_bytes())
    assert r.status_code == 201, r.text
    t = r.json()
    attachment = next(e for e in t["evidence"] if e["kind"] == "attachment")
    assert attachment["name"] == "通话录音.wav" and attachment["content_type"] == "audio/wav"
    assert attachment["size_bytes"] == len(recording)
    assert attachment["sha256"] == hashlib.sha256(recording).hexdigest()
    assert "辱骂" in t["content"] and "RIFF" not in t["content"]
    got = (await api.get(f"/v1/tickets/{t['id']}")).json()
    assert got["evidence"] == t["evidence"]


async def test_the_same_message_id_twice_files_one_ticket(api: httpx.AsyncClient) -> None:
    first = await post_mail(api, mail().as_bytes())
    again = await post_mail(api, mail(body="forwarded again").as_bytes())
    assert first.status_code == 201 and again.status_code == 200
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    assert (await sql(api, "SELECT count(*) FROM complaint_tickets"))[0][0] == 1
    other = await post_mail(api, mail(message_id="<m-2@mail.example>").as_bytes())
    assert other.status_code == 201 and other.json()["id"] != first.json()["id"]


async def test_email_intake_needs_the_complaint_role_and_a_bounded_body(
    api: httpx.AsyncClient,
) -> None:
    anonymous = await api.post(
        "/v1/inbound/email", content=mail().as_bytes(), headers={**RFC822, "Authorization": ""}
    )
    assert anonymous.status_code == 401
    huge = b"Subject: x\r\n\r\n" + b"x" * (10 * 1024 * 1024 + 1)
    r = await post_mail(api, huge)
    assert r.status_code == 413 and r.json()["rule"] == "COMP-CHANNELS"


# -- follow-up and escalation (COMP-ESCALATE) -------------------------------------------


async def investigate_jointly(api: httpx.AsyncClient, tid: str) -> None:
    """COMP-JOINT: the three departments' findings, then the cycle's outcome."""
    for department in ("collection", "compliance", "customer_service"):
        r = await api.post(
            f"/v1/tickets/{tid}/findings", json={"department": department, "text": "checked"}
        )
        assert r.status_code == 201, r.text
    r = await api.post(f"/v1/tickets/{tid}/outcome", json={"substantiated": False})
    assert r.status_code == 200, r.text


async def resolved_ticket(api: httpx.AsyncClient) -> str:
    r = await api.post(
        "/v1/tickets",
        json={
            "type": "attitude",
            "complainant_name": "张三",
            "complainant_contact": "13812345678",
            "content": "rude",
        },
    )
    tid: str = r.json()["id"]
    for name in ("contact", "verify", "evidence", "investigate", "resolve"):
        if name == "resolve":
            await investigate_jointly(api, tid)
        done = await api.post(f"/v1/tickets/{tid}/steps/{name}/complete")
        assert done.status_code == 200, done.text
    return tid


async def test_dissatisfied_follow_up_escalates_and_restarts_the_chain(
    api: httpx.AsyncClient, clock: FrozenClock
) -> None:
    tid = await resolved_ticket(api)
    advance(api, clock, timedelta(hours=2))
    r = await api.post(f"/v1/tickets/{tid}/followup", json={"satisfied": False, "note": "不满意"})
    assert r.status_code == 200, r.text
    t = r.json()
    escalated = NOW + timedelta(hours=2)
    assert t["state"] == "escalated" and t["cycle"] == 2
    assert datetime.fromisoformat(t["escalated_at"]) == escalated
    assert t["followup_note"] == "不满意"
    investigate, resolve = step(t, "investigate"), step(t, "resolve")
    assert investigate["status"] == "running" and resolve["status"] == "running"
    assert datetime.fromisoformat(investigate["deadline"]) == escalated + timedelta(hours=8)
    assert datetime.fromisoformat(resolve["deadline"]) == escalated + timedelta(hours=24)
    assert step(t, "followup")["status"] == "not_started"
    assert step(t, "contact")["status"] == "done"
    types = [
        r[0]
        for r in await sql(api, "SELECT event_type FROM outbox WHERE key = :k ORDER BY id", k=tid)
    ]
    assert types[-1] == "complaint.escalated.v1"

    # the first cycle's follow-up timers are cancelled; the new cycle's are scheduled
    old = await sql(
        api,
        "SELECT state FROM timers WHERE timer_key LIKE :k",
        k=f"complaint:{tid}:followup:%",
    )
    assert {s for (s,) in old} == {"cancelled"}
    new = await sql(
        api,
        "SELECT timer_key, state FROM timers WHERE timer_key LIKE :k",
        k=f"complaint:{tid}:c2:%",
    )
    assert len(new) == 6 and {s for _, s in new} == {"scheduled"}

    # the new cycle's timers fire with a moved clock: investigate at 50 % (4 h)
    advance(api, clock, timedelta(hours=4))
    assert await fire(api) == 1
    got = (await api.get(f"/v1/tickets/{tid}")).json()
    assert got["cycle"] == 2 and step(got, "investigate")["warned_first_at"] is not None
    advance(api, clock, timedelta(hours=4))  # 75 % and the breach of investigate
    assert await fire(api) == 2
    got = (await api.get(f"/v1/tickets/{tid}")).json()
    assert step(got, "investigate")["breached"] is True

    # the new cycle runs on: investigate -> investigating, resolve, then satisfied closes
    assert (await api.post(f"/v1/tickets/{tid}/steps/investigate/complete")).json()[
        "state"
    ] == "investigating"
    await investigate_jointly(api, tid)
    assert (await api.post(f"/v1/tickets/{tid}/steps/resolve/complete")).json()[
        "state"
    ] == "resolved"
    r = await api.post(f"/v1/tickets/{tid}/followup", json={"satisfied": True})
    assert r.status_code == 200 and r.json()["state"] == "closed" and r.json()["cycle"] == 2
    left = await sql(
        api, "SELECT count(*) FROM timers WHERE subject = :t AND state = 'scheduled'", t=tid
    )
    assert left[0][0] == 0


async def test_satisfied_follow_up_closes_the_ticket(
    api: httpx.AsyncClient, clock: FrozenClock
) -> None:
    tid = await resolved_ticket(api)
    r = await api.post(f"/v1/tickets/{tid}/followup", json={"satisfied": True, "note": "ok"})
    assert r.status_code == 200, r.text
    t = r.json()
    assert t["state"] == "closed" and t["cycle"] == 1
    assert step(t, "followup")["status"] == "done"
    clock.advance(timedelta(hours=49))
    assert await fire(api) == 0  # the follow-up's timers were stopped


async def test_an_illegal_follow_up_is_409_naming_the_state(api: httpx.AsyncClient) -> None:
    r = await api.post(
        "/v1/tickets",
        json={
            "type": "other",
            "complainant_name": "王五",
            "complainant_contact": "13900001111",
            "content": "x",
        },
    )
    tid = r.json()["id"]
    bad = await api.post(f"/v1/tickets/{tid}/followup", json={"satisfied": False})
    assert bad.status_code == 409
    assert bad.json()["current_state"] == "received" and "received" in bad.json()["detail"]
    missing = await api.post("/v1/tickets/nope/followup", json={"satisfied": True})
    assert missing.status_code == 404
    tid2 = await resolved_ticket(api)
    assert (
        await api.post(f"/v1/tickets/{tid2}/followup", json={"satisfied": True})
    ).status_code == 200
    closed = await api.post(f"/v1/tickets/{tid2}/followup", json={"satisfied": False})
    assert closed.status_code == 409 and closed.json()["current_state"] == "closed"
