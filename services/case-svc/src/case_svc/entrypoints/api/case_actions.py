"""What collectors and ops do to one case: hand it to an agent; skip tracing, contact
regained, legal escalation (CASE-SKIP)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from case_svc.entrypoints.api.deps import ContextDep, RuntimeDep
from case_svc.entrypoints.api.errors import ERRORS, as_problems
from case_svc.entrypoints.api.schemas import CaseOut
from case_svc.service_layer.assignment import (
    SKIP_RULE,
    CaseAction,
    act_on_case,
    assign_case,
)
from case_svc.service_layer.intake import retrying
from collect_common.security.auth import Role
from collect_common.web.auth import require_roles

router = APIRouter(prefix="/v1/cases", tags=["cases"])


class AssignRequest(BaseModel):
    agent_id: str = Field(min_length=1, max_length=64, examples=["agent-007"])


def _own_cases_only(request: Request) -> str | None:
    """An agent acts on the cases assigned to them only (SEC-ACCESS); ops on every case."""
    principal = request.state.principal
    return None if Role.OPS in principal.roles else str(principal.subject)


@router.post(
    "/{case_id}/assign",
    response_model=CaseOut,
    responses=ERRORS,
    summary="Hand the case to a named agent (not a suspended one: QA-SANCTION)",
    dependencies=[require_roles(Role.OPS)],
)
async def post_assign(
    case_id: str, body: AssignRequest, ctx: ContextDep, runtime: RuntimeDep
) -> CaseOut:
    async def attempt() -> CaseOut:
        async with runtime.uow() as uow:
            case = await assign_case(
                uow, ctx.cipher, case_id, body.agent_id, now=runtime.clock.now()
            )
            await uow.commit()
        return CaseOut.of(case)

    with as_problems(case_id):
        result: CaseOut = await retrying(attempt)
    return result


async def _act(
    case_id: str, action: CaseAction, request: Request, ctx: ContextDep, runtime: RuntimeDep
) -> CaseOut:
    async def attempt() -> CaseOut:
        async with runtime.uow() as uow:
            case = await act_on_case(
                uow,
                ctx.cipher,
                ctx.strategy,
                case_id,
                action,
                now=runtime.clock.now(),
                agent_id=_own_cases_only(request),
            )
            await uow.commit()
        return CaseOut.of(case)

    with as_problems(case_id, state_rule=SKIP_RULE):
        result: CaseOut = await retrying(attempt)
    return result


@router.post(
    "/{case_id}/skip-tracing",
    response_model=CaseOut,
    responses=ERRORS,
    summary="Contact lost: start lawful skip tracing (CASE-SKIP)",
    dependencies=[require_roles(Role.AGENT, Role.OPS)],
)
async def post_skip_tracing(
    case_id: str, request: Request, ctx: ContextDep, runtime: RuntimeDep
) -> CaseOut:
    return await _act(case_id, CaseAction.SKIP_TRACING, request, ctx, runtime)


@router.post(
    "/{case_id}/contact-regained",
    response_model=CaseOut,
    responses=ERRORS,
    summary="Skip tracing found the debtor: back in collection (CASE-SKIP)",
    dependencies=[require_roles(Role.AGENT, Role.OPS)],
)
async def post_contact_regained(
    case_id: str, request: Request, ctx: ContextDep, runtime: RuntimeDep
) -> CaseOut:
    return await _act(case_id, CaseAction.CONTACT_REGAINED, request, ctx, runtime)


@router.post(
    "/{case_id}/legal",
    response_model=CaseOut,
    responses=ERRORS,
    summary="Still unreachable: legal status and the legal track (CASE-SKIP)",
    dependencies=[require_roles(Role.AGENT, Role.OPS)],
)
async def post_legal(
    case_id: str, request: Request, ctx: ContextDep, runtime: RuntimeDep
) -> CaseOut:
    return await _act(case_id, CaseAction.LEGAL, request, ctx, runtime)
