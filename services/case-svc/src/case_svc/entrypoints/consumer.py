"""Events case-svc consumes: topic subscriptions and one handler per event type."""

from case_svc.entrypoints.qa_handlers import QA_HANDLERS
from collect_common.bus.consumer import Handler

SUBSCRIBE: list[str] = ["qa.events"]
HANDLERS: dict[str, Handler] = {**QA_HANDLERS}  # suspension: the agent's cases move on
