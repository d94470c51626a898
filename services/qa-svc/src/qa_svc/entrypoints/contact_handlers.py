"""Handlers of contact events (contact.events, keyed by debtor): the live rules.

One batch handler takes every contact event type the rules read: the consumer hands
it each run of a batch's new contact events in one call, inside its open unit of work
(``ctx.uow``), and the window state, the alerts and their ``qa.alert_raised.v1``
events commit with the dedup rows. It never commits. The evidence ids are the contact
events' envelope ids; each alert event is emitted as caused by the event that raised it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from collect_common.bus.consumer import BatchHandler, Handler, HandlerContext
from collect_common.clock import Clock
from collect_common.events.catalogue import Event
from collect_common.events.contact import SmsSent
from collect_common.events.types import CallCompleted, ContactAttempted
from qa_svc.service_layer.live_rules import (
    Attempted,
    Completed,
    Contact,
    Fact,
    LiveRules,
    evaluate,
)
from qa_svc.service_layer.live_rules import SmsSent as SmsSentFact


def _optional(event: Event, name: str) -> str | None:
    """A field the event's type may carry (``None`` when its type has no such field)."""
    if name not in type(event).model_fields:
        return None
    value = getattr(event, name)
    return None if value is None else str(value)


def contact_fact(event: Event, event_id: str) -> Fact:
    """What the rules look at in one contact event (``event_id``: its envelope id)."""
    if isinstance(event, ContactAttempted):
        return Attempted(
            Contact(
                event_id=event_id,
                debtor_id=event.debtor_id,
                case_id=event.case_id,
                contact_id=event.contact_id,
                agent_id=event.agent_id,
                channel=event.channel,
                at=event.attempted_at,
                timezone=_optional(event, "debtor_timezone"),
                bucket=_optional(event, "bucket"),  # QA-SAMPLE; none: "unknown" at the draw
            )
        )
    if isinstance(event, CallCompleted):
        return Completed(
            Contact(
                event_id=event_id,
                debtor_id=event.debtor_id,
                case_id=event.case_id,
                contact_id=event.contact_id,
                agent_id=event.agent_id,
                channel="call",
                at=event.started_at,
                timezone=_optional(event, "debtor_timezone"),
            ),
            seconds=event.duration_seconds,
            speech_rate_wpm=event.speech_rate_wpm,
            volume_db=event.volume_db,
        )
    if isinstance(event, SmsSent):
        return SmsSentFact(
            Contact(
                event_id=event_id,
                debtor_id=event.debtor_id,
                case_id=event.case_id,
                contact_id=event.message_id,
                agent_id=event.agent_id,
                channel="sms",
                at=event.sent_at,
                timezone=_optional(event, "debtor_timezone"),
            )
        )
    raise TypeError(f"not a contact event the live rules read: {event.type_name}")


class ContactRules(BatchHandler):
    """The live rules over a run of contact events, reading policy and metrics from ``live()``."""

    def __init__(self, live: Callable[[], LiveRules], clock: Clock) -> None:
        self._live = live
        self._clock = clock

    async def handle_batch(self, items: Sequence[tuple[Event, HandlerContext]]) -> None:
        if not items:
            return
        facts = [contact_fact(event, ctx.envelope.id) for event, ctx in items]
        raised = await evaluate(items[0][1].uow, self._live(), facts, self._clock.now())
        for (_, ctx), events in zip(items, raised, strict=True):
            ctx.emit(*events)


def contact_handlers(live: Callable[[], LiveRules], clock: Clock) -> dict[str, Handler]:
    """The handlers, one batch handler for all the contact events the rules read."""
    rules = ContactRules(live, clock)
    return {
        ContactAttempted.type_name: rules,
        CallCompleted.type_name: rules,
        SmsSent.type_name: rules,
    }
