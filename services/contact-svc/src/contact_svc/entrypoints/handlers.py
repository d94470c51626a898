"""Handlers of case-svc's events (case.events) and QA's (qa.events): the read model the
contact-policy engine decides from; and of complaint-svc's (complaint.events): a new
complaint puts its case's debtor on a complaint hold, its ticket closed lifts it
(CONTACT-CONDUCT).

Each runs inside the consumer's open unit of work (``ctx.uow``); a handler never commits.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from collect_common.bus.consumer import Handler, HandlerContext
from collect_common.events.catalogue import Event
from collect_common.events.complaint import ComplaintClosed
from collect_common.events.types import (
    AgentReinstated,
    AgentSuspended,
    CaseClosed,
    CaseImported,
    CaseRecalled,
    CaseSettled,
    CaseStatusChanged,
    CaseStrategyChanged,
    ComplaintOpened,
)
from contact_svc.service_layer import holds, read_model

E = TypeVar("E", bound=Event)


def _typed(kind: type[E], fn: Callable[[E, HandlerContext], Awaitable[None]]) -> Handler:
    async def handler(event: Event, ctx: HandlerContext) -> None:
        if not isinstance(event, kind):
            raise TypeError(f"expected {kind.type_name}, got {event.type_name}")
        await fn(event, ctx)

    return handler


async def on_imported(event: CaseImported, ctx: HandlerContext) -> None:
    await read_model.case_imported(
        ctx.session,
        case_id=event.case_id,
        debtor_id=event.debtor_id,
        bank_id=event.bank_id,
        timezone=event.debtor_timezone,
        at=ctx.envelope.time,
    )


async def on_strategy(event: CaseStrategyChanged, ctx: HandlerContext) -> None:
    """CASE-STRATEGY: the channels the case's track allows."""
    await read_model.case_track(
        ctx.session, event.case_id, event.track, event.channels, ctx.envelope.time
    )


async def on_recalled(event: CaseRecalled, ctx: HandlerContext) -> None:
    await read_model.case_status(ctx.session, event.case_id, "recalled", event.recalled_at)


async def on_settled(event: CaseSettled, ctx: HandlerContext) -> None:
    await read_model.case_status(ctx.session, event.case_id, "settled", event.settled_at)


async def on_closed(event: CaseClosed, ctx: HandlerContext) -> None:
    await read_model.case_status(ctx.session, event.case_id, "closed", event.closed_at)


async def on_status(event: CaseStatusChanged, ctx: HandlerContext) -> None:
    await read_model.case_status(ctx.session, event.case_id, event.status, event.changed_at)


async def on_suspended(event: AgentSuspended, ctx: HandlerContext) -> None:
    """QA-SANCTION: a suspended agent's next decision is a denial."""
    await read_model.agent_suspension(
        ctx.session, event.agent_id, suspended=True, at=event.suspended_at
    )


async def on_reinstated(event: AgentReinstated, ctx: HandlerContext) -> None:
    await read_model.agent_suspension(
        ctx.session, event.agent_id, suspended=False, at=event.reinstated_at
    )


async def on_complaint_opened(event: ComplaintOpened, ctx: HandlerContext) -> None:
    """CONTACT-CONDUCT: no contact with a debtor while their complaint is investigated."""
    await holds.complaint_opened(
        ctx.uow, ticket_id=event.ticket_id, case_id=event.case_id, at=event.opened_at
    )


async def on_complaint_closed(event: ComplaintClosed, ctx: HandlerContext) -> None:
    """CONTACT-CONDUCT: the complaint is resolved; its hold no longer stops contact."""
    await holds.complaint_closed(ctx.uow, ticket_id=event.ticket_id, at=event.closed_at)


CASE_HANDLERS: dict[str, Handler] = {
    CaseImported.type_name: _typed(CaseImported, on_imported),
    CaseStrategyChanged.type_name: _typed(CaseStrategyChanged, on_strategy),
    CaseRecalled.type_name: _typed(CaseRecalled, on_recalled),
    CaseSettled.type_name: _typed(CaseSettled, on_settled),
    CaseClosed.type_name: _typed(CaseClosed, on_closed),
    CaseStatusChanged.type_name: _typed(CaseStatusChanged, on_status),
}
QA_HANDLERS: dict[str, Handler] = {
    AgentSuspended.type_name: _typed(AgentSuspended, on_suspended),
    AgentReinstated.type_name: _typed(AgentReinstated, on_reinstated),
}
COMPLAINT_HANDLERS: dict[str, Handler] = {
    ComplaintOpened.type_name: _typed(ComplaintOpened, on_complaint_opened),
    ComplaintClosed.type_name: _typed(ComplaintClosed, on_complaint_closed),
}
