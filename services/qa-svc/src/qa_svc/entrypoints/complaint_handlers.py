"""Handlers of complaint events (complaint.events, keyed by ticket): QA-FEEDBACK.

``complaint.outcome_recorded.v1`` runs inside the consumer's open unit of work: the kept
outcome, the re-check task, the violation and its sanction events commit with the dedup
row. A handler never commits.
"""

from __future__ import annotations

from collections.abc import Callable

from collect_common.bus.consumer import Handler, HandlerContext
from collect_common.clock import Clock
from collect_common.events.catalogue import Event
from collect_common.events.complaint import ComplaintOutcomeRecorded
from qa_svc.service_layer.feedback import outcome_recorded
from qa_svc.service_layer.live_rules import LiveRules


def complaint_handlers(live: Callable[[], LiveRules], clock: Clock) -> dict[str, Handler]:
    """The handlers, reading the policy (the sanction ladder's) from ``live()``."""

    async def on_outcome_recorded(event: Event, ctx: HandlerContext) -> None:
        if not isinstance(event, ComplaintOutcomeRecorded):
            raise TypeError(f"expected {ComplaintOutcomeRecorded.type_name}, got {event.type_name}")
        await outcome_recorded(ctx.uow, live().policy, event, clock.now())

    return {ComplaintOutcomeRecorded.type_name: on_outcome_recorded}
