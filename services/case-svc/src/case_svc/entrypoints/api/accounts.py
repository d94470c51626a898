"""Bulk intake of overdue accounts from the bank's core system (CASE-INTAKE)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from case_svc.entrypoints.api.deps import ContextDep, IdempotencyDep, RuntimeDep
from case_svc.entrypoints.api.schemas import ImportRequest, ImportResponse, RowError, RowOutcome
from case_svc.service_layer.intake import RowResult, import_accounts, retrying
from collect_common.security.auth import Role
from collect_common.web.auth import require_roles
from collect_common.web.idempotency import IdempotencyKeyHeader
from collect_common.web.problems import PROBLEM_JSON, ProblemError

router = APIRouter(prefix="/v1", tags=["accounts"])


def _summary(results: list[RowResult]) -> ImportResponse:
    counts = {k: 0 for k in ("created", "updated", "unchanged", "rejected")}
    for r in results:
        counts[r.outcome] += 1
    return ImportResponse(
        **counts,
        rows=[
            RowOutcome(
                index=r.index,
                outcome=r.outcome,
                contract_no=r.contract_no,
                case_id=r.case_id,
                changed=r.changed,
                errors=[RowError(field=e.field, rule=e.rule, reason=e.reason) for e in r.errors],
            )
            for r in results
        ],
    )


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
    in the future. A known loan contract number updates its case, never a second
    one. Retried with the same ``Idempotency-Key``, the request changes nothing
    and returns the first answer."""
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
            response = JSONResponse(_summary(results).model_dump(mode="json"))
            await keys.record(uow, response)
            await uow.commit()
            return response

    result: Response = await retrying(attempt)
    return result
