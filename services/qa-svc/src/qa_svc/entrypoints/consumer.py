"""Events qa-svc consumes: topic subscriptions and one handler per event type."""

from collect_common.bus.consumer import Handler

SUBSCRIBE: list[str] = ["contact.events", "complaint.events"]
HANDLERS: dict[str, Handler] = {}
