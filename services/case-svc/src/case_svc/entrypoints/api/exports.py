"""Exports of the bank's cases and the audit trail that records them (SEC-EXPORT, SEC-AUDIT)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy import select

from case_svc.adapters.audit_tables import audit_trail
from case_svc.domain.exports import (
    MEDIA_TYPES,
    ExportFormat,
    ExportPolicy,
    ExportRefused,
    ExportScope,
    render,
)
from case_svc.entrypoints.api.deps import RuntimeDep
from case_svc.service_layer.exports import export_cases
from collect_common.audit import AuditRecord, AuditTrail, Verification
from collect_common.security.auth import Role
from collect_common.web.auth import require_roles
from collect_common.web.pagination import Page, PageQuery
from collect_common.web.problems import PROBLEM_JSON, ProblemError

router = APIRouter(prefix="/v1", tags=["audit"])
TRAIL = AuditTrail(audit_trail)
POLICY = ExportPolicy()
REFUSALS: dict[int | str, dict[str, Any]] = {
    403: {"content": {PROBLEM_JSON: {}}},
    422: {"content": {PROBLEM_JSON: {}}},
}


class ExportScopeIn(BaseModel):
    bank_id: str = Field(min_length=1, max_length=64, examples=["bank-core"])
    changed_from: datetime = Field(
        description="Cases with a change at or after this instant",
        examples=["2026-11-01T00:00:00Z"],
    )
    changed_to: datetime = Field(
        description="... and before this one", examples=["2026-12-01T00:00:00Z"]
    )


class ExportIn(BaseModel):
    purpose: str | None = Field(
        default=None,
        max_length=1000,
        description="Why the data is exported; required, kept in the audit trail",
        examples=["Quarterly inspection of the November portfolio for the bank's audit"],
    )
    scope: ExportScopeIn
    format: ExportFormat = Field(default="ndjson", description="csv or ndjson")


class AuditRecordOut(BaseModel):
    seq: int
    actor: str
    role: str
    at: datetime
    action: str = Field(examples=["export.cases"])
    resource: str
    purpose: str
    detail: dict[str, Any]
    hash: str = Field(description="sha256(previous record's hash || this record's JSON)")

    @classmethod
    def of(cls, record: AuditRecord) -> AuditRecordOut:
        return cls(
            seq=record.seq,
            actor=record.actor,
            role=record.role,
            at=record.at,
            action=record.action,
            resource=record.resource,
            purpose=record.purpose,
            detail=record.details(),
            hash=record.hash,
        )


class VerificationOut(BaseModel):
    ok: bool
    records: int = Field(description="Records checked, up to the first that does not match")
    head_seq: int | None = Field(description="The last record of the intact chain")
    head_hash: str
    first_bad_seq: int | None
    reason: str | None

    @classmethod
    def of(cls, v: Verification) -> VerificationOut:
        return cls(
            ok=v.ok,
            records=v.records,
            head_seq=v.head_seq,
            head_hash=v.head_hash,
            first_bad_seq=v.first_bad_seq,
            reason=v.reason,
        )


@router.post(
    "/exports",
    responses={
        200: {"content": {"text/csv": {}, "application/x-ndjson": {}}},
        **REFUSALS,
    },
    summary="Export a bank's cases changed in a period (personal data masked), with a purpose",
    dependencies=[require_roles(Role.OPS, Role.AUDITOR)],
)
async def post_export(body: ExportIn, request: Request, runtime: RuntimeDep) -> Response:
    """SEC-EXPORT: ops or the bank's auditor, with the purpose of the export (at least
    ``purpose_min_length`` characters). The cases of ``scope.bank_id`` that changed in
    ``[changed_from, changed_to)``, in their current state, national IDs, phones, names and
    addresses masked. The export's audit record (who, role, when, scope, row count,
    purpose) commits before the answer; ``X-Audit-Seq`` names it."""
    scope = ExportScope(
        bank_id=body.scope.bank_id,
        changed_from=body.scope.changed_from,
        changed_to=body.scope.changed_to,
    )
    try:
        async with runtime.uow() as uow:
            result = await export_cases(
                uow,
                TRAIL,
                POLICY,
                principal=request.state.principal,
                purpose=body.purpose,
                scope=scope,
                fmt=body.format,
                now=runtime.clock.now(),
            )
            await uow.commit()
    except ExportRefused as exc:
        status = 403 if exc.rule == "SEC-ACCESS" else 422
        raise ProblemError(status, exc.reason, rule=exc.rule, field=exc.field) from None
    seq = result.record.seq
    return Response(
        render(result.rows, body.format),
        media_type=MEDIA_TYPES[body.format],
        headers={
            "Content-Disposition": f'attachment; filename="cases-export-{seq}.{body.format}"',
            "X-Audit-Seq": str(seq),
            "X-Export-Rows": str(len(result.rows)),
        },
    )


@router.get(
    "/audit",
    response_model=Page[AuditRecordOut],
    summary="The audit trail, oldest first; pass next_cursor to go on",
    dependencies=[require_roles(Role.AUDITOR, Role.OPS)],
)
async def list_audit(page: PageQuery, runtime: RuntimeDep) -> Page[AuditRecordOut]:
    t = audit_trail
    async with runtime.sessions() as session:
        rows = (await session.execute(page.keyset(select(t), [t.c.seq]))).all()
    items, next_cursor = page.page_of(rows, lambda r: (r.seq,))
    return Page[AuditRecordOut](
        items=[AuditRecordOut.of(AuditTrail.of_row(r)) for r in items], next_cursor=next_cursor
    )


@router.get(
    "/audit/verify",
    response_model=VerificationOut,
    summary="Walk the audit trail's hash chain; name the first record that does not match",
    dependencies=[require_roles(Role.AUDITOR, Role.OPS)],
)
async def verify_audit(runtime: RuntimeDep) -> VerificationOut:
    async with runtime.sessions() as session:
        return VerificationOut.of(await TRAIL.verify(session))
