"""Letters over PostgreSQL (LETTER): bank-approved templates, generation only where the
contact policy allows the letter channel, the text encrypted at rest, dispatch to a
tracked carrier, delivery states with proof, events with ids only."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import select, text

from collect_common.clock import FrozenClock
from collect_common.events.types import CaseSettled, CaseStrategyChanged
from collect_common.settings import DEV_API_KEYS
from contact_svc.adapters.tables import contact_attempts, contact_denials

from .conftest import NOW, Apply, imported

OPS = {"X-API-Key": DEV_API_KEYS["ops-dashboard"][1]}
BANK = {"X-API-Key": DEV_API_KEYS["bank-core"][1]}
AUDITOR = {"X-API-Key": DEV_API_KEYS["bank-auditor"][1]}
ADDRESS = "上海市浦东新区世纪大道100号"
BODY = (
    "{recipient_name}（{address}）：您在{creditor}的借款尚欠{overdue_amount}元，"
    "请于{deadline}前还清。{legal_consequences} 联系：{agency_contact}"
)
VALUES = {
    "recipient_name": "张三",
    "address": ADDRESS,
    "overdue_amount": "5000.00",
    "creditor": "xxxx银行",
    "deadline": "2026-12-15",
    "legal_consequences": "逾期不还，我司将依法提起诉讼。",
    "agency_contact": "400-800-1234",
}


async def _rows(api: httpx.AsyncClient, query: Any) -> list[Any]:
    runtime = api.app.state.runtime  # type: ignore[attr-defined]
    async with runtime.sessions() as session:
        return list((await session.execute(query)).mappings().all())


async def _outbox(api: httpx.AsyncClient) -> list[dict[str, Any]]:
    rows = await _rows(api, select(api.app.state.runtime.outbox))  # type: ignore[attr-defined]
    return [dict(r) for r in rows]


def _firm(case_id: str, debtor_id: str, channels: list[str]) -> CaseStrategyChanged:
    return CaseStrategyChanged(
        case_id=case_id,
        debtor_id=debtor_id,
        previous_track=None,
        track="firm",
        channels=channels,
        rule_name=None,
        table_version="1",
        reason="test",
    )


async def _approved(api: httpx.AsyncClient, bank_id: str = "bank-a") -> str:
    r = await api.post(
        "/v1/letter-templates",
        json={"name": "demand", "bank_id": bank_id, "body": BODY},
        headers=OPS,
    )
    assert r.status_code == 201, r.text
    template_id: str = r.json()["template_id"]
    r = await api.post(
        f"/v1/letter-templates/{template_id}/versions/1/approve",
        json={"approval_number": "LA-2026-0007"},
        headers=BANK,
    )
    assert r.status_code == 200, r.text
    return template_id


def _letter(template_id: str, case_id: str = "c-1") -> dict[str, Any]:
    return {
        "case_id": case_id,
        "template_id": template_id,
        "version": 1,
        "seal_ref": "SEAL-2026-007",
        "values": VALUES,
    }


async def test_templates_need_the_required_content_and_the_banks_approval(
    contact_api: httpx.AsyncClient, apply: Apply
) -> None:
    r = await contact_api.post(
        "/v1/letter-templates",
        json={"name": "x", "bank_id": "bank-a", "body": BODY.replace("{legal_consequences}", "")},
        headers=OPS,
    )
    assert r.status_code == 422
    assert r.json()["rule"] == "LETTER" and r.json()["field"] == "body"
    assert "legal_consequences" in r.json()["detail"]

    r = await contact_api.post(
        "/v1/letter-templates", json={"name": "x", "bank_id": "bank-a", "body": BODY}, headers=OPS
    )
    template_id = r.json()["template_id"]
    assert r.json()["status"] == "pending"
    # only the bank approves; a pending template makes no letter
    r = await contact_api.post(
        f"/v1/letter-templates/{template_id}/versions/1/approve",
        json={"approval_number": "LA-1"},
        headers=OPS,
    )
    assert r.status_code == 403
    await apply(imported("c-1", "d-1"))
    await apply(_firm("c-1", "d-1", ["call", "letter"]))
    r = await contact_api.post("/v1/letters", json=_letter(template_id), headers=OPS)
    assert r.status_code == 409
    assert r.json()["rule"] == "LETTER" and "not approved" in r.json()["detail"]
    r = await contact_api.post(
        f"/v1/letter-templates/{template_id}/versions/1/approve",
        json={"approval_number": "LA-1"},
        headers=BANK,
    )
    assert r.json()["status"] == "approved" and r.json()["approval_number"] == "LA-1"
    r = await contact_api.post(
        f"/v1/letter-templates/{template_id}/versions/1/approve",
        json={"approval_number": "LA-2"},
        headers=BANK,
    )
    assert r.status_code == 409 and r.json()["field"] == "approval_number"
    # another bank's case cannot use it
    await apply(imported("c-2", "d-2", bank_id="bank-b"))
    await apply(_firm("c-2", "d-2", ["letter"]))
    r = await contact_api.post("/v1/letters", json=_letter(template_id, "c-2"), headers=OPS)
    assert r.status_code == 409 and "bank-b" in r.json()["detail"]
    # a new body is a new version, pending again
    r = await contact_api.post(
        f"/v1/letter-templates/{template_id}/versions", json={"body": BODY + " "}, headers=OPS
    )
    assert r.status_code == 201 and r.json()["version"] == 2 and r.json()["status"] == "pending"
    r = await contact_api.get("/v1/letter-templates?status=approved", headers=AUDITOR)
    assert [(t["template_id"], t["version"]) for t in r.json()["items"]] == [(template_id, 1)]


async def test_a_letter_where_the_track_does_not_allow_letters_is_denied_and_recorded(
    contact_api: httpx.AsyncClient, apply: Apply
) -> None:
    template_id = await _approved(contact_api)
    await apply(imported("c-1", "d-1"))  # no track yet: calls and SMS only
    r = await contact_api.post("/v1/letters", json=_letter(template_id), headers=OPS)
    assert r.status_code == 409, r.text
    problem = r.json()
    assert problem["rule"] == "CASE-STRATEGY" and problem["rules"] == ["CASE-STRATEGY"]
    assert problem["next_allowed_at"] is None
    (denial,) = await _rows(contact_api, select(contact_denials))
    assert denial["decision_id"] == problem["decision_id"] and denial["channel"] == "letter"
    r = await contact_api.get("/v1/letters?case_id=c-1", headers=OPS)
    assert r.json()["items"] == []


async def test_a_letter_is_generated_dispatched_and_delivered_with_proof(
    contact_api: httpx.AsyncClient, apply: Apply, clock: FrozenClock
) -> None:
    template_id = await _approved(contact_api)
    await apply(imported("c-1", "d-1"))
    await apply(_firm("c-1", "d-1", ["letter", "visit"]))
    r = await contact_api.post("/v1/letters", json=_letter(template_id), headers=OPS)
    assert r.status_code == 201, r.text
    letter = r.json()
    letter_id = letter["letter_id"]
    assert letter["status"] == "generated" and letter["approval_number"] == "LA-2026-0007"
    assert letter["seal_ref"] == "SEAL-2026-007" and "text" not in letter

    # SEC-PII: the text (name, address) is encrypted at rest; ops read it to print it
    raw = await _rows(
        contact_api, text("SELECT text FROM letters WHERE letter_id = :id").bindparams(id=letter_id)
    )
    assert ADDRESS not in raw[0]["text"] and "张三" not in raw[0]["text"]
    r = await contact_api.get(f"/v1/letters/{letter_id}/text", headers=OPS)
    assert ADDRESS in r.json()["text"] and "尚欠5,000.00元" in r.json()["text"]
    assert (
        await contact_api.get(f"/v1/letters/{letter_id}/text", headers=AUDITOR)
    ).status_code == 403

    # LETTER: tracked carriers only
    r = await contact_api.post(
        f"/v1/letters/{letter_id}/dispatch",
        json={"carrier": "ordinary_mail", "tracking_number": "X1"},
        headers=OPS,
    )
    assert r.status_code == 422 and r.json()["rule"] == "LETTER" and r.json()["field"] == "carrier"
    # a status the letter has not reached yet
    r = await contact_api.post(
        f"/v1/letters/{letter_id}/delivery", json={"status": "in_transit"}, headers=OPS
    )
    assert r.status_code == 409 and r.json()["current_state"] == "generated"

    r = await contact_api.post(
        f"/v1/letters/{letter_id}/dispatch",
        json={"carrier": "registered_mail", "tracking_number": "RR123456789CN"},
        headers=OPS,
    )
    assert r.status_code == 200, r.text
    dispatched = r.json()
    assert dispatched["status"] == "dispatched" and dispatched["tracking_number"] == "RR123456789CN"
    (attempt,) = await _rows(contact_api, select(contact_attempts))
    assert attempt["channel"] == "letter" and attempt["id"] == dispatched["contact_id"]

    r = await contact_api.post(
        f"/v1/letters/{letter_id}/delivery", json={"status": "delivered"}, headers=OPS
    )
    assert r.status_code == 409 and r.json()["current_state"] == "dispatched"
    clock.advance(timedelta(days=1))
    r = await contact_api.post(
        f"/v1/letters/{letter_id}/delivery", json={"status": "in_transit"}, headers=OPS
    )
    assert r.json()["status"] == "in_transit"
    clock.advance(timedelta(days=1))
    r = await contact_api.post(
        f"/v1/letters/{letter_id}/delivery", json={"status": "delivered"}, headers=OPS
    )
    assert r.status_code == 422 and r.json()["field"] == "proof_ref"
    r = await contact_api.post(
        f"/v1/letters/{letter_id}/delivery",
        json={"status": "delivered", "proof_ref": "receipt://ems/RR123456789CN/signed.pdf"},
        headers=OPS,
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "delivered"
    assert r.json()["proof_ref"] == "receipt://ems/RR123456789CN/signed.pdf"
    assert r.json()["delivered_at"] == "2026-11-26T02:00:00Z"
    r = await contact_api.post(
        f"/v1/letters/{letter_id}/delivery",
        json={"status": "returned", "return_reason": "refused"},
        headers=OPS,
    )
    assert r.status_code == 409 and r.json()["current_state"] == "delivered"

    events = {e["event_type"]: e for e in await _outbox(contact_api)}
    assert {
        "contact.letter_dispatched.v1",
        "contact.letter_delivered.v1",
        "contact.attempted.v1",
    } <= set(events)
    for kind in ("contact.letter_dispatched.v1", "contact.letter_delivered.v1"):
        payload = json.dumps(json.loads(events[kind]["payload"]), ensure_ascii=False)
        assert ADDRESS not in payload and "张三" not in payload
        assert events[kind]["key"] == "d-1"
        assert json.loads(payload)["data"]["letter_id"] == letter_id
    delivered = json.loads(events["contact.letter_delivered.v1"]["payload"])["data"]
    assert delivered["proof_ref"] == "receipt://ems/RR123456789CN/signed.pdf"
    assert delivered["tracking_number"] == "RR123456789CN"


async def test_dispatch_asks_the_policy_again_and_a_tracking_number_is_used_once(
    contact_api: httpx.AsyncClient, apply: Apply
) -> None:
    template_id = await _approved(contact_api)
    for n in (1, 2):
        await apply(imported(f"c-{n}", f"d-{n}"))
        await apply(_firm(f"c-{n}", f"d-{n}", ["letter"]))
    first = (await contact_api.post("/v1/letters", json=_letter(template_id), headers=OPS)).json()
    second = (
        await contact_api.post("/v1/letters", json=_letter(template_id, "c-2"), headers=OPS)
    ).json()
    r = await contact_api.post(
        f"/v1/letters/{first['letter_id']}/dispatch",
        json={"carrier": "express", "tracking_number": "SF100"},
        headers=OPS,
    )
    assert r.status_code == 200
    r = await contact_api.post(
        f"/v1/letters/{second['letter_id']}/dispatch",
        json={"carrier": "express", "tracking_number": "SF100"},
        headers=OPS,
    )
    assert r.status_code == 409 and r.json()["field"] == "tracking_number"
    # the case settled between generation and dispatch: the letter is not sent
    await apply(CaseSettled(case_id="c-2", debtor_id="d-2", settled_at=NOW))
    r = await contact_api.post(
        f"/v1/letters/{second['letter_id']}/dispatch",
        json={"carrier": "express", "tracking_number": "SF200"},
        headers=OPS,
    )
    assert r.status_code == 409 and r.json()["rule"] == "CASE-LIFECYCLE"
    r = await contact_api.get(f"/v1/letters/{second['letter_id']}", headers=AUDITOR)
    assert r.json()["status"] == "generated" and r.json()["tracking_number"] is None

    # the first letter comes back: the reason is required, the return slip kept
    path = f"/v1/letters/{first['letter_id']}/delivery"
    await contact_api.post(path, json={"status": "in_transit"}, headers=OPS)
    r = await contact_api.post(path, json={"status": "returned"}, headers=OPS)
    assert r.status_code == 422 and r.json()["field"] == "return_reason"
    r = await contact_api.post(
        path,
        json={"status": "returned", "return_reason": "unknown_address", "proof_ref": "slip-9"},
        headers=OPS,
    )
    assert r.json()["status"] == "returned" and r.json()["return_reason"] == "unknown_address"
    (returned,) = [
        json.loads(e["payload"])["data"]
        for e in await _outbox(contact_api)
        if e["event_type"] == "contact.letter_returned.v1"
    ]
    assert returned["reason"] == "unknown_address" and returned["proof_ref"] == "slip-9"


async def test_a_retried_generation_makes_one_letter_and_lists_page_by_cursor(
    contact_api: httpx.AsyncClient, apply: Apply, clock: FrozenClock
) -> None:
    template_id = await _approved(contact_api)
    await apply(imported("c-1", "d-1"))
    await apply(_firm("c-1", "d-1", ["letter"]))
    key = {**OPS, "Idempotency-Key": "letter-c-1-0001"}
    first = await contact_api.post("/v1/letters", json=_letter(template_id), headers=key)
    again = await contact_api.post("/v1/letters", json=_letter(template_id), headers=key)
    assert first.status_code == again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["letter_id"] == first.json()["letter_id"]
    clock.advance(timedelta(minutes=1))
    await contact_api.post("/v1/letters", json=_letter(template_id), headers=OPS)
    clock.advance(timedelta(minutes=1))
    await contact_api.post("/v1/letters", json=_letter(template_id), headers=OPS)
    seen: list[str] = []
    cursor = None
    while True:
        url = "/v1/letters?case_id=c-1&limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = (await contact_api.get(url, headers=AUDITOR)).json()
        seen += [item["letter_id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 3
    assert seen[0] == first.json()["letter_id"]
