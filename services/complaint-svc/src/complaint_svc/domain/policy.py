"""complaint-svc's configurable business values, one field per rule, per bank contract.

Durations of the COMP-SLA chain are minutes. Every step but the follow-up runs
from acceptance; the follow-up runs from the result (COMP-SLA-FOLLOWUP).

A step counts its minutes around the clock (24x7) unless the contract gives it a
business-hours calendar (``<step>_calendar``): then its minutes are working minutes
and its deadline and warnings fall in working time (``domain.calendar``). In a
policy file::

    [[policies]]
    contract = "bank-a"
    resolve_minutes = 480                      # 8 working hours
    [policies.resolve_calendar]
    working_days = [1, 2, 3, 4, 5]
    hours = [["09:00", "12:00"], ["13:30", "18:00"]]
    timezone = "Asia/Shanghai"
    holidays = ["2026-10-01", "2026-10-02"]
    extra_working_days = ["2026-09-27"]
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from decimal import Decimal
from functools import cached_property
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from collect_common.policy import Policy, rule
from complaint_svc.domain.calendar import DEFAULT_TIMEZONE, BusinessCalendar, CalendarError


class BusinessHours(BaseModel):
    """A business-hours calendar as configured (COMP-SLA-*)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    working_days: tuple[int, ...] = Field(
        default=(1, 2, 3, 4, 5), description="ISO weekdays worked: 1 Monday .. 7 Sunday"
    )
    hours: tuple[tuple[time, time], ...] = Field(
        default=((time(9, 0), time(18, 0)),),
        description="Working windows of a working day, local time, in order",
    )
    timezone: str = Field(default=DEFAULT_TIMEZONE, examples=["Asia/Shanghai"])
    holidays: tuple[date, ...] = Field(default=(), description="Local dates off")
    extra_working_days: tuple[date, ...] = Field(
        default=(), description="Local dates worked whatever the weekday (make-up days)"
    )

    @model_validator(mode="after")
    def _counts_time(self) -> Self:
        self.calendar()  # CalendarError (a ValueError) names what is wrong
        return self

    def calendar(self) -> BusinessCalendar:
        try:
            return BusinessCalendar(
                working_days=frozenset(self.working_days),
                hours=self.hours,
                timezone=self.timezone,
                holidays=frozenset(self.holidays),
                extra_working_days=frozenset(self.extra_working_days),
            )
        except CalendarError as exc:
            raise ValueError(f"COMP-SLA-*: {exc}") from None


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
    # rule: COMP-CHANNELS (the portal form's rate limit per client address, all replicas)
    portal_rate_limit: int = rule(
        "COMP-CHANNELS",
        "Portal complaint forms accepted per client address in one rate window",
        default=10,
        ge=1,
    )
    portal_rate_window_seconds: int = rule(
        "COMP-CHANNELS", "Length of the portal's rate window, in seconds", default=60, ge=1, le=3600
    )

    # rule: COMP-STATS (report boundaries and sizes)
    reporting_timezone: str = rule(
        "COMP-STATS",
        "IANA time zone in which report weeks (ISO, Monday first) and months begin and end",
        default="Asia/Shanghai",
        min_length=1,
        max_length=64,
    )
    trend_max_months: int = rule(
        "COMP-STATS", "Most months one monthly trend report covers", default=24, ge=1, le=120
    )

    # rule: COMP-SLA-EVIDENCE (the debtor's call recordings filed with a new ticket)
    evidence_recording_days: int = rule(
        "COMP-SLA-EVIDENCE",
        "Days of the debtor's call recordings attached to a new ticket as evidence",
        default=30,
        ge=0,
    )
    # rule: COMP-SLA-EVIDENCE (the debtor's SMS and letters filed with a ticket)
    evidence_contact_days: int = rule(
        "COMP-SLA-EVIDENCE",
        "Days before a ticket's acceptance from which the debtor's SMS and letters (sent, "
        "dispatched, delivered, returned) are attached to it as evidence",
        default=30,
        ge=0,
    )

    # rule: COMP-SLA-* (a business-hours calendar per step; None: 24x7)
    contact_calendar: BusinessHours | None = rule(
        "COMP-SLA-CONTACT", "Business hours the call-back time counts in (None: 24x7)", default=None
    )
    verify_calendar: BusinessHours | None = rule(
        "COMP-SLA-VERIFY",
        "Business hours the verification time counts in (None: 24x7)",
        default=None,
    )
    evidence_calendar: BusinessHours | None = rule(
        "COMP-SLA-EVIDENCE", "Business hours the evidence time counts in (None: 24x7)", default=None
    )
    investigate_calendar: BusinessHours | None = rule(
        "COMP-SLA-INVESTIGATE",
        "Business hours the preliminary investigation's time counts in (None: 24x7)",
        default=None,
    )
    resolve_calendar: BusinessHours | None = rule(
        "COMP-SLA-RESOLVE", "Business hours the result's time counts in (None: 24x7)", default=None
    )
    followup_calendar: BusinessHours | None = rule(
        "COMP-SLA-FOLLOWUP",
        "Business hours the follow-up's time counts in (None: 24x7)",
        default=None,
    )

    # rule: COMP-SANCTION (a fee waiver granted as remedy stays within the bank's policy)
    fee_waiver_max_amount: Decimal = rule(
        "COMP-SANCTION",
        "Largest fee waiver a complaint outcome may grant, in the contract's currency",
        default=Decimal("5000.00"),
        ge=0,
        decimal_places=2,
    )

    @model_validator(mode="after")
    def _warnings_ascend(self) -> Self:
        if not self.warning_first_percent < self.warning_second_percent:
            raise ValueError(
                "COMP-SLA-WARN: warning_first_percent must be below warning_second_percent"
            )
        return self

    @model_validator(mode="after")
    def _reporting_zone_known(self) -> Self:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(self.reporting_timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"COMP-STATS: reporting_timezone {self.reporting_timezone!r} is not a known "
                "IANA time zone"
            ) from None
        return self

    def duration(self, step: str) -> timedelta:
        """The time allowed for ``step`` (KeyError for an unknown step)."""
        return timedelta(minutes=int(getattr(self, STEP_FIELDS[step])))

    def rule_of_step(self, step: str) -> str:
        return self.rule_of(STEP_FIELDS[step])

    def calendar(self, step: str) -> BusinessCalendar | None:
        """The business-hours calendar ``step`` counts in; None: around the clock."""
        return self._calendars[step]

    def deadline(self, step: str, start: datetime) -> datetime:
        """When ``step``, started at ``start``, is due: its minutes counted in its calendar."""
        cal = self.calendar(step)
        if cal is None:
            return start + self.duration(step)
        return cal.add(start, self.duration(step))

    @cached_property
    def _calendars(self) -> dict[str, BusinessCalendar | None]:
        out: dict[str, BusinessCalendar | None] = {}
        for step in STEP_FIELDS:
            hours: BusinessHours | None = getattr(self, f"{step}_calendar")
            out[step] = None if hours is None else hours.calendar()
        return out


STEP_FIELDS: dict[str, str] = {
    "contact": "contact_minutes",
    "verify": "verify_minutes",
    "evidence": "evidence_minutes",
    "investigate": "investigate_minutes",
    "resolve": "resolve_minutes",
    "followup": "followup_minutes",
}
