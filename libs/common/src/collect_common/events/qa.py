"""qa-svc's live-rule events (QA-REALTIME, QA-QUIET), on ``qa.events``.

Ids, codes and instants only: no personal data. Keyed by debtor, as the
contact events that raised them.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal

from pydantic import Field

from collect_common.events.catalogue import Event

# What a live rule checked: too many calls in a sliding window, a call too short or too
# long (QA-REALTIME), a contact in the debtor's quiet hours (QA-QUIET).
AlertCheck = Literal["call_frequency", "call_duration", "quiet_hours"]


class QaAlertEvent(Event):
    topic: ClassVar[str] = "qa.events"
    key_field: ClassVar[str] = "debtor_id"
    alert_id: str
    debtor_id: str


class QaAlertRaised(QaAlertEvent):
    """A live rule was breached; one alert per breach, however many events show it."""

    type_name: ClassVar[str] = "qa.alert_raised.v1"
    rule_id: str = Field(examples=["QA-REALTIME"])
    check: AlertCheck
    case_id: str
    agent_id: str | None = None
    evidence_event_ids: list[str] = Field(description="Ids of the contact events that show it")
    window_start: datetime
    window_end: datetime
    raised_at: datetime
