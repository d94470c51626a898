"""Handlers of QA's events (qa.events): suspension and reinstatement of agents (QA-SANCTION).

Each runs inside the consumer's open unit of work (``ctx.uow``): its writes, the
events of the cases it moves (tracked on the unit of work) and the dedup row
commit together. A handler never commits. The field cipher is the process's
(installed by the runtime at start), as the encrypted columns use it too.
"""

from __future__ import annotations

from case_svc.service_layer.assignment import reinstate_agent, suspend_agent
from collect_common.bus.consumer import Handler, HandlerContext
from collect_common.events.catalogue import Event
from collect_common.events.types import AgentReinstated, AgentSuspended
from collect_common.security.crypto import get_field_cipher


async def on_agent_suspended(event: Event, ctx: HandlerContext) -> None:
    """Mark the agent suspended; move each open case of theirs to another eligible agent
    (CaseAssigned with previous_agent_id) or leave it without an agent (QA-SANCTION)."""
    if not isinstance(event, AgentSuspended):
        raise TypeError(f"expected {AgentSuspended.type_name}, got {event.type_name}")
    await suspend_agent(ctx.uow, get_field_cipher(), event.agent_id, at=event.suspended_at)


async def on_agent_reinstated(event: Event, ctx: HandlerContext) -> None:
    """Active again (retraining and exam passed); former cases are not moved back."""
    if not isinstance(event, AgentReinstated):
        raise TypeError(f"expected {AgentReinstated.type_name}, got {event.type_name}")
    await reinstate_agent(ctx.session, event.agent_id, at=event.reinstated_at)


QA_HANDLERS: dict[str, Handler] = {
    AgentSuspended.type_name: on_agent_suspended,
    AgentReinstated.type_name: on_agent_reinstated,
}
