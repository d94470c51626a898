"""Bulk intake of overdue accounts from the bank's core system (CASE-INTAKE)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from case_svc.entrypoints.api.deps import ContextDep, IdempotencyDep, RuntimeDep
from case_svc.entrypoints.api.schemas import ImportRequest, ImportResponse, RowError
from case_svc.service_layer.intake import (
    RULE,
    CaseContext,
    RowResult,
    collector_paused,
    import_accounts,
    retrying,
)
from case_svc.settings import Settings
from collect_common.runtime import ServiceRuntime
from collect_common.security.auth import Role
from collect_common.web.auth import require_roles
from collect_common.web.idempotency import IdempotencyKeyHeader
from collect_common.web.limits import body_limit
from collect_common.web.problems import PROBLEM_JSON, ProblemError

router = APIRouter(prefix="/v1", tags=["accounts"])


def _summary(results: list[RowResult]) -> dict[str, Any]:
    """The ``ImportResponse`` body as JSON-ready values, built straight from the results
    (the model describes it in the OpenAPI document; 10,000 rows need no re-validation)."""
    counts = {k: 0 for k in ("created", "updated", "unchanged", "rejected")}
    rows = []
    for r in results:
        counts[r.outcome] += 1
        rows.append(
            {
                "index": r.index,
                "outcome": r.outcome,
                "contract_no": r.contract_no,
                "case_id": r.case_id,
                "changed": list(r.changed),
                "errors": [e.as_dict() for e in r.errors],
            }
        )
    return {**counts, "rows": rows}


@router.post(
    "/accounts/import",
    summary="Import or update overdue accounts; one outcome per row",
    response_model=ImportResponse,
    responses={413: {"content": {PROBLEM_JSON: {}}}, 422: {"content": {PROBLEM_JSON: {}}}},
    dependencies=[require_roles(Role.BANK)],
)
async def import_accounts_route(
    body: ImportRequest,
    request: Request,
    key: IdempotencyKeyHeader,
    ctx: ContextDep,
    keys: IdempotencyDep,
    runtime: RuntimeDep,
) -> Response:
    """Each account is validated on its own: national ID with its GB 11643 check
    character, mainland mobile numbers, amounts as decimals >= 0, overdue-since not
    in the future. Optional classification codes for statistics: ``region`` (an
    administrative division code, 6 digits, GB/T 2260 style), ``customer_group`` and
    ``product`` (letters, digits, ``-`` and ``_``, at most 64 characters); they are not
    personal data and go with the case's import event. A known loan contract number
    updates its case, never a second one; a re-sent row is the account as it now is
    (an optional field left out is cleared). Retried with the same ``Idempotency-Key``,
    the request changes nothing and returns the first answer."""
    limit = ctx.policy.max_rows_per_request
    if len(body.accounts) > limit:
        raise ProblemError(
            413,
            f"at most {limit} accounts per request; use the NDJSON form or split the file",
            rule="CASE-INTAKE",
            field="accounts",
        )
    principal = request.state.principal

    async def attempt() -> Response:
        async with runtime.uow() as uow:
            replay = await keys.begin(uow, request, principal, key)
            if replay is not None:
                return replay
            results = await import_accounts(
                ctx, uow, body.accounts, bank_id=principal.subject, now=runtime.clock.now()
            )
            response = JSONResponse(_summary(results))
            await keys.record(uow, response)
            await uow.commit()
            if ctx.metrics is not None:
                ctx.metrics.count(r.outcome for r in results)
            return response

    with collector_paused():
        result: Response = await retrying(attempt)
    return result


# --- the streamed NDJSON form ------------------------------------------------------------

NDJSON = "application/x-ndjson"
NDJSON_TYPES = frozenset(
    {NDJSON, "application/ndjson", "application/jsonl", "application/json-lines"}
)


class RejectedLine(BaseModel):
    line: int = Field(description="1-based line number in the uploaded file")
    contract_no: str | None = None
    errors: list[RowError]


class NdjsonImportResponse(BaseModel):
    lines: int = Field(description="Lines read, blank ones included")
    rows: int = Field(description="Non-blank lines, i.e. accounts (valid or not)")
    created: int
    updated: int
    unchanged: int
    rejected: int
    rejections: list[RejectedLine] = Field(
        description="Every rejected line, in file order, up to the reporting limit"
    )
    rejections_truncated: bool = Field(
        default=False, description="True when more lines were rejected than are listed"
    )


@dataclass
class _Line:
    number: int
    data: bytes | None  # None: longer than the limit, skipped unread


async def _lines(body: AsyncIterator[bytes], max_bytes: int) -> AsyncIterator[_Line]:
    """Split a byte stream into lines without holding more than one bounded line.

    A line longer than ``max_bytes`` is yielded as ``data=None`` and its bytes are
    dropped as they arrive, never gathered.
    """
    number = 0
    buffer = bytearray()
    overlong = False
    async for chunk in body:
        start = 0
        while start < len(chunk):
            end = chunk.find(b"\n", start)
            piece = chunk[start:] if end < 0 else chunk[start:end]
            if not overlong:
                if len(buffer) + len(piece) > max_bytes:
                    overlong = True
                    buffer.clear()
                else:
                    buffer += piece
            if end < 0:
                break
            number += 1
            yield _Line(number, None if overlong else bytes(buffer))
            buffer.clear()
            overlong = False
            start = end + 1
    if buffer or overlong:  # the last line had no newline
        number += 1
        yield _Line(number, None if overlong else bytes(buffer))


def _parse(line: _Line, max_bytes: int) -> Mapping[str, Any] | RejectedLine | None:
    """The account on ``line``, a rejection, or None for a blank line."""
    if line.data is None:
        return RejectedLine(
            line=line.number,
            errors=[
                RowError(field="line", rule=RULE, reason=f"line longer than {max_bytes} bytes")
            ],
        )
    if not line.data.strip():
        return None
    try:
        row = json.loads(line.data)
    except RecursionError:  # nested deeper than any account: refused, not a crash
        return RejectedLine(
            line=line.number,
            errors=[RowError(field="line", rule=RULE, reason="JSON nested too deeply")],
        )
    except (ValueError, UnicodeDecodeError) as exc:
        reason = f"not valid JSON: {exc}"[:200]
        return RejectedLine(
            line=line.number, errors=[RowError(field="line", rule=RULE, reason=reason)]
        )
    if not isinstance(row, dict):
        return RejectedLine(
            line=line.number,
            errors=[RowError(field="line", rule=RULE, reason="each line is one JSON object")],
        )
    return row


class _Tally:
    def __init__(self, report_limit: int) -> None:
        self.counts = {k: 0 for k in ("created", "updated", "unchanged", "rejected")}
        self.rows = 0
        self.rejections: list[RejectedLine] = []
        self.truncated = False
        self.report_limit = report_limit

    def reject(self, rejection: RejectedLine) -> None:
        self.counts["rejected"] += 1
        if len(self.rejections) < self.report_limit:
            self.rejections.append(rejection)
        else:
            self.truncated = True


async def _import_chunk(
    ctx: CaseContext,
    runtime: ServiceRuntime,
    chunk: list[tuple[int, Mapping[str, Any]]],
    bank_id: str,
) -> list[tuple[int, RowResult]]:
    rows = [row for _, row in chunk]

    async def attempt() -> list[RowResult]:
        async with runtime.uow() as uow:
            results = await import_accounts(
                ctx, uow, rows, bank_id=bank_id, now=runtime.clock.now()
            )
            await uow.commit()
            return results

    with collector_paused():
        results: list[RowResult] = await retrying(attempt)
    if ctx.metrics is not None:
        ctx.metrics.count(r.outcome for r in results)
    return [(chunk[r.index][0], r) for r in results]


def _ndjson_limits(runtime: ServiceRuntime) -> tuple[int, int, int]:
    settings = runtime.settings if isinstance(runtime.settings, Settings) else Settings()
    return (
        settings.ndjson_chunk_rows,
        settings.ndjson_max_line_bytes,
        settings.ndjson_max_reported_rejections,
    )


@router.post(
    "/accounts/import-ndjson",
    summary="Import or update overdue accounts from a streamed NDJSON file, in chunks",
    response_model=NdjsonImportResponse,
    responses={415: {"content": {PROBLEM_JSON: {}}}},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {NDJSON: {"schema": {"type": "string", "format": "binary"}}},
        }
    },
    dependencies=[require_roles(Role.BANK)],
)
@body_limit(None)  # streamed: one line of at most NDJSON_MAX_LINE_BYTES is held at a time
async def import_accounts_ndjson_route(
    request: Request, ctx: ContextDep, runtime: RuntimeDep
) -> NdjsonImportResponse:
    """For files beyond the JSON form's row limit: one account (the same JSON object as
    in ``/v1/accounts/import``) per line, ``Content-Type: application/x-ndjson``.

    The body is read as it arrives and imported in chunks (``NDJSON_CHUNK_ROWS``, 1000 by
    default); each chunk commits in its own transaction, so a failure part-way leaves the
    chunks before it imported. Blank lines are skipped. A line that is not a JSON object,
    or longer than ``NDJSON_MAX_LINE_BYTES`` (64 KiB), is rejected with field ``line``.
    The answer has the counts and only the rejected lines, by 1-based line number.

    ``Idempotency-Key`` is not used here (it would need the whole body): re-sending the
    file is safe anyway, because a known contract number updates its case, never
    duplicates it, and an identical row is reported ``unchanged`` and changes nothing.
    """
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media not in NDJSON_TYPES:
        raise ProblemError(
            415,
            f"send the accounts as {NDJSON}, one JSON object per line",
            rule="CASE-INTAKE",
            field="Content-Type",
        )
    chunk_rows, max_line, report_limit = _ndjson_limits(runtime)
    bank_id = request.state.principal.subject
    tally = _Tally(report_limit)
    lines = 0
    chunk: list[tuple[int, Mapping[str, Any]]] = []

    async def flush() -> None:
        for number, result in await _import_chunk(ctx, runtime, chunk, bank_id):
            if result.outcome == "rejected":
                tally.reject(
                    RejectedLine(
                        line=number,
                        contract_no=result.contract_no,
                        errors=[
                            RowError(field=e.field, rule=e.rule, reason=e.reason)
                            for e in result.errors
                        ],
                    )
                )
            else:
                tally.counts[result.outcome] += 1
        chunk.clear()

    async for line in _lines(request.stream(), max_line):
        lines = line.number
        parsed = _parse(line, max_line)
        if parsed is None:
            continue
        tally.rows += 1
        if isinstance(parsed, RejectedLine):
            tally.reject(parsed)
            if ctx.metrics is not None:
                ctx.metrics.count(["rejected"])
            continue
        chunk.append((line.number, parsed))
        if len(chunk) >= chunk_rows:
            await flush()
    if chunk:
        await flush()
    tally.rejections.sort(key=lambda r: r.line)
    return NdjsonImportResponse(
        lines=lines,
        rows=tally.rows,
        **tally.counts,
        rejections=tally.rejections,
        rejections_truncated=tally.truncated,
    )
