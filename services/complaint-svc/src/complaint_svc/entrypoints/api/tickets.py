"""Complaint tickets (role ``complaint``): hotline intake, SLA steps, pause and resume,
the joint investigation's findings and outcome per cycle (COMP-JOINT), follow-up and
escalation (COMP-ESCALATE)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from collect_common.db import UnitOfWork
from collect_common.security.auth import Role
from collect_common.web.auth import require_roles
from collect_common.web.problems import PROBLEM_JSON, ProblemError
from complaint_svc.domain.handling import (
    Department,
    OutcomeInvalid,
    Remedy,
    SanctionSeverity,
    sanction_of,
)
from complaint_svc.domain.model import (
    STEPS,
    Channel,
    ComplaintType,
    JointInvestigationIncomplete,
    OutcomeMissing,
    Ticket,
    TicketStateError,
    UnknownStep,
)
from complaint_svc.entrypoints.api.deps import ContextDep, RuntimeDep
from complaint_svc.entrypoints.api.idempotent import PostDep
from complaint_svc.entrypoints.api.schemas import (
    FindingIn,
    FollowUpIn,
    HotlineComplaintIn,
    OutcomeIn,
    TicketOut,
)
from complaint_svc.service_layer.tickets import (
    Intake,
    OutcomeDecision,
    TicketNotFound,
    add_finding,
    complete_step,
    follow_up,
    get_ticket,
    open_ticket,
    pause_ticket,
    record_outcome,
    resume_ticket,
)

router = APIRouter(prefix="/v1/tickets", tags=["tickets"])
ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"content": {PROBLEM_JSON: {}}},
    409: {"content": {PROBLEM_JSON: {}}},
    422: {"content": {PROBLEM_JSON: {}}},
}


def _json(ticket: Ticket, status_code: int = 200) -> JSONResponse:
    return JSONResponse(TicketOut.of(ticket).model_dump(mode="json"), status_code=status_code)


@contextmanager
def _as_problems(ticket_id: str) -> Iterator[None]:
    try:
        yield
    except TicketNotFound:
        raise ProblemError(404, f"no ticket {ticket_id}", field="ticket_id") from None
    except UnknownStep as exc:
        raise ProblemError(
            404, f"no step {exc}; the steps are {', '.join(STEPS)}", field="step"
        ) from None
    except JointInvestigationIncomplete as exc:
        raise ProblemError(
            409,
            str(exc),
            rule="COMP-JOINT",
            slug="findings-missing",
            current_state=str(exc.current),
            cycle=exc.cycle,
            pending_departments=[d.value for d in exc.pending],
        ) from None
    except OutcomeMissing as exc:
        raise ProblemError(
            409,
            str(exc),
            rule="COMP-JOINT",
            slug="outcome-missing",
            current_state=str(exc.current),
            cycle=exc.cycle,
        ) from None
    except OutcomeInvalid as exc:
        raise ProblemError(422, str(exc), rule=exc.rule, field=exc.field) from None
    except TicketStateError as exc:
        raise ProblemError(
            409,
            str(exc),
            rule="COMP-LIFECYCLE",
            slug="ticket-state",
            current_state=str(exc.current),
        ) from None


@router.post(
    "",
    response_model=TicketOut,
    status_code=201,
    responses=ERRORS,
    summary="Record a complaint taken by a handler (COMP-RECORD); starts the SLA chain",
    dependencies=[require_roles(Role.COMPLAINT)],
)
async def post_ticket(
    body: HotlineComplaintIn, request: Request, post: PostDep, ctx: ContextDep
) -> Response:
    """Accepted at once: every step's deadline runs from now (the follow-up's from the
    result). Retried with the same ``Idempotency-Key``, it files nothing new and returns
    the first answer."""
    intake = Intake(
        channel=Channel(body.channel),
        type=ComplaintType(body.type),
        complainant_name=body.complainant_name,
        complainant_contact=body.complainant_contact,
        content=body.content,
        case_id=body.case_id,
        agent_id=body.agent_id,
    )

    async def work(uow: UnitOfWork) -> Response:
        ticket = await open_ticket(ctx, uow, intake, post.runtime.clock.now())
        return _json(ticket, 201)

    return await post.run(request.state.principal, work)


@router.get(
    "/{ticket_id}",
    response_model=TicketOut,
    responses=ERRORS,
    summary="A ticket with each step's deadline, state, warnings and breach",
    dependencies=[require_roles(Role.COMPLAINT)],
)
async def get_ticket_route(ticket_id: str, runtime: RuntimeDep) -> TicketOut:
    with _as_problems(ticket_id):
        async with runtime.uow() as uow:
            ticket = await get_ticket(uow, ticket_id)
    return TicketOut.of(ticket)


@router.post(
    "/{ticket_id}/steps/{step}/complete",
    response_model=TicketOut,
    responses=ERRORS,
    summary="Complete a step of the SLA chain; its timers stop (409 naming the state)",
    dependencies=[require_roles(Role.COMPLAINT)],
)
async def post_complete(
    ticket_id: str, step: str, ctx: ContextDep, runtime: RuntimeDep
) -> TicketOut:
    """Steps complete in order: contact, verify, evidence, investigate, resolve, followup.
    Completing ``resolve`` starts the follow-up's clock (COMP-SLA-FOLLOWUP)."""
    with _as_problems(ticket_id):
        async with runtime.uow() as uow:
            ticket = await complete_step(ctx, uow, ticket_id, step, runtime.clock.now())
            await uow.commit()
    return TicketOut.of(ticket)


async def _pause_or_resume(
    action: str, ticket_id: str, ctx: ContextDep, runtime: RuntimeDep
) -> TicketOut:
    command = pause_ticket if action == "pause" else resume_ticket
    with _as_problems(ticket_id):
        async with runtime.uow() as uow:
            ticket: Ticket = await command(ctx, uow, ticket_id, runtime.clock.now())
            await uow.commit()
    return TicketOut.of(ticket)


@router.post(
    "/{ticket_id}/pause",
    response_model=TicketOut,
    responses=ERRORS,
    summary="Wait on the complainant: every running SLA clock stops",
    dependencies=[require_roles(Role.COMPLAINT)],
)
async def post_pause(ticket_id: str, ctx: ContextDep, runtime: RuntimeDep) -> TicketOut:
    return await _pause_or_resume("pause", ticket_id, ctx, runtime)


@router.post(
    "/{ticket_id}/resume",
    response_model=TicketOut,
    responses=ERRORS,
    summary="The complainant answered: clocks run again, deadlines moved by the pause",
    dependencies=[require_roles(Role.COMPLAINT)],
)
async def post_resume(ticket_id: str, ctx: ContextDep, runtime: RuntimeDep) -> TicketOut:
    return await _pause_or_resume("resume", ticket_id, ctx, runtime)


@router.post(
    "/{ticket_id}/followup",
    response_model=TicketOut,
    responses=ERRORS,
    summary="Record the satisfaction follow-up: close, or escalate with a new cycle",
    dependencies=[require_roles(Role.COMPLAINT)],
)
async def post_followup(
    ticket_id: str, body: FollowUpIn, ctx: ContextDep, runtime: RuntimeDep
) -> TicketOut:
    """After the result (state ``resolved`` or ``followed_up``; 409 naming the state
    otherwise). Satisfied: the ticket is closed. Dissatisfied (COMP-ESCALATE): escalated
    to senior management (``complaint.escalated.v1``) and a new investigation cycle
    starts now: ``cycle`` +1, the investigate and resolve clocks and their timers restart
    (the follow-up's from the new result), the previous cycle's timers are cancelled."""
    with _as_problems(ticket_id):
        async with runtime.uow() as uow:
            ticket = await follow_up(
                ctx, uow, ticket_id, body.satisfied, body.note, runtime.clock.now()
            )
            await uow.commit()
    return TicketOut.of(ticket)


@router.post(
    "/{ticket_id}/findings",
    response_model=TicketOut,
    status_code=201,
    responses=ERRORS,
    summary="Add a department's findings to the cycle under way (COMP-JOINT)",
    dependencies=[require_roles(Role.COMPLAINT)],
)
async def post_finding(
    ticket_id: str, body: FindingIn, request: Request, post: PostDep, ctx: ContextDep
) -> Response:
    """Collection, compliance and customer service each add theirs (the text is kept
    encrypted; the author is the caller). Until the cycle's outcome is recorded; 409
    naming the state after it. The ticket lists ``pending_departments``. Retried with the
    same ``Idempotency-Key``, it adds nothing and returns the first answer."""
    principal = request.state.principal

    async def work(uow: UnitOfWork) -> Response:
        ticket = await add_finding(
            ctx,
            uow,
            ticket_id,
            Department(body.department),
            principal.subject,
            body.text,
            post.runtime.clock.now(),
        )
        return _json(ticket, 201)

    with _as_problems(ticket_id):
        return await post.run(principal, work)


@router.post(
    "/{ticket_id}/outcome",
    response_model=TicketOut,
    responses=ERRORS,
    summary="Record the cycle's outcome: substantiated, remedies, sanction request, apology",
    dependencies=[require_roles(Role.COMPLAINT)],
)
async def post_outcome(
    ticket_id: str, body: OutcomeIn, request: Request, post: PostDep, ctx: ContextDep
) -> Response:
    """Once per cycle, while the ticket is ``investigating`` and after all three
    departments' findings (409 ``findings-missing`` naming the departments, rule
    COMP-JOINT). A fee waiver names its amount, at most the policy's
    ``fee_waiver_max_amount``; a sanction (severity minor or serious) only for a
    substantiated complaint (422, rule COMP-SANCTION). Emits
    ``complaint.outcome_recorded.v1``; completing ``resolve`` needs it. Retried with the
    same ``Idempotency-Key``, it returns the first answer."""
    with _as_problems(ticket_id):
        decision = OutcomeDecision(
            substantiated=body.substantiated,
            remedies=tuple(Remedy(r) for r in body.remedies),
            fee_waiver_amount=body.fee_waiver_amount,
            sanction_severity=sanction_of(
                body.sanction_requested,
                None
                if body.sanction_severity is None
                else SanctionSeverity(body.sanction_severity),
            ),
            apology_recorded=body.apology_recorded,
        )
        principal = request.state.principal

        async def work(uow: UnitOfWork) -> Response:
            ticket = await record_outcome(
                ctx, uow, ticket_id, decision, principal.subject, post.runtime.clock.now()
            )
            return _json(ticket)

        return await post.run(principal, work)
