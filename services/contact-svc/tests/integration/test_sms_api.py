"""SMS over PostgreSQL: templates approved and filed by the bank (SMS-TEMPLATE), sending
through the file sink, the weekly cap per debtor (SMS-WEEKLY-CAP) at the week boundary."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from collect_common.clock import FrozenClock
from collect_common.security.auth import Role, TokenService
from collect_common.settings import DEV_API_KEYS, DEV_TOKEN_SECRET
from contact_svc.adapters.tables import contact_attempts, contact_denials, sms_messages
from contact_svc.domain.sms import text_hash
from contact_svc.main import create_app
from contact_svc.settings import Settings

from .conftest import Apply, imported

OPS = {"X-API-Key": DEV_API_KEYS["ops-dashboard"][1]}
BANK = {"X-API-Key": DEV_API_KEYS["bank-core"][1]}
BODY = "欠款{overdue_amount}元，请于{deadline}前通过{payment_method}还款，咨询{agency_contact}。"
VALUES = {
    "overdue_amount": "5,000.00",
    "deadline": "2026-12-05",
    "payment_method": "银行转账",
    "agency_contact": "400-800-1234",
}


@pytest.fixture
def sink(tmp_path: Path) -> Path:
    return tmp_path / "sms.jsonl"


@pytest.fixture
async def contact_api(
    pg_url: str, clock: FrozenClock, sink: Path
) -> AsyncIterator[httpx.AsyncClient]:
    """The service with the file sink at a test path (overrides conftest's)."""
    from collect_common.testing.apps import offline_settings, service_client

    settings = offline_settings(Settings, pg_url, sms_file_path=sink)
    async with service_client(create_app, settings, clock) as client:
        yield client


def _agent(clock: FrozenClock) -> dict[str, str]:
    token = TokenService(DEV_TOKEN_SECRET, "collect-platform", clock).issue("a-1", [Role.AGENT])
    return {"Authorization": f"Bearer {token}"}


async def _rows(api: httpx.AsyncClient, query):  # type: ignore[no-untyped-def]
    runtime = api.app.state.runtime  # type: ignore[attr-defined]
    async with runtime.sessions() as session:
        return (await session.execute(query)).mappings().all()


async def _approved_template(api: httpx.AsyncClient, bank_id: str = "bank-a") -> str:
    r = await api.post(
        "/v1/sms-templates",
        json={"name": "reminder", "bank_id": bank_id, "body": BODY},
        headers=OPS,
    )
    assert r.status_code == 201, r.text
    template_id: str = r.json()["template_id"]
    r = await api.post(
        f"/v1/sms-templates/{template_id}/versions/1/approve",
        json={"filing_number": "BA-2026-0042"},
        headers=BANK,
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "approved" and r.json()["filing_number"] == "BA-2026-0042"
    return template_id


def _send(template_id: str, version: int = 1, case_id: str = "c-1") -> dict[str, object]:
    return {
        "case_id": case_id,
        "template_id": template_id,
        "version": version,
        "agent_id": "a-1",
        "values": VALUES,
    }


async def test_a_template_missing_required_content_is_refused_at_creation(
    contact_api: httpx.AsyncClient,
) -> None:
    body = BODY.replace("{agency_contact}", "本公司")
    r = await contact_api.post(
        "/v1/sms-templates", json={"name": "x", "bank_id": "bank-a", "body": body}, headers=OPS
    )
    assert r.status_code == 422, r.text
    problem = r.json()
    assert problem["rule"] == "SMS-TEMPLATE" and problem["field"] == "body"
    assert "agency_contact" in problem["detail"]
    r = await contact_api.post(
        "/v1/sms-templates",
        json={"name": "x", "bank_id": "bank-a", "body": BODY + "{id_number}"},
        headers=OPS,
    )
    assert r.status_code == 422 and r.json()["rule"] == "SMS-TEMPLATE"
    assert "id_number" in r.json()["detail"]
    # only ops create templates; only the bank approves them
    r = await contact_api.post(
        "/v1/sms-templates", json={"name": "x", "bank_id": "bank-a", "body": BODY}, headers=BANK
    )
    assert r.status_code == 403


async def test_an_unapproved_template_is_refused_and_nothing_is_sent(
    contact_api: httpx.AsyncClient, apply: Apply, clock: FrozenClock, sink: Path
) -> None:
    await apply(imported("c-1", "d-1"))
    r = await contact_api.post(
        "/v1/sms-templates", json={"name": "r", "bank_id": "bank-a", "body": BODY}, headers=OPS
    )
    template_id = r.json()["template_id"]
    assert r.json()["status"] == "pending" and r.json()["version"] == 1
    r = await contact_api.post("/v1/sms", json=_send(template_id), headers=_agent(clock))
    assert r.status_code == 409, r.text
    assert r.json()["rule"] == "SMS-TEMPLATE"
    # the ops cannot approve; the bank needs a filing number
    approve = f"/v1/sms-templates/{template_id}/versions/1/approve"
    assert (
        await contact_api.post(approve, json={"filing_number": "F1"}, headers=OPS)
    ).status_code == 403
    assert (await contact_api.post(approve, json={}, headers=BANK)).status_code == 422
    # a new body is a new version, pending again even after version 1 is approved
    assert (
        await contact_api.post(approve, json={"filing_number": "F1"}, headers=BANK)
    ).status_code == 200
    r = await contact_api.post(
        f"/v1/sms-templates/{template_id}/versions",
        json={"body": "新：" + BODY},
        headers=OPS,
    )
    assert r.status_code == 201 and r.json()["version"] == 2 and r.json()["status"] == "pending"
    r = await contact_api.post("/v1/sms", json=_send(template_id, 2), headers=_agent(clock))
    assert r.status_code == 409 and r.json()["rule"] == "SMS-TEMPLATE"
    # another bank's template is refused for this case
    other = await _approved_template(contact_api, bank_id="bank-b")
    r = await contact_api.post("/v1/sms", json=_send(other), headers=OPS)
    assert r.status_code == 409 and r.json()["rule"] == "SMS-TEMPLATE"
    assert not sink.exists()
    assert await _rows(contact_api, select(sms_messages)) == []
    assert await _rows(contact_api, select(contact_attempts)) == []


async def test_a_filed_version_keeps_its_number_and_refusals_name_the_field(
    contact_api: httpx.AsyncClient, apply: Apply, clock: FrozenClock
) -> None:
    await apply(imported("c-1", "d-1"))
    template_id = await _approved_template(contact_api)
    approve = f"/v1/sms-templates/{template_id}/versions/1/approve"
    # approving again under the same number changes nothing; under another is refused
    r = await contact_api.post(approve, json={"filing_number": "BA-2026-0042"}, headers=BANK)
    assert r.status_code == 200 and r.json()["filing_number"] == "BA-2026-0042"
    r = await contact_api.post(approve, json={"filing_number": "BA-2026-0099"}, headers=BANK)
    assert r.status_code == 409, r.text
    problem = r.json()
    assert problem["rule"] == "SMS-TEMPLATE" and problem["field"] == "filing_number"
    assert problem["detail"] == "version 1 is already filed as BA-2026-0042"
    r = await contact_api.get(f"/v1/sms-templates/{template_id}/versions/1", headers=_agent(clock))
    assert r.status_code == 200 and r.json()["filing_number"] == "BA-2026-0042"
    r = await contact_api.get(f"/v1/sms-templates/{template_id}/versions/9", headers=OPS)
    assert r.status_code == 404 and r.json()["field"] == "template_id"
    assert r.json()["detail"] == f"no template {template_id} version 9"
    # sending: an unapproved version and another bank's are refused naming the template
    r = await contact_api.post(
        f"/v1/sms-templates/{template_id}/versions", json={"body": BODY}, headers=OPS
    )
    assert r.status_code == 201 and r.json()["filing_number"] is None
    r = await contact_api.post("/v1/sms", json=_send(template_id, 2), headers=_agent(clock))
    assert r.status_code == 409 and r.json()["field"] == "template_id"
    assert r.json()["detail"] == (
        f"template {template_id} version 2 is not approved and filed by the bank"
    )
    other = await _approved_template(contact_api, bank_id="bank-b")
    r = await contact_api.post("/v1/sms", json=_send(other), headers=OPS)
    assert r.status_code == 409 and r.json()["field"] == "template_id"
    assert r.json()["detail"] == (
        f"template {other} is filed for bank bank-b, case c-1 belongs to bank bank-a"
    )


async def test_an_approved_template_is_rendered_sent_and_recorded(
    contact_api: httpx.AsyncClient, apply: Apply, clock: FrozenClock, sink: Path
) -> None:
    await apply(imported("c-1", "d-1"))
    template_id = await _approved_template(contact_api)
    r = await contact_api.post("/v1/sms", json=_send(template_id), headers=_agent(clock))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["allowed"] is True and body["denials"] == [] and body["debtor_id"] == "d-1"
    lines = [json.loads(line) for line in sink.read_text().splitlines()]
    assert len(lines) == 1
    text = lines[0]["text"]
    assert text == BODY.format(**VALUES)
    assert lines[0]["recipient"] == "d-1" and lines[0]["provider_id"] == body["provider_id"]
    [message] = await _rows(contact_api, select(sms_messages))
    assert message["message_id"] == body["message_id"] == body["decision_id"]
    assert message["template_id"] == template_id and message["template_version"] == 1
    assert message["text_sha256"] == text_hash(text) and message["status"] == "sent"
    assert message["provider"] == "file"
    [attempt] = await _rows(contact_api, select(contact_attempts))
    assert attempt["id"] == body["message_id"] and attempt["channel"] == "sms"
    outbox = await _rows(
        contact_api,
        select(contact_api.app.state.runtime.outbox),  # type: ignore[attr-defined]
    )
    [sent] = [row for row in outbox if row["event_type"] == "contact.sms_sent.v1"]
    payload = bytes(sent["payload"]).decode()
    assert text_hash(text) in payload and VALUES["overdue_amount"] not in payload  # no text
    # a missing value is refused before anything is decided or sent
    bad = _send(template_id)
    bad["values"] = {k: v for k, v in VALUES.items() if k != "deadline"}
    r = await contact_api.post("/v1/sms", json=bad, headers=_agent(clock))
    assert r.status_code == 422 and r.json()["rule"] == "SMS-TEMPLATE"
    assert r.json()["field"] == "values.deadline"
    assert len(sink.read_text().splitlines()) == 1


async def test_the_fourth_sms_of_the_local_week_is_denied_until_next_monday(
    contact_api: httpx.AsyncClient, apply: Apply, clock: FrozenClock, sink: Path
) -> None:
    await apply(imported("c-1", "d-1"))  # Asia/Shanghai; NOW is Tuesday 10:00 local
    template_id = await _approved_template(contact_api)
    for _ in range(3):
        r = await contact_api.post("/v1/sms", json=_send(template_id), headers=OPS)
        assert r.json()["allowed"] is True, r.text
        clock.advance(timedelta(days=1))
    # Sunday 23:59 local (15:59 UTC) is still the same ISO week
    clock.set(datetime(2026, 11, 29, 15, 59, tzinfo=UTC))
    r = await contact_api.post("/v1/sms", json=_send(template_id), headers=_agent(clock))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["allowed"] is False and body["message_id"] is None
    assert [d["rule"] for d in body["denials"]] == ["SMS-WEEKLY-CAP"]
    assert body["next_allowed_at"] == "2026-11-29T16:00:00Z"  # Monday 00:00 Shanghai
    assert len(sink.read_text().splitlines()) == 3
    [denial] = await _rows(contact_api, select(contact_denials))
    assert denial["channel"] == "sms" and denial["rules"] == "SMS-WEEKLY-CAP"
    outbox = await _rows(
        contact_api,
        select(contact_api.app.state.runtime.outbox),  # type: ignore[attr-defined]
    )
    kinds = [row["event_type"] for row in outbox]
    assert kinds.count("contact.attempted.v1") == 3 and kinds.count("contact.denied.v1") == 1
    assert kinds.count("contact.sms_sent.v1") == 3

    clock.set(datetime(2026, 11, 29, 16, 0, tzinfo=UTC))  # the new local week
    r = await contact_api.post("/v1/sms", json=_send(template_id), headers=_agent(clock))
    assert r.json()["allowed"] is True
    assert len(sink.read_text().splitlines()) == 4
    assert len(await _rows(contact_api, select(sms_messages))) == 4
