"""Bulk intake in large batches (CASE-INTAKE) over real PostgreSQL.

A request of hundreds of accounts is written set-wise (COPY of cases, change feed and
outbox rows); what the bank and the other services see must be what a request of one
account gives: the per-row report, the stored (encrypted) case, its events, its timer.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import text

from case_svc.adapters.repository import CaseRepository
from case_svc.entrypoints.api.schemas import ImportResponse
from collect_common.db import COPY_MIN_ROWS
from collect_common.events import EventEnvelope

pytestmark = pytest.mark.postgres

ZHANG = "11010519491231002X"
NOW = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)  # the frozen clock of case_api (conftest)

BATCH = COPY_MIN_ROWS * 3  # well past the size from which rows are COPied


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


def national_id(serial: int) -> str:
    """A valid GB 11643 number, distinct per serial (below 1000)."""
    body = f"11010519800101{serial:03d}"
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    return body + "10X98765432"[sum(int(d) * w for d, w in zip(body, weights, strict=True)) % 11]


def batch(prefix: str, n: int = BATCH) -> list[dict[str, object]]:
    return [
        account(
            f"{prefix}-{i:04d}",
            name="李四" if i % 2 else "张三",
            national_id=national_id(i),
            phones=[f"139{i:08d}", "+86 138-1234-5678"],
            address=None if i % 5 == 0 else f"上海市浦东新区{i}号",
            principal=f"{1000 + i}.50",
            overdue_since=f"2026-{i % 9 + 1:02d}-{i % 28 + 1:02d}",
        )
        for i in range(n)
    ]


async def _import(api: httpx.AsyncClient, rows: list[dict[str, object]]) -> dict[str, object]:
    r = await api.post("/v1/accounts/import", json={"accounts": rows})
    assert r.status_code == 200, r.text
    body: dict[str, object] = r.json()
    # the answer is exactly the documented ImportResponse
    assert ImportResponse.model_validate(body).model_dump(mode="json") == body
    return body


async def _scalar(api: httpx.AsyncClient, sql: str) -> object:
    async with api.app.state.runtime.sessions() as s:  # type: ignore[attr-defined]
        return await s.scalar(text(sql))


async def test_a_large_batch_reports_every_row_and_stores_each_case_as_sent(case_api) -> None:
    rows = batch("LN-B")
    rows[3] = account("LN-B-bad", national_id="110105194912310021")  # wrong check character
    rows[7] = {**rows[7], "principal": "-5", "phones": ["12345"]}
    rows[11] = dict(rows[10])  # the same contract twice in one request: created, then unchanged
    body = await _import(case_api, rows)

    assert (body["created"], body["unchanged"], body["rejected"]) == (BATCH - 3, 1, 2)
    report = body["rows"]
    assert isinstance(report, list)
    assert [r["index"] for r in report] == list(range(BATCH))
    assert report[3]["outcome"] == "rejected" and report[3]["contract_no"] == "LN-B-bad"
    assert report[3]["errors"][0]["field"] == "national_id"
    assert {e["field"] for e in report[7]["errors"]} == {"phones[0]", "principal"}
    assert report[11]["outcome"] == "unchanged"
    assert report[11]["case_id"] == report[10]["case_id"]

    app = case_api.app  # type: ignore[attr-defined]
    runtime = app.state.runtime
    async with runtime.sessions() as s:
        repo = CaseRepository(s, runtime.cipher)
        for i in (0, 5, 42, BATCH - 1):
            case = await repo.get(report[i]["case_id"])
            assert case is not None and case.contract_no == rows[i]["contract_no"]
            assert (case.name, case.national_id, case.address) == (
                rows[i]["name"],
                rows[i]["national_id"],
                rows[i]["address"],
            )
            assert case.phones == (f"139{i:08d}", "13812345678")
            assert str(case.principal) == rows[i]["principal"]
            assert case.debtor_id == repo.debtor_id_for(str(rows[i]["national_id"]))
        stored = " ".join(
            (await s.execute(text("SELECT name || national_id || phones FROM cases"))).scalars()
        )
    assert "张三" not in stored and national_id(0) not in stored  # ciphertext only (SEC-PII)
    assert await _scalar(case_api, "SELECT count(*) FROM cases") == BATCH - 3


async def test_a_case_from_a_large_batch_reads_back_like_one_imported_alone(case_api) -> None:
    rows = batch("LN-C")
    big = (await _import(case_api, rows))["rows"]
    alone = (await _import(case_api, [account("LN-ALONE", **_same_as(rows[8]))]))["rows"]
    from_batch = (await case_api.get(f"/v1/cases/{big[8]['case_id']}")).json()
    single = (await case_api.get(f"/v1/cases/{alone[0]['case_id']}")).json()
    for body in (from_batch, single):
        body.pop("id")
        body.pop("contract_no")
    assert from_batch == single
    assert ZHANG not in json.dumps(from_batch, ensure_ascii=False)


def _same_as(row: dict[str, object]) -> dict[str, object]:
    return {k: v for k, v in row.items() if k != "contract_no"}


async def test_a_large_batch_emits_each_cases_events_feed_rows_and_timer(case_api) -> None:
    first = (await _import(case_api, batch("LN-D")))["rows"]
    resent = batch("LN-D")
    for i in range(0, BATCH, 2):  # every other account comes back with new fees
        resent[i] = {**resent[i], "fees": "75.00"}
    again = (await _import(case_api, resent))["rows"]
    assert [r["outcome"] for r in again] == ["updated", "unchanged"] * (BATCH // 2)
    assert all(r["changed"] == ["fees"] for r in again[::2])

    app = case_api.app  # type: ignore[attr-defined]
    async with app.state.runtime.sessions() as s:
        payloads = (await s.scalars(text("SELECT payload FROM outbox ORDER BY id"))).all()
        feed = (await s.execute(text("SELECT case_id, change FROM case_changes"))).all()
        timers = (
            await s.scalars(text("SELECT subject FROM timers WHERE kind = 'case.bucket'"))
        ).all()
    envelopes = [EventEnvelope.from_bytes(bytes(p)) for p in payloads]
    per_case: dict[str, list[str]] = {}
    for e in envelopes:
        per_case.setdefault(str(e.subject), []).append(e.type)
    ids = [str(r["case_id"]) for r in first]
    for i, case_id in enumerate(ids):
        updated = ["case.updated.v1"] if i % 2 == 0 else []
        assert per_case[case_id][:2] == ["case.imported.v1", "case.strategy_changed.v1"]
        assert [t for t in per_case[case_id][2:] if t == "case.updated.v1"] == updated
    assert len({e.id for e in envelopes}) == len(envelopes)
    assert sorted((str(c), str(k)) for c, k in feed) == sorted(
        (str(e.subject), e.type) for e in envelopes
    )
    assert sorted(timers) == sorted(ids)


async def test_a_large_batch_schedules_each_bucket_timer_as_a_single_timer_is(case_api) -> None:
    report = (await _import(case_api, batch("LN-T")))["rows"]
    alone = (await _import(case_api, [account("LN-T-ALONE", debtor_timezone="Europe/Berlin")]))[
        "rows"
    ]
    app = case_api.app  # type: ignore[attr-defined]
    async with app.state.runtime.sessions() as s:
        rows = (
            await s.execute(
                text(
                    "SELECT timer_key, kind, subject, due_at, state, remaining_ms, payload,"
                    " attempts, last_error, created_at, fired_at FROM timers"
                    " WHERE kind = 'case.bucket'"
                )
            )
        ).all()
    stored = {r.subject: tuple(r) for r in rows}
    # rule: CASE-BUCKET. Due when the debtor's day turns: midnight in Shanghai is 16:00 UTC,
    # in Berlin 23:00 UTC; payload encoded as every timer payload (sorted keys, no spaces).
    shanghai, berlin = (
        datetime(2026, 11, 28, 16, tzinfo=UTC),
        datetime(2026, 11, 28, 23, tzinfo=UTC),
    )
    expected = [(str(r["case_id"]), shanghai) for r in report] + [
        (str(alone[0]["case_id"]), berlin)
    ]
    assert len(stored) == len(expected) == BATCH + 1
    for case_id, due in expected:
        payload = json.dumps({"case_id": case_id}, sort_keys=True, separators=(",", ":"))
        assert stored[case_id] == (
            f"bucket:{case_id}",
            "case.bucket",
            case_id,
            due,
            "scheduled",
            None,
            payload,
            0,
            None,
            NOW,
            None,
        )
