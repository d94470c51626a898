"""Handlers of case events (case.events, keyed by case): the agents' teams.

``case.assigned.v1`` keeps ``qa_agents`` current (the team of the agent's latest
assignment), which the per-team score report groups by. It runs inside the consumer's
open unit of work and commits with the dedup row; a handler never commits.
"""

from __future__ import annotations

from collect_common.bus.consumer import Handler, HandlerContext
from collect_common.events.catalogue import Event
from collect_common.events.types import CaseAssigned
from qa_svc.service_layer.agents import case_assigned


def case_handlers() -> dict[str, Handler]:
    async def on_case_assigned(event: Event, ctx: HandlerContext) -> None:
        if not isinstance(event, CaseAssigned):
            raise TypeError(f"expected {CaseAssigned.type_name}, got {event.type_name}")
        await case_assigned(ctx.uow, event)

    return {CaseAssigned.type_name: on_case_assigned}
