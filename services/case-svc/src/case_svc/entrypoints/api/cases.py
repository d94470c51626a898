"""One case: its status and progress; the bank's payments and recall."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from case_svc.entrypoints.api.deps import ContextDep, RuntimeDep
from case_svc.entrypoints.api.errors import ERRORS, as_problems, bank_scope
from case_svc.entrypoints.api.schemas import CaseOut, PaymentRequest, RecallRequest
from case_svc.service_layer.intake import (
    get_case,
    recall_case,
    record_payment,
    retrying,
)
from collect_common.security.auth import Role
from collect_common.web.auth import require_roles

router = APIRouter(prefix="/v1/cases", tags=["cases"])


@router.get(
    "/{case_id}",
    response_model=CaseOut,
    responses=ERRORS,
    summary="Status and progress of one case (personal data masked)",
    dependencies=[require_roles(Role.BANK, Role.AGENT, Role.OPS, Role.AUDITOR)],
)
async def read_case(
    case_id: str, request: Request, ctx: ContextDep, runtime: RuntimeDep
) -> CaseOut:
    with as_problems(case_id):
        async with runtime.uow() as uow:
            case = await get_case(ctx, uow, case_id, bank_scope(request))
    return CaseOut.of(case)


@router.post(
    "/{case_id}/payments",
    response_model=CaseOut,
    status_code=201,
    responses=ERRORS,
    summary="Record a partial or full payment (idempotent on payment_id)",
    dependencies=[require_roles(Role.BANK)],
)
async def post_payment(
    case_id: str, body: PaymentRequest, request: Request, ctx: ContextDep, runtime: RuntimeDep
) -> Response:
    """A payment that covers the balance settles the case, and contact stops. The
    same ``payment_id`` again is a retry: 200 with the case, nothing recorded twice."""
    bank_id = request.state.principal.subject

    async def attempt() -> Response:
        async with runtime.uow() as uow:
            result = await record_payment(
                ctx,
                uow,
                case_id,
                payment_id=body.payment_id,
                amount=body.amount,
                paid_at=body.paid_at,
                bank_id=bank_id,
                now=runtime.clock.now(),
            )
            await uow.commit()
        return JSONResponse(
            CaseOut.of(result.case).model_dump(mode="json"),
            status_code=201 if result.recorded else 200,
        )

    with as_problems(case_id):
        response: Response = await retrying(attempt)
    return response


@router.post(
    "/{case_id}/recall",
    response_model=CaseOut,
    responses=ERRORS,
    summary="The bank withdraws the account: all contact must stop",
    dependencies=[require_roles(Role.BANK)],
)
async def post_recall(
    case_id: str, body: RecallRequest, request: Request, ctx: ContextDep, runtime: RuntimeDep
) -> CaseOut:
    bank_id = request.state.principal.subject
    with as_problems(case_id):
        async with runtime.uow() as uow:
            case = await recall_case(
                ctx, uow, case_id, reason=body.reason, bank_id=bank_id, now=runtime.clock.now()
            )
            await uow.commit()
    return CaseOut.of(case)
