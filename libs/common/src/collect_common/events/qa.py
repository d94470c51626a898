"""qa-svc's own events, on ``qa.events``: live-rule alerts (QA-REALTIME, QA-QUIET,
SMS-WEEKLY-CAP) and sanctions (QA-SANCTION).

Ids, codes, amounts and instants only: no personal data. Alerts are keyed by
debtor, as the contact events that raised them; sanctions by agent, as the
suspension and reinstatement events (``collect_common.events.types``).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import ClassVar, Literal

from pydantic import Field

from collect_common.events.catalogue import Event
from collect_common.events.types import QaEvent

# What a live rule checked: too many calls in a sliding window, a call too short or too
# long, speech too fast or too loud (QA-REALTIME), a contact in the debtor's quiet hours
# (QA-QUIET), more SMS in a debtor-local week than the cap (SMS-WEEKLY-CAP). New values
# are only ever added.
AlertCheck = Literal[
    "call_frequency", "call_duration", "quiet_hours", "speech_rate", "volume", "sms_weekly_cap"
]


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


# A step of the sanction ladder (QA-SANCTION).
SanctionKind = Literal["warning", "fine", "performance_deduction", "suspension"]


class QaSanctionApplied(QaEvent):
    """QA-SANCTION: a recorded violation moved the agent one step on the ladder.

    A suspension also travels as ``qa.agent_suspended.v1``, the event contact-svc
    and case-svc act on.
    """

    type_name: ClassVar[str] = "qa.sanction_applied.v1"
    sanction_id: str
    violation_id: str
    rule_id: str = Field(examples=["QA-SANCTION"])
    sanction: SanctionKind
    severity: Literal["minor", "serious"]
    amount: Decimal | None = Field(
        default=None, description="Fine or performance deduction; none for a warning or suspension"
    )
    retraining_until: datetime | None = Field(
        default=None, description="For a suspension: the earliest reinstatement"
    )
    applied_at: datetime
