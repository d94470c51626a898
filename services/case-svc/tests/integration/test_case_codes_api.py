"""The bank's classification codes of an account (region, customer group, product) over
real PostgreSQL: stored on the case, shown to ops, carried by case.imported.v1 for the
complaint statistics (COMP-STATS), updated by a re-sent account, refused row by row
(CASE-INTAKE) in both intake forms and in batches large enough to be COPied."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from collect_common.db import COPY_MIN_ROWS
from collect_common.events import EventEnvelope
from collect_common.events.types import CaseImported
from collect_common.settings import DEV_API_KEYS

pytestmark = pytest.mark.postgres

OPS = {"X-API-Key": DEV_API_KEYS["ops-dashboard"][1]}
NDJSON = {"Content-Type": "application/x-ndjson"}
WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
CODES = {"region": "310115", "customer_group": "retail-standard", "product": "credit_card"}


def national_id(serial: int) -> str:
    """A valid GB 11643 number, distinct per serial (below 1000)."""
    body = f"11010519800101{serial:03d}"
    return body + "10X98765432"[sum(int(d) * w for d, w in zip(body, WEIGHTS, strict=True)) % 11]


def account(contract: str, serial: int = 0, **over: object) -> dict[str, object]:
    row: dict[str, object] = {
        "contract_no": contract,
        "name": "张三",
        "national_id": national_id(serial),
        "phones": ["13812345678"],
        "address": "上海市浦东新区世纪大道100号",
        "principal": "12000.00",
        "interest": "350.25",
        "fees": "50.00",
        "overdue_since": "2026-10-10",
        "history": "good",
        **CODES,
    }
    row.update(over)
    return {k: v for k, v in row.items() if v is not ...}


async def _import(api: httpx.AsyncClient, rows: list[dict[str, object]]) -> dict[str, Any]:
    r = await api.post("/v1/accounts/import", json={"accounts": rows})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def _events(api: httpx.AsyncClient, kind: str) -> dict[str, dict[str, Any]]:
    """The outbox's events of ``kind``, by case id (the envelope's subject)."""
    async with api.app.state.runtime.sessions() as s:  # type: ignore[attr-defined]
        payloads = (await s.scalars(text("SELECT payload FROM outbox ORDER BY id"))).all()
    envelopes = [EventEnvelope.from_bytes(bytes(p)) for p in payloads]
    return {str(e.subject): e.data for e in envelopes if e.type == kind}


async def _stored(api: httpx.AsyncClient, case_id: str) -> tuple[Any, ...]:
    async with api.app.state.runtime.sessions() as s:  # type: ignore[attr-defined]
        row = (
            await s.execute(
                text("SELECT region, customer_group, product FROM cases WHERE id = :id"),
                {"id": case_id},
            )
        ).one()
    return tuple(row)


async def test_codes_are_stored_shown_to_ops_and_carried_by_the_import_event(case_api) -> None:
    body = await _import(
        case_api,
        [account("LN-K1"), account("LN-K2", 1, region=..., customer_group=..., product=...)],
    )
    assert [r["outcome"] for r in body["rows"]] == ["created", "created"]
    with_codes, without = (r["case_id"] for r in body["rows"])

    assert await _stored(case_api, with_codes) == ("310115", "retail-standard", "credit_card")
    assert await _stored(case_api, without) == (None, None, None)

    shown = (await case_api.get(f"/v1/cases/{with_codes}", headers=OPS)).json()
    assert {k: shown[k] for k in CODES} == CODES
    bare = (await case_api.get(f"/v1/cases/{without}", headers=OPS)).json()
    assert {k: bare[k] for k in CODES} == dict.fromkeys(CODES)

    imported = await _events(case_api, "case.imported.v1")
    event = CaseImported.model_validate(imported[with_codes])  # the catalogued contract
    assert (event.region, event.customer_group, event.case_type) == (
        "310115",
        "retail-standard",
        "credit_card",
    )
    assert "product" not in imported[with_codes]  # the event calls it case_type
    assert "上海" not in json.dumps(imported, ensure_ascii=False)  # a code, never the address
    plain = CaseImported.model_validate(imported[without])
    assert (plain.region, plain.customer_group, plain.case_type) == (None, None, None)


async def test_a_resent_account_with_another_code_is_an_update_naming_it(case_api) -> None:
    created = (await _import(case_api, [account("LN-U1")]))["rows"][0]
    resent = (
        await _import(case_api, [account("LN-U1", customer_group="vip", product="consumer_loan")])
    )["rows"][0]
    assert resent["outcome"] == "updated" and resent["case_id"] == created["case_id"]
    assert resent["changed"] == ["customer_group", "product"]
    case_id = created["case_id"]
    assert await _stored(case_api, case_id) == ("310115", "vip", "consumer_loan")
    shown = (await case_api.get(f"/v1/cases/{case_id}", headers=OPS)).json()
    assert (shown["customer_group"], shown["product"]) == ("vip", "consumer_loan")

    updated = await _events(case_api, "case.updated.v1")
    assert updated[case_id]["changed_fields"] == ["customer_group", "product"]
    assert "vip" not in json.dumps(updated)  # names of the fields, never their values

    same = (
        await _import(case_api, [account("LN-U1", customer_group="vip", product="consumer_loan")])
    )["rows"][0]
    assert (same["outcome"], same["changed"]) == ("unchanged", [])


async def test_bad_codes_are_rejected_beside_accepted_rows(case_api) -> None:
    body = await _import(
        case_api,
        [
            account("LN-R1"),
            account("LN-R2", 1, region="上海市浦东新区"),
            account("LN-R3", 2, customer_group="retail standard", product="p" * 65),
            account("LN-R4", 3, region=310115),
            account("LN-R5", 4),
        ],
    )
    assert (body["created"], body["rejected"]) == (2, 3)
    rows = body["rows"]
    assert [r["outcome"] for r in rows] == [
        "created",
        "rejected",
        "rejected",
        "rejected",
        "created",
    ]
    assert rows[1]["errors"] == [
        {
            "field": "region",
            "rule": "CASE-INTAKE",
            "reason": "must be an administrative division code of 6 digits (GB/T 2260)",
        }
    ]
    assert {(e["field"], e["rule"], e["reason"]) for e in rows[2]["errors"]} == {
        ("customer_group", "CASE-INTAKE", "must be a code of letters, digits, - and _ only"),
        ("product", "CASE-INTAKE", "must have at most 64 characters"),
    }
    assert [e["field"] for e in rows[3]["errors"]] == ["region"]
    async with case_api.app.state.runtime.sessions() as s:  # type: ignore[attr-defined]
        stored = (await s.scalars(text("SELECT contract_no FROM cases"))).all()
    assert sorted(stored) == ["LN-R1", "LN-R5"]


async def test_a_batch_written_by_copy_keeps_every_cases_codes(case_api) -> None:
    n = COPY_MIN_ROWS * 2
    rows = [
        account(
            f"LN-C-{i:04d}",
            i,
            region=f"{310000 + i:06d}",
            customer_group=f"group-{i % 3}",
            product=... if i % 4 == 0 else f"product_{i % 5}",
        )
        for i in range(n)
    ]
    body = await _import(case_api, rows)
    assert body["created"] == n
    imported = await _events(case_api, "case.imported.v1")
    for i, result in enumerate(body["rows"]):
        product = None if i % 4 == 0 else f"product_{i % 5}"
        expected = (f"{310000 + i:06d}", f"group-{i % 3}", product)
        assert await _stored(case_api, result["case_id"]) == expected
        data = imported[result["case_id"]]
        assert (data["region"], data["customer_group"], data["case_type"]) == expected


async def test_the_ndjson_form_takes_the_codes_and_rejects_a_bad_one_by_line(case_api) -> None:
    lines = [
        account("LN-N1"),
        account("LN-N2", 1, product="credit card"),
        account("LN-N3", 2, region="440305", customer_group="smb"),
    ]
    body = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in lines).encode()
    r = await case_api.post("/v1/accounts/import-ndjson", content=body, headers=NDJSON)
    assert r.status_code == 200, r.text
    report = r.json()
    assert (report["created"], report["rejected"]) == (2, 1)
    (rejection,) = report["rejections"]
    assert (rejection["line"], rejection["contract_no"]) == (2, "LN-N2")
    assert [(e["field"], e["rule"]) for e in rejection["errors"]] == [("product", "CASE-INTAKE")]
    async with case_api.app.state.runtime.sessions() as s:  # type: ignore[attr-defined]
        stored = (
            await s.execute(
                text(
                    "SELECT region, customer_group, product FROM cases WHERE contract_no = 'LN-N3'"
                )
            )
        ).one()
    assert tuple(stored) == ("440305", "smb", "credit_card")
