"""complaint-svc's configurable business values, one field per rule, per bank contract.

Durations of the COMP-SLA chain are minutes. Every step but the follow-up runs
from acceptance; the follow-up runs from the result (COMP-SLA-FOLLOWUP).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Self

from pydantic import model_validator

from collect_common.policy import Policy, rule


class ComplaintPolicy(Policy):
    # rule: COMP-SLA-* (minutes from acceptance, follow-up from the result)
    contact_minutes: int = rule(
        "COMP-SLA-CONTACT", "Minutes from acceptance to call the complainant back", default=10, ge=1
    )
    verify_minutes: int = rule(
        "COMP-SLA-VERIFY", "Minutes from acceptance to initial verification", default=120, ge=1
    )
    evidence_minutes: int = rule(
        "COMP-SLA-EVIDENCE",
        "Minutes from acceptance to evidence (recordings, SMS, notes) collected",
        default=240,
        ge=1,
    )
    investigate_minutes: int = rule(
        "COMP-SLA-INVESTIGATE",
        "Minutes from acceptance to the preliminary investigation",
        default=480,
        ge=1,
    )
    resolve_minutes: int = rule(
        "COMP-SLA-RESOLVE",
        "Minutes from acceptance to the result and remedy communicated",
        default=1440,
        ge=1,
    )
    followup_minutes: int = rule(
        "COMP-SLA-FOLLOWUP",
        "Minutes from the result to the satisfaction follow-up",
        default=2880,
        ge=1,
    )
    # rule: COMP-SLA-WARN (share of a step's time after which it is flagged)
    warning_first_percent: int = rule(
        "COMP-SLA-WARN", "First warning, in percent of a step's time", default=50, ge=1, le=99
    )
    warning_second_percent: int = rule(
        "COMP-SLA-WARN", "Second warning, in percent of a step's time", default=75, ge=1, le=99
    )
    # rule: COMP-CHANNELS (the public portal form)
    portal_max_body_bytes: int = rule(
        "COMP-CHANNELS", "Largest portal complaint form accepted, in bytes", default=16384, ge=1024
    )
    # rule: COMP-CHANNELS (the e-mail a mail gateway forwards, attachments included)
    email_max_bytes: int = rule(
        "COMP-CHANNELS",
        "Largest raw complaint e-mail (RFC 822) accepted, in bytes",
        default=10 * 1024 * 1024,
        ge=65536,
    )

    # rule: COMP-SLA-EVIDENCE (the debtor's call recordings filed with a new ticket)
    evidence_recording_days: int = rule(
        "COMP-SLA-EVIDENCE",
        "Days of the debtor's call recordings attached to a new ticket as evidence",
        default=30,
        ge=0,
    )

    @model_validator(mode="after")
    def _warnings_ascend(self) -> Self:
        if not self.warning_first_percent < self.warning_second_percent:
            raise ValueError(
                "COMP-SLA-WARN: warning_first_percent must be below warning_second_percent"
            )
        return self

    def duration(self, step: str) -> timedelta:
        """The time allowed for ``step`` (KeyError for an unknown step)."""
        return timedelta(minutes=int(getattr(self, STEP_FIELDS[step])))

    def rule_of_step(self, step: str) -> str:
        return self.rule_of(STEP_FIELDS[step])


STEP_FIELDS: dict[str, str] = {
    "contact": "contact_minutes",
    "verify": "verify_minutes",
    "evidence": "evidence_minutes",
    "investigate": "investigate_minutes",
    "resolve": "resolve_minutes",
    "followup": "followup_minutes",
}
