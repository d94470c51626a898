"""Events contact-svc consumes: topic subscriptions and one handler per event type."""

from collect_common.bus.consumer import Handler
from contact_svc.entrypoints.handlers import CASE_HANDLERS, COMPLAINT_HANDLERS, QA_HANDLERS

SUBSCRIBE: list[str] = ["case.events", "qa.events", "complaint.events"]
HANDLERS: dict[str, Handler] = {**CASE_HANDLERS, **QA_HANDLERS, **COMPLAINT_HANDLERS}
