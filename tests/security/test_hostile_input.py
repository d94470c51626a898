"""Hostile input at the endpoints that face the outside: refused cleanly, never a 500.

The bank's intake (JSON and NDJSON), the dialer's signed webhooks, the complaint portal
and e-mail endpoint, contact decisions: bodies beyond the limit (streamed, so a server
that gathered them would show it), JSON nested 100,000 deep, invalid UTF-8, NUL bytes,
SQL-looking strings, huge numbers and wrong content types. Every refusal is a 4xx
``application/problem+json`` naming the field where there is one; what is accepted is
stored as sent, and the tables are still there afterwards.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import inspect

from collect_common.security.webhooks import sign
from collect_common.web.limits import MAX_BODY_BYTES

from .conftest import NOW, app_of, credentials, is_problem

SQL = "'; DROP TABLE cases; --"
DEEP = 100_000
CHUNK = 64 * 1024
WEBHOOK = "/v1/webhooks/dialer/calls"
WEBHOOK_KEY_ID, WEBHOOK_SECRET = "dialer-dev", b"dev-webhook-secret-not-for-production"
_deliveries = itertools.count(1)
_keys = itertools.count(1)

ACCOUNT = {
    "contract_no": "LN-SEC-000001",
    "name": "张三",
    "national_id": "11010519491231002X",
    "phones": ["13812345678"],
    "address": "北京市朝阳区建国路88号",
    "principal": "12000.00",
    "interest": "350.25",
    "fees": "50.00",
    "overdue_since": "2026-09-15",
}
COMPLAINT = {
    "type": "attitude",
    "complainant_name": "李四",
    "complainant_contact": "13900001111",
    "content": "催收员态度恶劣",
}

pytestmark = pytest.mark.asyncio(loop_scope="module")


@dataclass
class Target:
    """A write endpoint facing the outside, and how to call it."""

    service: str
    path: str
    caller: str  # a key of conftest.credentials(); "anonymous" for the portal
    content_type: str = "application/json"
    signed: bool = False
    idempotent: bool = False  # sends an Idempotency-Key (a new one each time)


JSON_TARGETS = [
    Target("case", "/v1/accounts/import", "bank", idempotent=True),
    Target("contact", "/v1/contact-decisions", "agent"),
    Target("contact", WEBHOOK, "dialer", signed=True),
    Target("complaint", "/v1/portal/complaints", "anonymous"),
    Target("complaint", "/v1/tickets", "complaint", idempotent=True),
]
MAIL = Target("complaint", "/v1/inbound/email", "complaint", content_type="message/rfc822")
NDJSON = Target("case", "/v1/accounts/import-ndjson", "bank", content_type="application/x-ndjson")


class Counted:
    """A request body produced chunk by chunk, counting what the server pulled."""

    def __init__(self, total: int, chunk: bytes = b"[" * CHUNK) -> None:
        self.total = total
        self.chunk = chunk
        self.pulled = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while self.pulled < self.total:
            self.pulled += len(self.chunk)
            yield self.chunk


async def send(
    apps: dict[str, httpx.AsyncClient],
    target: Target,
    content: bytes | Counted,
    *,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    client = apps[target.service]
    sent = {
        **credentials(client)[target.caller],
        "Content-Type": target.content_type,
        **(headers or {}),
    }
    if target.idempotent:
        sent["Idempotency-Key"] = f"sec-key-{next(_keys)}"
    if target.signed:
        body = content if isinstance(content, bytes) else b""
        delivery = f"sec-delivery-{next(_deliveries)}"
        sent.update(
            sign(WEBHOOK_SECRET, int(NOW.timestamp()), delivery, body, key_id=WEBHOOK_KEY_ID)
        )
    return await client.post(target.path, content=content, headers=sent)


def refused(response: httpx.Response, *statuses: int, field: str | None = None) -> None:
    assert response.status_code in statuses, (response.status_code, response.text[:300])
    assert is_problem(response), response.text[:300]
    if field is not None:
        assert response.json().get("field") == field, response.json()


def deep_json(depth: int = DEEP) -> bytes:
    return b"[" * depth + b"]" * depth


def _targets(targets: list[Target]) -> list[Any]:
    return [pytest.param(t, id=f"{t.service}{t.path}") for t in targets]


# --- size ------------------------------------------------------------------------------


@pytest.mark.parametrize("target", _targets([*JSON_TARGETS, MAIL]))
async def test_a_streamed_body_beyond_the_limit_is_refused_413_unread(
    security_apps: dict[str, httpx.AsyncClient], target: Target
) -> None:
    body = Counted(total=4 * MAX_BODY_BYTES)
    response = await send(security_apps, target, body)
    refused(response, 413)
    assert body.pulled <= MAX_BODY_BYTES + CHUNK  # refused as it passed the limit


async def test_a_declared_length_beyond_the_limit_is_refused_before_reading(
    security_apps: dict[str, httpx.AsyncClient],
) -> None:
    body = Counted(total=2 * MAX_BODY_BYTES)
    target = JSON_TARGETS[0]
    response = await send(
        security_apps, target, body, headers={"Content-Length": str(2 * MAX_BODY_BYTES)}
    )
    refused(response, 413, field="body")
    assert response.json()["limit_bytes"] == MAX_BODY_BYTES
    assert body.pulled == 0


async def test_a_caller_without_credentials_cannot_push_more_than_the_limit(
    security_apps: dict[str, httpx.AsyncClient],
) -> None:
    """FastAPI reads a JSON body before the route's dependencies check the caller, so an
    anonymous body is read too: up to the limit, never beyond."""
    body = Counted(total=4 * MAX_BODY_BYTES)
    client = security_apps["case"]
    response = await client.post(
        "/v1/accounts/import", content=body, headers={"Content-Type": "application/json"}
    )
    refused(response, 401, 413)
    assert body.pulled <= MAX_BODY_BYTES + CHUNK
    # a route that reads its body itself checks the caller first and reads nothing
    body = Counted(total=4 * MAX_BODY_BYTES)
    response = await client.post(
        NDJSON.path, content=body, headers={"Content-Type": NDJSON.content_type}
    )
    refused(response, 401)
    assert body.pulled == 0


async def test_an_ndjson_file_beyond_the_body_limit_streams_and_an_overlong_line_is_rejected(
    security_apps: dict[str, httpx.AsyncClient],
) -> None:
    """The NDJSON form has no body limit (it holds one bounded line at a time): a line of
    twice the body limit is rejected with field ``line``; the account after it imported."""
    good = json.dumps(ACCOUNT, ensure_ascii=False).encode() + b"\n"

    async def body() -> AsyncIterator[bytes]:
        yield b'{"padding": "'
        for _ in range(2 * MAX_BODY_BYTES // CHUNK):
            yield b"x" * CHUNK
        yield b'"}\n' + good

    response = await send(security_apps, NDJSON, body())  # type: ignore[arg-type]
    assert response.status_code == 200, response.text[:300]
    result = response.json()
    assert (result["lines"], result["created"], result["rejected"]) == (2, 1, 1)
    assert result["rejections"][0]["line"] == 1
    assert result["rejections"][0]["errors"][0]["field"] == "line"


# --- structure and encoding --------------------------------------------------------------


@pytest.mark.parametrize("depth", [5_000, DEEP])
@pytest.mark.parametrize("target", _targets(JSON_TARGETS))
async def test_deeply_nested_json_is_a_4xx(
    security_apps: dict[str, httpx.AsyncClient], target: Target, depth: int
) -> None:
    """Deeper than any parser's recursion limit; 100,000 levels are also beyond the
    webhook's and the portal's own size limits (413)."""
    refused(await send(security_apps, target, deep_json(depth)), 400, 413, 422)


@pytest.mark.parametrize("target", _targets(JSON_TARGETS))
async def test_invalid_utf8_is_a_4xx(
    security_apps: dict[str, httpx.AsyncClient], target: Target
) -> None:
    body = b'{"accounts": [{"name": "\xff\xfe\xc3("}], "content": "\xc0\xaf"}'
    refused(await send(security_apps, target, body), 400, 422)


@pytest.mark.parametrize("target", _targets(JSON_TARGETS))
async def test_a_body_that_is_not_json_at_all_is_a_4xx(
    security_apps: dict[str, httpx.AsyncClient], target: Target
) -> None:
    refused(await send(security_apps, target, b"\x00\x01 not json \x00"), 400, 422)


async def test_ndjson_lines_deep_invalid_or_with_nul_are_rejected_by_line(
    security_apps: dict[str, httpx.AsyncClient],
) -> None:
    nul = json.dumps({**ACCOUNT, "contract_no": "LN-SEC-\u0000-1"}).encode()
    lines = [deep_json(20_000), b'{"name": "\xff\xfe"}', nul, b"12345678901234567890" * 50]
    response = await send(security_apps, NDJSON, b"\n".join(lines) + b"\n")
    assert response.status_code == 200, response.text[:300]
    result = response.json()
    assert (result["rows"], result["rejected"], result["created"]) == (4, 4, 0)
    assert [r["line"] for r in result["rejections"]] == [1, 2, 3, 4]


async def test_wrong_content_types_are_a_415_or_422_naming_the_field(
    security_apps: dict[str, httpx.AsyncClient],
) -> None:
    body = json.dumps(ACCOUNT).encode()
    refused(
        await send(security_apps, NDJSON, body, headers={"Content-Type": "application/json"}),
        415,
        field="Content-Type",
    )
    imported = json.dumps({"accounts": [ACCOUNT]}).encode()
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "image/png"):
        response = await send(
            security_apps, JSON_TARGETS[0], imported, headers={"Content-Type": content_type}
        )
        refused(response, 415, 422)


# --- values ---------------------------------------------------------------------------


async def test_nul_bytes_in_values_are_refused_or_stored_never_a_500(
    security_apps: dict[str, httpx.AsyncClient],
) -> None:
    rows = [
        {**ACCOUNT, "contract_no": "LN-SEC-\u0000-2"},
        {**ACCOUNT, "contract_no": "LN-SEC-000003", "name": "张\u0000三"},
        {**ACCOUNT, "contract_no": "LN-SEC-000004", "address": "路\u000088号"},
        {**ACCOUNT, "contract_no": "LN-SEC-000005", "region": "11\u00000105"},
    ]
    response = await send(security_apps, JSON_TARGETS[0], json.dumps({"accounts": rows}).encode())
    assert response.status_code == 200, response.text[:300]
    outcomes = [r["outcome"] for r in response.json()["rows"]]
    assert outcomes[0] == "rejected"
    assert response.json()["rows"][0]["errors"][0]["field"] == "contract_no"

    nul_complaint = {**COMPLAINT, "content": "内容\u0000结尾", "case_id": "c\u0000-1"}
    response = await send(security_apps, JSON_TARGETS[3], json.dumps(nul_complaint).encode())
    assert response.status_code < 500, response.text[:300]
    if response.status_code >= 400:
        refused(response, 422)
    response = await send(
        security_apps,
        JSON_TARGETS[1],
        json.dumps({"debtor_id": "d\u0000-1", "channel": "call"}).encode(),
    )
    assert response.status_code < 500, response.text[:300]
    assert is_problem(response)  # an unknown debtor (404) or a refused id (422)
    mail = b"From: a@example.com\r\nSubject: x\x00y\r\nMessage-ID: <nul@x>\r\n\r\nbody\x00\r\n"
    response = await send(security_apps, MAIL, mail)
    assert response.status_code == 201, response.text[:300]
    response = await send(security_apps, MAIL, b"\x00\x00\x00 not a message at all \x00")
    assert response.status_code == 201, response.text[:300]


async def test_a_mail_with_nul_bytes_in_its_headers_is_filed(
    security_apps: dict[str, httpx.AsyncClient],
) -> None:
    mail = (
        b"From: a\x00b@example.com\r\nSubject: s\r\n"
        b"Message-ID: <n\x00ul-in-headers@x>\r\n\r\nbody\r\n"
    )
    response = await send(security_apps, MAIL, mail)
    assert response.status_code == 201, response.text[:300]


async def test_sql_looking_strings_are_data_and_the_tables_stay(
    security_apps: dict[str, httpx.AsyncClient],
) -> None:
    rows = [
        {**ACCOUNT, "contract_no": SQL},
        {**ACCOUNT, "contract_no": "LN-SEC-000010", "address": SQL, "name": SQL},
    ]
    response = await send(security_apps, JSON_TARGETS[0], json.dumps({"accounts": rows}).encode())
    assert response.status_code == 200, response.text[:300]
    first, second = response.json()["rows"]
    assert first["outcome"] == "rejected" or first["contract_no"] == SQL
    assert second["outcome"] == "created", second

    ticket = {**COMPLAINT, "content": SQL, "complainant_name": SQL}
    response = await send(security_apps, JSON_TARGETS[4], json.dumps(ticket).encode())
    assert response.status_code == 201, response.text[:300]
    ticket_id = response.json()["id"]
    client = security_apps["complaint"]
    read = await client.get(f"/v1/tickets/{ticket_id}", headers=credentials(client)["complaint"])
    assert read.status_code == 200 and read.json()["content"] == SQL

    response = await send(
        security_apps, JSON_TARGETS[1], json.dumps({"case_id": SQL, "channel": "call"}).encode()
    )
    refused(response, 404, 422)

    for name, expected in (("case", "cases"), ("complaint", "complaint_tickets")):
        runtime = app_of(security_apps[name]).state.runtime
        async with runtime.sessions() as session:
            conn = await session.connection()
            tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
        assert expected in tables


async def test_huge_numbers_are_refused_naming_the_field(
    security_apps: dict[str, httpx.AsyncClient],
) -> None:
    huge = "9" * 5000
    body = (
        b'{"accounts": [{"contract_no": "LN-SEC-000020", "principal": '
        + huge.encode()
        + b', "interest": 1e999999, "fees": -1e400, "name": "x", "national_id": '
        b'"11010519491231002X", "phones": ["13812345678"], "overdue_since": "2026-09-15"}]}'
    )
    response = await send(security_apps, JSON_TARGETS[0], body)
    if response.status_code == 200:
        row = response.json()["rows"][0]
        assert row["outcome"] == "rejected"
        assert {"principal", "interest", "fees"} & {e["field"] for e in row["errors"]}
    else:
        refused(response, 400, 422)

    delivery = {
        "delivery_id": "sec-huge",
        "event": "ended",
        "call_id": "call-1",
        "case_id": "c-1",
        "debtor_id": "d-1",
        "agent_id": "a-1",
        "at": NOW.isoformat(),
        "disposition": "answered",
    }
    client = security_apps["contact"]
    for n, (number, field) in enumerate([(str(10**30), "duration_seconds"), (huge, None)]):
        delivery["delivery_id"] = f"sec-huge-{n}"
        raw = json.dumps(delivery)[:-1].encode() + b', "duration_seconds": ' + number.encode()
        raw += b"}"
        ts = int(NOW.timestamp())
        headers = sign(WEBHOOK_SECRET, ts, f"sec-huge-{n}", raw, key_id=WEBHOOK_KEY_ID)
        response = await client.post(
            WEBHOOK,
            content=raw,
            headers={
                **credentials(client)["dialer"],
                **headers,
                "Content-Type": "application/json",
            },
        )
        refused(response, 422, field=field)


async def test_amounts_beyond_the_money_columns_are_rejected_by_field(
    security_apps: dict[str, httpx.AsyncClient],
) -> None:
    rows = [
        {**ACCOUNT, "contract_no": "LN-SEC-000030", "principal": "9" * 20},
        {**ACCOUNT, "contract_no": "LN-SEC-000031", "interest": 10**17},
        {**ACCOUNT, "contract_no": "LN-SEC-000032", "fees": "9999999999999999.99"},
    ]
    response = await send(security_apps, JSON_TARGETS[0], json.dumps({"accounts": rows}).encode())
    assert response.status_code == 200, response.text[:300]
    first, second, third = response.json()["rows"]
    assert (first["outcome"], first["errors"][0]["field"]) == ("rejected", "principal")
    assert (second["outcome"], second["errors"][0]["field"]) == ("rejected", "interest")
    assert third["outcome"] == "created", third  # the largest amount the columns hold
