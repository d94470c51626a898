"""The streamed NDJSON intake (CASE-INTAKE) over real PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable

import pytest
from sqlalchemy import text

from case_svc.entrypoints.api.accounts import _Line, _lines
from collect_common.settings import DEV_API_KEYS

pytestmark = pytest.mark.postgres

NDJSON = {"Content-Type": "application/x-ndjson"}
WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
CHECK = "10X98765432"


def national_id(n: int) -> str:
    """A valid GB 11643 ID: Beijing Chaoyang, born 1980-01-01 + n days' worth of order codes."""
    body = f"110105{1960 + n % 40}{1 + n % 12:02d}{1 + n % 28:02d}{n % 1000:03d}"
    return body + CHECK[sum(int(d) * w for d, w in zip(body, WEIGHTS, strict=True)) % 11]


def account(contract: str, n: int = 0, **over: object) -> dict[str, object]:
    row: dict[str, object] = {
        "contract_no": contract,
        "name": "张三",
        "national_id": national_id(n),
        "phones": ["13812345678"],
        "principal": "12000.00",
        "interest": "350.25",
        "fees": "50.00",
        "overdue_since": "2026-10-10",
        "history": "good",
    }
    row.update(over)
    return row


def line(row: object) -> bytes:
    return json.dumps(row, ensure_ascii=False).encode() + b"\n"


async def stream(parts: Iterable[bytes], size: int = 7919) -> AsyncIterator[bytes]:
    """The body in odd-sized pieces, so lines straddle chunk boundaries."""
    pending = bytearray()
    for part in parts:
        pending += part
        while len(pending) >= size:
            yield bytes(pending[:size])
            del pending[:size]
    if pending:
        yield bytes(pending)


def test_the_check_character_generator_agrees_with_a_known_id() -> None:
    body = "11010519491231002"
    assert body + CHECK[sum(int(d) * w for d, w in zip(body, WEIGHTS, strict=True)) % 11] == (
        "11010519491231002X"
    )


async def test_lines_are_split_across_chunks_and_overlong_ones_are_dropped_unread() -> None:
    async def body() -> AsyncIterator[bytes]:
        yield b'{"a"'
        yield b":1}\n\n" + b"x" * 10
        yield b"y" * 10 + b"\nlast"

    got = [line async for line in _lines(body(), max_bytes=15)]
    assert got == [_Line(1, b'{"a":1}'), _Line(2, b""), _Line(3, None), _Line(4, b"last")]


async def test_25000_rows_with_broken_lines_are_counted_reported_and_stored(case_api) -> None:
    broken: dict[int, str] = {}
    bad_rows: dict[int, str] = {}

    def parts() -> Iterable[bytes]:
        number = 0
        for i in range(25_000):
            if i % 2500 == 7:
                number += 1
                broken[number] = "json"
                yield b'{"contract_no": "LN-broken", "name": \n'
            if i % 5000 == 11:
                number += 1
                broken[number] = "array"
                yield b'["not", "an", "object"]\n'
            if i % 5000 == 13:
                number += 1
                yield b"   \n"  # blank: skipped, not a row
            number += 1
            if i % 1000 == 999:
                bad_rows[number] = f"LN-BAD-{i}"
                yield line(account(f"LN-BAD-{i}", i, national_id="110105194912310021"))
            else:
                yield line(account(f"LN-{i:06d}", i))

    r = await case_api.post(
        "/v1/accounts/import-ndjson", content=stream(parts()), headers=NDJSON, timeout=600
    )
    assert r.status_code == 200, r.text
    body = r.json()
    valid = 25_000 - len(bad_rows)
    assert len(broken) == 15 and len(bad_rows) == 25
    assert body["created"] == valid and body["updated"] == 0 and body["unchanged"] == 0
    assert body["rejected"] == len(broken) + len(bad_rows)
    assert body["rows"] == 25_000 + len(broken)
    assert body["lines"] == 25_000 + len(broken) + 5
    assert body["rejections_truncated"] is False
    reported = {rej["line"]: rej for rej in body["rejections"]}
    assert [rej["line"] for rej in body["rejections"]] == sorted(reported)
    assert set(reported) == set(broken) | set(bad_rows)
    for number in broken:
        (error,) = reported[number]["errors"]
        assert error["field"] == "line" and error["rule"] == "CASE-INTAKE"
    for number, contract in bad_rows.items():
        assert reported[number]["contract_no"] == contract
        assert reported[number]["errors"][0]["field"] == "national_id"

    app = case_api.app  # type: ignore[attr-defined]
    async with app.state.runtime.sessions() as s:
        assert await s.scalar(text("SELECT count(*) FROM cases")) == valid
        assert (
            await s.scalar(text("SELECT count(*) FROM cases WHERE contract_no LIKE 'LN-BAD%'")) == 0
        )


async def test_an_overlong_line_is_rejected_and_the_rest_imported(case_api) -> None:
    huge = account("LN-HUGE", 1, address="北" * 40_000)  # ~120 KB of UTF-8
    content = line(account("LN-A", 2)) + line(huge) + line(account("LN-B", 3))
    r = await case_api.post("/v1/accounts/import-ndjson", content=content, headers=NDJSON)
    body = r.json()
    assert (body["created"], body["rejected"]) == (2, 1)
    (rejection,) = body["rejections"]
    assert rejection["line"] == 2 and rejection["errors"][0]["field"] == "line"
    assert "longer than 65536 bytes" in rejection["errors"][0]["reason"]


async def test_resending_the_file_changes_nothing_and_reports_unchanged(case_api) -> None:
    content = b"".join(line(account(f"LN-R{i}", i)) for i in range(5))
    first = await case_api.post("/v1/accounts/import-ndjson", content=content, headers=NDJSON)
    again = await case_api.post("/v1/accounts/import-ndjson", content=content, headers=NDJSON)
    assert first.json()["created"] == 5
    assert (again.json()["created"], again.json()["unchanged"]) == (0, 5)
    app = case_api.app  # type: ignore[attr-defined]
    async with app.state.runtime.sessions() as s:
        assert await s.scalar(text("SELECT count(*) FROM cases")) == 5


async def test_other_content_types_and_roles_are_refused(case_api) -> None:
    r = await case_api.post(
        "/v1/accounts/import-ndjson",
        content=line(account("LN-X")),
        headers={"Content-Type": "text/csv"},
    )
    assert r.status_code == 415 and r.json()["rule"] == "CASE-INTAKE"
    ops = {"X-API-Key": DEV_API_KEYS["ops-dashboard"][1], **NDJSON}
    r = await case_api.post(
        "/v1/accounts/import-ndjson", content=line(account("LN-X")), headers=ops
    )
    assert r.status_code == 403
