"""Handlers of contact events (contact.events, keyed by debtor): the live rules.

Each runs inside the consumer's open unit of work (``ctx.uow``): the window state,
the alert and its ``qa.alert_raised.v1`` event commit with the dedup row. A
handler never commits. The evidence ids are the contact events' envelope ids.
"""

from __future__ import annotations

from collections.abc import Callable

from collect_common.bus.consumer import Handler, HandlerContext
from collect_common.clock import Clock
from collect_common.events.catalogue import Event
from collect_common.events.types import CallCompleted, ContactAttempted
from qa_svc.service_layer.live_rules import Contact, LiveRules, call_completed, contact_attempted


def contact_handlers(live: Callable[[], LiveRules], clock: Clock) -> dict[str, Handler]:
    """The handlers, reading the live rules' policy and metrics from ``live()``."""

    async def on_contact_attempted(event: Event, ctx: HandlerContext) -> None:
        if not isinstance(event, ContactAttempted):
            raise TypeError(f"expected {ContactAttempted.type_name}, got {event.type_name}")
        contact = Contact(
            event_id=ctx.envelope.id,
            debtor_id=event.debtor_id,
            case_id=event.case_id,
            contact_id=event.contact_id,
            agent_id=event.agent_id,
            channel=event.channel,
            at=event.attempted_at,
            timezone=getattr(event, "debtor_timezone", None),
            bucket=getattr(event, "bucket", None),  # QA-SAMPLE; none: "unknown" at the draw
        )
        await contact_attempted(ctx.uow, live(), contact, clock.now())

    async def on_call_completed(event: Event, ctx: HandlerContext) -> None:
        if not isinstance(event, CallCompleted):
            raise TypeError(f"expected {CallCompleted.type_name}, got {event.type_name}")
        contact = Contact(
            event_id=ctx.envelope.id,
            debtor_id=event.debtor_id,
            case_id=event.case_id,
            contact_id=event.contact_id,
            agent_id=event.agent_id,
            channel="call",
            at=event.started_at,
            timezone=getattr(event, "debtor_timezone", None),
        )
        await call_completed(ctx.uow, live(), contact, event.duration_seconds, clock.now())

    return {
        ContactAttempted.type_name: on_contact_attempted,
        CallCompleted.type_name: on_call_completed,
    }
