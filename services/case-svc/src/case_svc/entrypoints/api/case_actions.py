"""What collectors and ops do to one case: hand it to an agent or take it back (with
the audit trail of hand-overs); skip tracing, contact regained, legal escalation
(CASE-SKIP); and the repair pass of the daily bucket timers (CASE-BUCKET)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from sqlalchemy import select

from case_svc.adapters.assignment_tables import case_assignment_log
from case_svc.entrypoints.api.deps import ContextDep, RuntimeDep
from case_svc.entrypoints.api.errors import ERRORS, as_problems
from case_svc.entrypoints.api.schemas import AssignmentLogOut, CaseOut, RepairOut
from case_svc.entrypoints.scheduler import repair_timers
from case_svc.service_layer.assignment import (
    SKIP_RULE,
    CaseAction,
    act_on_case,
    assign_case,
    unassign_case,
)
from case_svc.service_layer.intake import retrying
from collect_common.security.auth import Role
from collect_common.web.auth import require_roles
from collect_common.web.pagination import Page, PageQuery

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
    case_id: str, body: AssignRequest, request: Request, ctx: ContextDep, runtime: RuntimeDep
) -> CaseOut:
    """CaseAssigned (``previous_agent_id`` when it changes hands); 409 naming the case's
    state when it is no longer in collection."""
    actor = str(request.state.principal.subject)

    async def attempt() -> CaseOut:
        async with runtime.uow() as uow:
            case = await assign_case(
                uow, ctx.cipher, case_id, body.agent_id, now=runtime.clock.now(), actor=actor
            )
            await uow.commit()
        return CaseOut.of(case)

    with as_problems(case_id):
        result: CaseOut = await retrying(attempt)
    return result


@router.post(
    "/{case_id}/unassign",
    response_model=CaseOut,
    responses=ERRORS,
    summary="Take the case from its agent; the next assignment run hands it on",
    dependencies=[require_roles(Role.OPS)],
)
async def post_unassign(
    case_id: str, request: Request, ctx: ContextDep, runtime: RuntimeDep
) -> CaseOut:
    """CaseUnassigned naming the previous agent; nothing when the case has no agent. 409
    naming the case's state when it is no longer in collection."""
    actor = str(request.state.principal.subject)

    async def attempt() -> CaseOut:
        async with runtime.uow() as uow:
            case = await unassign_case(
                uow, ctx.cipher, case_id, now=runtime.clock.now(), actor=actor
            )
            await uow.commit()
        return CaseOut.of(case)

    with as_problems(case_id):
        result: CaseOut = await retrying(attempt)
    return result


@router.get(
    "/{case_id}/assignments",
    response_model=Page[AssignmentLogOut],
    summary="Who held the case: every hand-over, oldest first, with who acted and why",
    dependencies=[require_roles(Role.OPS, Role.AUDITOR)],
)
async def list_assignments(
    case_id: str, page: PageQuery, runtime: RuntimeDep
) -> Page[AssignmentLogOut]:
    t = case_assignment_log
    query = page.keyset(select(t).where(t.c.case_id == case_id), [t.c.seq])
    async with runtime.sessions() as session:
        rows = (await session.execute(query)).all()
    items, next_cursor = page.page_of(rows, lambda r: (r.seq,))
    return Page[AssignmentLogOut](
        items=[AssignmentLogOut.of(r) for r in items], next_cursor=next_cursor
    )


@router.post(
    "/bucket-timers/repair",
    response_model=RepairOut,
    summary="Give every open case without a pending daily bucket timer one (CASE-BUCKET)",
    dependencies=[require_roles(Role.OPS)],
)
async def post_bucket_timer_repair(runtime: RuntimeDep) -> RepairOut:
    """Set-based: one statement, whatever the number of cases. A repaired timer is due at
    once (the bucket is recomputed on the scheduler's next poll), then daily."""
    return RepairOut(repaired=await repair_timers(runtime))


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
