"""Events case-svc consumes: topic subscriptions and one handler per event type."""

from collect_common.bus.consumer import Handler

SUBSCRIBE: list[str] = ["qa.events"]
HANDLERS: dict[str, Handler] = {}
