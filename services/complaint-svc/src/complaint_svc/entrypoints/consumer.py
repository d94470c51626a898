"""Events complaint-svc consumes: topic subscriptions and one handler per event type.

Each handler runs inside the consumer's open unit of work (``ctx.uow``): its writes, the
events of the tickets it opens (tracked on the unit of work) and the dedup row commit
together. A handler never commits. The handlers need the complaint context (policy, clock),
made once the runtime exists: ``handlers`` takes a function that returns it.
"""

from __future__ import annotations

from collections.abc import Callable

from collect_common.bus.consumer import Handler, HandlerContext
from collect_common.events.catalogue import Event
from collect_common.events.contact import (
    ComplaintReported,
    LetterDelivered,
    LetterDispatched,
    LetterReturned,
    SmsSent,
)
from collect_common.events.types import (
    CallCompleted,
    CaseAssigned,
    CaseBucketChanged,
    CaseImported,
)
from complaint_svc.service_layer import contact, stats
from complaint_svc.service_layer.tickets import ComplaintContext

SUBSCRIBE: list[str] = ["case.events", "contact.events"]


def handlers(context: Callable[[], ComplaintContext]) -> dict[str, Handler]:
    async def on_complaint_reported(event: Event, ctx: HandlerContext) -> None:
        """COMP-CHANNELS (contact): open the call's ticket, its recording as evidence."""
        if not isinstance(event, ComplaintReported):
            raise TypeError(f"expected {ComplaintReported.type_name}, got {event.type_name}")
        complaints = context()
        await contact.file_reported_complaint(complaints, ctx.uow, event, complaints.clock.now())

    async def on_case_imported(event: Event, ctx: HandlerContext) -> None:
        if not isinstance(event, CaseImported):
            raise TypeError(f"expected {CaseImported.type_name}, got {event.type_name}")
        now = context().clock.now()
        await contact.case_imported(ctx.uow, event, now)
        await stats.case_imported(ctx.uow, event, now)  # COMP-STATS dimensions and stage

    async def on_case_bucket_changed(event: Event, ctx: HandlerContext) -> None:
        """COMP-STATS: the case's collection stage from the change's local day on."""
        if not isinstance(event, CaseBucketChanged):
            raise TypeError(f"expected {CaseBucketChanged.type_name}, got {event.type_name}")
        await stats.case_bucket_changed(ctx.uow, event, context().policy)

    async def on_case_assigned(event: Event, ctx: HandlerContext) -> None:
        if not isinstance(event, CaseAssigned):
            raise TypeError(f"expected {CaseAssigned.type_name}, got {event.type_name}")
        await contact.case_assigned(ctx.uow, event, context().clock.now())

    async def on_call_completed(event: Event, ctx: HandlerContext) -> None:
        if not isinstance(event, CallCompleted):
            raise TypeError(f"expected {CallCompleted.type_name}, got {event.type_name}")
        await contact.call_completed(ctx.uow, event)

    async def on_contact_made(event: Event, ctx: HandlerContext) -> None:
        """COMP-SLA-EVIDENCE: an SMS sent or a letter dispatched, delivered or returned is
        kept for the debtor's tickets and attached to those not closed."""
        if not isinstance(event, SmsSent | LetterDispatched | LetterDelivered | LetterReturned):
            raise TypeError(f"expected an SMS or letter event, got {event.type_name}")
        complaints = context()
        await contact.contact_made(complaints, ctx.uow, event, complaints.clock.now())

    return {
        ComplaintReported.type_name: on_complaint_reported,
        SmsSent.type_name: on_contact_made,
        LetterDispatched.type_name: on_contact_made,
        LetterDelivered.type_name: on_contact_made,
        LetterReturned.type_name: on_contact_made,
        CaseImported.type_name: on_case_imported,
        CaseAssigned.type_name: on_case_assigned,
        CaseBucketChanged.type_name: on_case_bucket_changed,
        CallCompleted.type_name: on_call_completed,
    }
