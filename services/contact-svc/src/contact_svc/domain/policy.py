"""contact-svc's configurable business values, one field per rule, per bank contract.

Loaded into a ``PolicyBook[ContactPolicy]``; the version in force is passed to the
decision function (``domain.decision``), which holds no business numbers of its own.
"""

from __future__ import annotations

from datetime import time
from typing import Literal, Self

from pydantic import model_validator

from collect_common.policy import Policy, rule

ContactChannel = Literal["call", "sms", "letter", "visit"]
CaseStatus = Literal["active", "skip_tracing", "legal", "plan", "settled", "recalled", "closed"]


class ContactPolicy(Policy):
    # rule: CALL-QUIET. Half-open local intervals [start, end); end before start crosses midnight.
    quiet_periods: tuple[tuple[time, time], ...] = rule(
        "CALL-QUIET",
        "Periods of the debtor's local day with no calls, [start, end)",
        default=((time(12, 0), time(14, 0)), (time(20, 0), time(8, 0))),
    )
    # rule: CALL-QUIET (a field visit at the door is held to the same hours as a call)
    quiet_channels: tuple[ContactChannel, ...] = rule(
        "CALL-QUIET",
        "Channels the quiet periods apply to, at the instant the contact would happen",
        default=("call", "visit"),
    )
    # rule: CALL-DAILY-CAP (the debtor's local calendar day, all agents together)
    daily_call_cap: int = rule(
        "CALL-DAILY-CAP", "Call attempts per debtor per local day", default=3, ge=1, le=5
    )
    daily_unanswered_cap: int = rule(
        "CALL-DAILY-CAP",
        "Unanswered call attempts per debtor per local day",
        default=2,
        ge=1,
        le=5,
    )
    # rule: SMS-WEEKLY-CAP (ISO week, Monday 00:00 to Monday 00:00 debtor-local)
    sms_weekly_cap: int = rule(
        "SMS-WEEKLY-CAP", "SMS per debtor per ISO week (debtor-local)", default=3, ge=1, le=3
    )
    # rule: CASE-STRATEGY (the channels a case may use before its track is known)
    channels_without_track: tuple[ContactChannel, ...] = rule(
        "CASE-STRATEGY",
        "Channels a case may use before case-svc has set its track",
        default=("call", "sms"),
    )
    # rule: CASE-LIFECYCLE (statuses in which all contact stops)
    no_contact_statuses: tuple[CaseStatus, ...] = rule(
        "CASE-LIFECYCLE",
        "Case statuses in which no contact is allowed",
        default=("settled", "recalled", "closed"),
    )

    # rule: LETTER (registered mail or express: delivery is tracked and proof kept)
    letter_carriers: tuple[str, ...] = rule(
        "LETTER",
        "Carriers a formal letter may be dispatched with (tracked services only)",
        default=("registered_mail", "express"),
        min_length=1,
    )
    # rule: VISIT-TEAM
    visit_min_staff: int = rule(
        "VISIT-TEAM", "Trained staff on every field visit, at least", default=2, ge=2, le=6
    )
    visit_max_staff: int = rule(
        "VISIT-TEAM", "Staff on one field visit, at most", default=4, ge=2, le=10
    )
    visit_min_recordings: int = rule(
        "VISIT-TEAM",
        "Audio/video recording references a completed visit must carry, at least",
        default=1,
        ge=1,
        le=10,
    )

    @model_validator(mode="after")
    def _periods_are_not_empty(self) -> Self:
        for start, end in self.quiet_periods:
            if start == end:
                raise ValueError("CALL-QUIET: a quiet period must not start where it ends")
        if self.visit_max_staff < self.visit_min_staff:
            raise ValueError("VISIT-TEAM: visit_max_staff must not be below visit_min_staff")
        return self
