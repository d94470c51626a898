"""Exports of the bank's cases, each recorded in the audit trail (SEC-EXPORT, SEC-AUDIT).

The rows are read and the audit record is appended in one unit of work: an export that
is answered has its record committed, and one whose record could not be written is not
answered.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from case_svc.adapters.tables import case_changes, cases
from case_svc.domain.exports import (
    ExportFormat,
    ExportPolicy,
    ExportRefused,
    ExportScope,
    acting_role,
    check_request,
    masked_row,
)
from collect_common.audit import AuditRecord, AuditTrail
from collect_common.db import UnitOfWork
from collect_common.security.auth import Principal

ACTION = "export.cases"


@dataclass(frozen=True)
class ExportResult:
    rows: list[dict[str, str | None]]
    record: AuditRecord


async def export_cases(
    uow: UnitOfWork,
    trail: AuditTrail,
    policy: ExportPolicy,
    *,
    principal: Principal,
    purpose: str | None,
    scope: ExportScope,
    fmt: ExportFormat,
    now: datetime,
) -> ExportResult:
    """The bank's cases changed in the scope's period, masked, and the audit record of the
    export (not committed: the caller commits). ``ExportRefused`` names the field and rule
    of a request that may not run."""
    role = acting_role(principal.roles)
    stated = check_request(policy, purpose, scope)
    changed = (
        select(case_changes.c.case_id)
        .where(
            case_changes.c.bank_id == scope.bank_id,
            case_changes.c.at >= scope.changed_from,
            case_changes.c.at < scope.changed_to,
        )
        .distinct()
    )
    query = (
        select(cases)
        .where(cases.c.bank_id == scope.bank_id, cases.c.id.in_(changed))
        .order_by(cases.c.opened_at, cases.c.id)
        .limit(policy.max_rows + 1)
    )
    found = (await uow.session.execute(query)).mappings().all()
    if len(found) > policy.max_rows:
        raise ExportRefused(
            "scope",
            f"more than {policy.max_rows} cases changed in the period; export a shorter one",
        )
    rows = [masked_row(dict(r)) for r in found]
    record = await trail.append(
        uow.session,
        actor=principal.subject,
        role=str(role),
        at=now,
        action=ACTION,
        resource=f"cases of bank {scope.bank_id}",
        purpose=stated,
        detail={"scope": scope.describe(), "rows": len(rows), "format": fmt, "masked": True},
    )
    return ExportResult(rows=rows, record=record)
