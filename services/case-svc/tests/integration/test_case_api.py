"""The bank's API of case-svc over real PostgreSQL: intake, payments, recall, feed."""

from __future__ import annotations

import json

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from collect_common.settings import DEV_API_KEYS

pytestmark = pytest.mark.postgres

ZHANG = "11010519491231002X"
OPS = {"X-API-Key": DEV_API_KEYS["ops-dashboard"][1]}


def account(contract: str, **over: object) -> dict[str, object]:
    row: dict[str, object] = {
        "contract_no": contract,
        "name": "张三",
        "national_id": ZHANG,
        "phones": ["13812345678"],
        "address": "北京市朝阳区建国路88号",
        "principal": "12000.00",
        "interest": "350.25",
        "fees": "50.00",
        "overdue_since": "2026-10-10",
        "history": "good",
    }
    row.update(over)
    return row


async def _import(api: httpx.AsyncClient, *rows: dict[str, object], key: str | None = None):
    headers = {"Idempotency-Key": key} if key else {}
    return await api.post("/v1/accounts/import", json={"accounts": list(rows)}, headers=headers)


async def test_rejected_rows_never_block_valid_ones_and_name_field_and_reason(case_api) -> None:
    r = await _import(
        case_api,
        account("LN-1"),
        account("LN-2", national_id="110105194912310021"),
        account("LN-3", phones=["12345"], principal="-1"),
        account("LN-4"),
    )
    assert r.status_code == 200
    body = r.json()
    assert (body["created"], body["rejected"]) == (2, 2)
    outcomes = [row["outcome"] for row in body["rows"]]
    assert outcomes == ["created", "rejected", "rejected", "created"]
    bad_id = body["rows"][1]["errors"]
    assert bad_id[0]["field"] == "national_id" and bad_id[0]["rule"] == "CASE-INTAKE"
    assert {e["field"] for e in body["rows"][2]["errors"]} == {"phones[0]", "principal"}


async def test_resending_a_contract_updates_its_case_never_duplicates(case_api) -> None:
    first = (await _import(case_api, account("LN-9"))).json()["rows"][0]
    again = (await _import(case_api, account("LN-9", principal="13000.00"))).json()["rows"][0]
    assert again["outcome"] == "updated" and again["case_id"] == first["case_id"]
    assert again["changed"] == ["principal"]
    same = (await _import(case_api, account("LN-9", principal="13000.00"))).json()["rows"][0]
    assert same["outcome"] == "unchanged"
    app = case_api.app  # type: ignore[attr-defined]
    async with app.state.runtime.sessions() as s:
        assert await s.scalar(text("SELECT count(*) FROM cases")) == 1


async def test_a_retried_import_with_the_same_key_changes_nothing_and_replays(case_api) -> None:
    first = await _import(case_api, account("LN-5"), key="batch-2026-11-28-001")
    retry = await _import(case_api, account("LN-5"), key="batch-2026-11-28-001")
    assert retry.status_code == 200 and retry.content == first.content
    assert retry.headers["idempotent-replayed"] == "true"
    reused = await _import(case_api, account("LN-6"), key="batch-2026-11-28-001")
    assert reused.status_code == 422 and reused.json()["field"] == "Idempotency-Key"


async def test_too_many_rows_is_refused_with_the_rule(case_api) -> None:
    r = await case_api.post(
        "/v1/accounts/import", json={"accounts": [account(f"LN-{i}") for i in range(10_001)]}
    )
    assert r.status_code == 413 and r.json()["rule"] == "CASE-INTAKE"


async def test_payments_settle_the_case_and_retries_count_once(case_api) -> None:
    case_id = (await _import(case_api, account("LN-P"))).json()["rows"][0]["case_id"]
    pay = {"payment_id": "PAY-1", "amount": "400.25", "paid_at": "2026-11-27T08:00:00Z"}
    first = await case_api.post(f"/v1/cases/{case_id}/payments", json=pay)
    assert first.status_code == 201 and first.json()["balance"] == "12000.00"
    retry = await case_api.post(f"/v1/cases/{case_id}/payments", json=pay)
    assert retry.status_code == 200 and retry.json()["paid_total"] == "400.25"
    conflict = await case_api.post(f"/v1/cases/{case_id}/payments", json={**pay, "amount": "1.00"})
    assert conflict.status_code == 409 and conflict.json()["field"] == "payment_id"
    full = await case_api.post(
        f"/v1/cases/{case_id}/payments", json={**pay, "payment_id": "PAY-2", "amount": "12000.00"}
    )
    assert full.json()["status"] == "settled" and full.json()["balance"] == "0.00"
    late = await case_api.post(
        f"/v1/cases/{case_id}/payments", json={**pay, "payment_id": "PAY-3", "amount": "1.00"}
    )
    assert late.status_code == 409
    assert late.json()["current_state"] == "settled" and late.json()["rule"] == "CASE-LIFECYCLE"


async def test_recall_stops_the_case_and_later_actions_are_409(case_api) -> None:
    case_id = (await _import(case_api, account("LN-R"))).json()["rows"][0]["case_id"]
    r = await case_api.post(f"/v1/cases/{case_id}/recall", json={"reason": "bank-withdrawn"})
    assert r.status_code == 200 and r.json()["status"] == "recalled"
    again = await case_api.post(f"/v1/cases/{case_id}/recall", json={})
    assert again.status_code == 409 and again.json()["current_state"] == "recalled"
    resent = (await _import(case_api, account("LN-R", principal="1.00"))).json()["rows"][0]
    assert resent["outcome"] == "rejected" and "recalled" in resent["errors"][0]["reason"]


async def test_case_status_masks_personal_data_and_shows_why_its_track(case_api) -> None:
    case_id = (await _import(case_api, account("LN-S"))).json()["rows"][0]["case_id"]
    body = (await case_api.get(f"/v1/cases/{case_id}")).json()
    assert body["bucket"] == "M2"  # 49 days past due on 2026-11-28
    assert body["strategy"]["track"] and "CASE-STRATEGY" in body["strategy"]["reason"]
    debtor = body["debtor"]
    assert ZHANG not in json.dumps(body, ensure_ascii=False)
    assert debtor["national_id"].endswith("002X") and "*" in debtor["national_id"]
    assert debtor["phones"] == ["138****5678"]
    ops = await case_api.get(f"/v1/cases/{case_id}", headers=OPS)
    assert ops.status_code == 200


async def test_personal_data_is_ciphertext_in_the_database_and_absent_from_events(
    case_api,
) -> None:
    await _import(case_api, account("LN-E"))
    app = case_api.app  # type: ignore[attr-defined]
    async with app.state.runtime.sessions() as s:
        row = (await s.execute(text("SELECT name, national_id, phones, address FROM cases"))).one()
        payloads = (await s.scalars(text("SELECT payload FROM outbox"))).all()
        changes = (await s.scalars(text("SELECT data FROM case_changes"))).all()
    stored = " ".join(row)
    for secret in (ZHANG, "13812345678", "张三", "建国路"):
        assert secret not in stored
        assert all(secret not in bytes(p).decode() for p in payloads)
        assert all(secret not in c for c in changes)
    kinds = sorted(json.loads(bytes(p))["type"] for p in payloads)
    assert kinds == ["case.imported.v1", "case.strategy_changed.v1"]


async def test_the_bank_pulls_its_changes_with_a_cursor_and_sees_no_other_bank(
    case_api,
) -> None:
    for i in range(3):
        await _import(case_api, account(f"LN-F{i}"))
    case_id = (await _import(case_api, account("LN-F0", fees="60.00"))).json()["rows"][0]["case_id"]
    seen, cursor = [], None
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (await case_api.get("/v1/changes", params=params)).json()
        seen += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [c["seq"] for c in seen] == sorted({c["seq"] for c in seen})
    assert [c["change"] for c in seen].count("case.imported.v1") == 3
    assert seen[-1]["change"] == "case.updated.v1" and seen[-1]["case_id"] == case_id
    assert seen[-1]["data"]["changed_fields"] == ["fees"]
    auditor = {"X-API-Key": DEV_API_KEYS["bank-auditor"][1]}
    assert (await case_api.get("/v1/changes", headers=auditor)).status_code == 403


def _imported_total(text_: str) -> dict[str, float]:
    return {
        s.labels["result"]: s.value
        for family in text_string_to_metric_families(text_)
        for s in family.samples
        if s.name == "case_accounts_imported_total"
    }


async def test_intake_volume_is_counted_by_outcome_once_per_committed_row(case_api) -> None:
    await _import(case_api, account("LN-M1"), account("LN-M2", national_id="123"), key="m-1")
    await _import(case_api, account("LN-M1"), account("LN-M2", national_id="123"), key="m-1")
    await _import(case_api, account("LN-M1", principal="13000.00"), account("LN-M3"))
    await _import(case_api, account("LN-M3"))
    ndjson = json.dumps(account("LN-M4")) + "\n{not json\n"
    r = await case_api.post(
        "/v1/accounts/import-ndjson",
        content=ndjson.encode(),
        headers={"Content-Type": "application/x-ndjson"},
    )
    assert r.status_code == 200, r.text
    counts = _imported_total((await case_api.get("/metrics")).text)
    # the replayed retry counts nothing; the broken NDJSON line counts as rejected
    assert counts == {"created": 3, "updated": 1, "unchanged": 1, "rejected": 2}
