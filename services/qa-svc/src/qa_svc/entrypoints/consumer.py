"""Events qa-svc consumes: topic subscriptions and one handler per event type.

``HANDLERS`` run the live rules with the default policy and no metrics; the
runtime built by :func:`qa_svc.bootstrap.bootstrap` uses :func:`handlers` with the
configured policy and its own metrics registry.
"""

from collections.abc import Callable

from collect_common.bus.consumer import Handler
from collect_common.clock import Clock, SystemClock
from qa_svc.domain.policy import QaPolicy
from qa_svc.entrypoints.case_handlers import case_handlers
from qa_svc.entrypoints.complaint_handlers import complaint_handlers
from qa_svc.entrypoints.contact_handlers import contact_handlers
from qa_svc.service_layer.live_rules import LiveRules

SUBSCRIBE: list[str] = ["contact.events", "complaint.events", "case.events"]


def handlers(live: Callable[[], LiveRules], clock: Clock) -> dict[str, Handler]:
    return {
        **contact_handlers(live, clock),  # QA-REALTIME, QA-QUIET, SMS-WEEKLY-CAP
        **complaint_handlers(live, clock),  # QA-FEEDBACK
        **case_handlers(),  # agents' teams, for QA-SCORE reports per team
    }


_DEFAULT = LiveRules(QaPolicy())
HANDLERS: dict[str, Handler] = handlers(lambda: _DEFAULT, SystemClock())
