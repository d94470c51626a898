"""Exports of the bank's cases over real PostgreSQL (SEC-EXPORT, SEC-AUDIT): only ops and
the bank's auditor, only with a purpose, personal data masked, and every export in the
hash-chained audit trail, whose verifier names a record edited behind the service's back."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from collect_common.clock import FrozenClock
from collect_common.db import create_engine
from collect_common.security.auth import Role
from collect_common.settings import DEV_API_KEYS

pytestmark = pytest.mark.postgres

OPS = {"X-API-Key": DEV_API_KEYS["ops-dashboard"][1]}
AUDITOR = {"X-API-Key": DEV_API_KEYS["bank-auditor"][1]}
WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
NOW = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)  # the clock fixture's start (conftest.py)
PURPOSE = "Quarterly inspection of the portfolio for the bank's audit committee"


def national_id(serial: int) -> str:
    body = f"11010519800101{serial:03d}"
    return body + "10X98765432"[sum(int(d) * w for d, w in zip(body, WEIGHTS, strict=True)) % 11]


def account(n: int) -> dict[str, Any]:
    return {
        "contract_no": f"LN-EXP-{n:03d}",
        "name": "张三丰",
        "national_id": national_id(n),
        "phones": [f"1381234{n:04d}"],
        "address": "上海市浦东新区世纪大道100号",
        "principal": "12000.00",
        "interest": "350.25",
        "fees": "50.00",
        "overdue_since": "2026-10-10",
        "history": "good",
    }


def export_body(purpose: str | None = PURPOSE, **scope: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "scope": {
            "bank_id": "bank-core",
            "changed_from": (NOW - timedelta(days=1)).isoformat(),
            "changed_to": (NOW + timedelta(days=1)).isoformat(),
            **scope,
        },
        "format": "ndjson",
    }
    if purpose is not None:
        body["purpose"] = purpose
    return body


async def _import(api: httpx.AsyncClient, rows: list[dict[str, Any]]) -> list[str]:
    r = await api.post("/v1/accounts/import", json={"accounts": rows})
    assert r.status_code == 200, r.text
    return [row["case_id"] for row in r.json()["rows"]]


async def _trail(api: httpx.AsyncClient) -> list[dict[str, Any]]:
    r = await api.get("/v1/audit", headers=AUDITOR, params={"limit": 500})
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


async def test_ops_exports_the_banks_changed_cases_masked_and_the_export_is_audited(
    case_api: httpx.AsyncClient,
) -> None:
    rows = [account(n) for n in range(3)]
    ids = await _import(case_api, rows)

    r = await case_api.post("/v1/exports", json=export_body(), headers=OPS)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/x-ndjson")
    assert r.headers["x-export-rows"] == "3"
    assert "attachment" in r.headers["content-disposition"]
    lines = [json.loads(line) for line in r.text.splitlines()]
    assert sorted(line["case_id"] for line in lines) == sorted(ids)
    by_contract = {line["contract_no"]: line for line in lines}
    for row in rows:
        got = by_contract[row["contract_no"]]
        assert got["national_id"] == row["national_id"][:3] + "*" * 11 + row["national_id"][-4:]
        assert got["phones"] == row["phones"][0][:3] + "****" + row["phones"][0][-4:]
        assert got["debtor_name"] == "张**" and got["address"].startswith("上海市浦东新")
        assert got["balance"] == "12400.25" and got["debtor_id"]
    for row in rows:  # nothing personal in clear anywhere in the export
        assert row["national_id"] not in r.text and row["phones"][0] not in r.text
    assert "世纪大道" not in r.text and "张三丰" not in r.text

    (record,) = await _trail(case_api)
    assert str(record["seq"]) == r.headers["x-audit-seq"]
    assert (record["actor"], record["role"], record["action"]) == (
        "ops-dashboard",
        "ops",
        "export.cases",
    )
    assert record["at"].startswith(NOW.isoformat()[:19])
    assert record["purpose"] == PURPOSE
    assert record["detail"]["rows"] == 3 and record["detail"]["format"] == "ndjson"
    assert record["detail"]["scope"]["bank_id"] == "bank-core"
    assert record["detail"]["masked"] is True


async def test_the_auditor_exports_csv_and_only_cases_changed_in_the_period(
    case_api: httpx.AsyncClient, clock: FrozenClock
) -> None:
    early = await _import(case_api, [account(1), account(2)])
    clock.advance(timedelta(days=10))
    late = await _import(case_api, [account(3)])

    body = export_body(
        changed_from=(NOW + timedelta(days=5)).isoformat(),
        changed_to=(NOW + timedelta(days=11)).isoformat(),
    )
    body["format"] = "csv"
    r = await case_api.post("/v1/exports", json=body, headers=AUDITOR)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(r.text)))
    assert [row["case_id"] for row in table] == late
    assert table[0]["national_id"].count("*") == 11
    assert national_id(3) not in r.text

    other_bank = export_body(bank_id="bank-other")
    r = await case_api.post("/v1/exports", json=other_bank, headers=AUDITOR)
    assert r.status_code == 200 and r.text == "" and r.headers["x-export-rows"] == "0"

    trail = await _trail(case_api)
    assert [(t["role"], t["detail"]["rows"], t["detail"]["format"]) for t in trail] == [
        ("auditor", 1, "csv"),
        ("auditor", 0, "ndjson"),
    ]
    assert trail[1]["detail"]["scope"]["bank_id"] == "bank-other"
    assert early and set(early).isdisjoint(row["case_id"] for row in table)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (export_body(purpose=None), "purpose"),
        (export_body(purpose="   "), "purpose"),
        (export_body(purpose="because"), "purpose"),
        (
            export_body(
                changed_from=(NOW + timedelta(days=1)).isoformat(),
                changed_to=(NOW - timedelta(days=1)).isoformat(),
            ),
            "scope.changed_to",
        ),
        (export_body(changed_to=(NOW + timedelta(days=400)).isoformat()), "scope.changed_to"),
        (export_body(changed_from="2026-11-27T00:00:00"), "scope.changed_from"),
    ],
)
async def test_an_export_without_a_purpose_or_with_a_bad_period_is_refused_and_not_run(
    case_api: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    await _import(case_api, [account(1)])
    r = await case_api.post("/v1/exports", json=body, headers=OPS)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    problem = r.json()
    assert (problem["rule"], problem["field"]) == ("SEC-EXPORT", field)
    assert await _trail(case_api) == []


async def test_the_bank_and_agents_may_not_export_nor_read_the_trail(
    case_api: httpx.AsyncClient,
) -> None:
    await _import(case_api, [account(1)])
    tokens = case_api.app.state.authenticator.tokens  # type: ignore[attr-defined]
    agent = {"Authorization": f"Bearer {tokens.issue('agent-7', [Role.AGENT])}"}
    for headers in ({}, agent):  # the client's default headers are the bank's
        r = await case_api.post("/v1/exports", json=export_body(), headers=headers)
        assert r.status_code == 403, r.text
        assert r.json()["rule"] == "SEC-ACCESS"
        r = await case_api.get("/v1/audit", headers=headers)
        assert r.status_code == 403 and r.json()["rule"] == "SEC-ACCESS"
        r = await case_api.get("/v1/audit/verify", headers=headers)
        assert r.status_code == 403
    assert await _trail(case_api) == []


async def test_the_trail_pages_and_its_verifier_names_a_record_edited_with_sql(
    case_api: httpx.AsyncClient, pg_url: str, clock: FrozenClock
) -> None:
    await _import(case_api, [account(1)])
    for n in range(4):
        clock.advance(timedelta(minutes=5))
        r = await case_api.post(
            "/v1/exports", json=export_body(purpose=f"{PURPOSE} #{n}"), headers=OPS
        )
        assert r.status_code == 200, r.text

    first = await case_api.get("/v1/audit", headers=OPS, params={"limit": 3})
    page = first.json()
    second = await case_api.get(
        "/v1/audit", headers=OPS, params={"limit": 3, "cursor": page["next_cursor"]}
    )
    seqs = [i["seq"] for i in page["items"]] + [i["seq"] for i in second.json()["items"]]
    assert seqs == [1, 2, 3, 4] and second.json()["next_cursor"] is None

    r = await case_api.get("/v1/audit/verify", headers=AUDITOR)
    assert r.json() == {
        "ok": True,
        "records": 4,
        "head_seq": 4,
        "head_hash": second.json()["items"][-1]["hash"],
        "first_bad_seq": None,
        "reason": None,
    }
    engine = create_engine(pg_url)
    try:
        async with engine.begin() as conn:  # someone with database access rewrites a purpose
            await conn.exec_driver_sql(
                "UPDATE audit_trail SET purpose = 'routine check' WHERE seq = 2"
            )
    finally:
        await engine.dispose()
    r = await case_api.get("/v1/audit/verify", headers=AUDITOR)
    report = r.json()
    assert report["ok"] is False and report["first_bad_seq"] == 2 and report["head_seq"] == 1
    assert report["head_hash"] == page["items"][0]["hash"]
