"""The per-contract values of the live rules (QA-REALTIME, QA-QUIET), each naming its rule.

Defaults (a bank contract's policy file may override any of them):

- QA-REALTIME frequency: more than ``max_calls_per_window`` (3) call attempts to one
  debtor within any sliding ``call_window_hours`` (24 h) of event time is a breach;
  the window is half-open ``[start, start + 24 h)``, so calls exactly 24 h apart never
  share a window.
- QA-REALTIME duration: a completed call shorter than ``min_call_seconds`` (10 s) or
  longer than ``max_call_seconds`` (1,800 s = 30 min) is out of range.
- QA-REALTIME speech rate and volume: a completed call whose measured speech rate is
  over ``max_speech_rate_wpm`` (200 words a minute) or whose volume is over
  ``max_volume_db`` (-6 dB, the level the dialer reports) is a breach; a call without
  the measurement is not judged.
- SMS-WEEKLY-CAP: more than ``sms_weekly_cap`` (3; a contract may set 1-3) SMS sent to
  one debtor in a debtor-local ISO week (Monday 00:00 to Monday 00:00, in the debtor's
  zone as for QA-QUIET) is a breach.
- QA-QUIET: a contact at or after ``quiet_start`` (22:00) or before ``quiet_end``
  (08:00), debtor local time, is a violation. The debtor's zone is the event's
  ``debtor_timezone`` when it carries one, else ``default_timezone`` (Asia/Shanghai).
- QA-SANCTION ladder, counted over the violations and sanctions of the last
  ``sanction_window_days`` (90): the first minor violation is a warning; the
  ``minor_repeat_count``-th (2nd) minor one, or a serious one, is a ``monetary_sanction``
  (a fine, or a performance deduction) of ``fine_amount`` (200.00); once
  ``fines_before_suspension`` (2) of those are in the window, or for a second serious
  violation, the next step is suspension with ``retraining_days`` (7) of retraining.
  Reinstatement needs a passed exam recorded after the suspension, and the retraining
  period over.
- QA-SAMPLE: each ISO week (Monday 00:00 to Monday 00:00 in ``sample_timezone``,
  Asia/Shanghai) ``sample_rate`` (5 %, allowed 5–10 %) of the week's contact records are
  drawn, stratified by (bucket, channel), with ``sample_allocation`` (proportional or
  Neyman). ``sample_weights`` multiply a stratum's share ("bucket/channel" -> weight,
  default 1): M1 calls and M3/M3+ letters and visits weigh 2. Neyman uses
  ``sample_defect_estimates`` ("bucket/channel" -> expected defect rate, 0.5 when
  none). ``sample_risk_per_agent`` (5) records of each agent with an alert in the week
  (or a substantiated complaint since the last draw, QA-FEEDBACK) are added on top as
  risk picks. See ``qa_svc.domain.sampling``.
- QA-SCORE: an agent may dispute a score within ``dispute_window_days`` (7) of it; a
  reviewed record is defective when auto-failed or scored below ``defect_threshold``
  (80.00 of 100). See ``qa_svc.domain.scoring``.
"""

from __future__ import annotations

from datetime import time, timedelta
from decimal import Decimal
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import field_validator

from collect_common.policy import Policy, rule


class QaPolicy(Policy):
    max_calls_per_window: int = rule(
        "QA-REALTIME", "Call attempts to one debtor allowed in the window", default=3, ge=1, le=50
    )
    call_window_hours: int = rule(
        "QA-REALTIME", "Length of the sliding call window, hours", default=24, ge=1, le=24 * 7
    )
    min_call_seconds: int = rule(
        "QA-REALTIME", "Shortest acceptable completed call, seconds", default=10, ge=0, le=3600
    )
    max_call_seconds: int = rule(
        "QA-REALTIME", "Longest acceptable completed call, seconds", default=1800, ge=1, le=86400
    )
    max_speech_rate_wpm: float = rule(
        "QA-REALTIME", "Fastest acceptable speech rate, words a minute", default=200.0, gt=0
    )
    max_volume_db: float = rule(
        "QA-REALTIME", "Loudest acceptable call volume, dB as the dialer reports it", default=-6.0
    )
    sms_weekly_cap: int = rule(
        "SMS-WEEKLY-CAP", "SMS per debtor per ISO week (debtor-local)", default=3, ge=1, le=3
    )
    quiet_start: time = rule(
        "QA-QUIET", "Start of the forbidden hours, debtor local time", default=time(22, 0)
    )
    quiet_end: time = rule(
        "QA-QUIET", "End of the forbidden hours (exclusive), debtor local time", default=time(8, 0)
    )
    default_timezone: str = rule(
        "QA-QUIET", "Debtor time zone when the event carries none", default="Asia/Shanghai"
    )

    sanction_window_days: int = rule(
        "QA-SANCTION", "Look-back of the sanction ladder, days", default=90, ge=1, le=3650
    )
    minor_repeat_count: int = rule(
        "QA-SANCTION",
        "Minor violations in the window (this one included) that make a fine",
        default=2,
        ge=2,
        le=50,
    )
    monetary_sanction: Literal["fine", "performance_deduction"] = rule(
        "QA-SANCTION", "What the fine step is: a fine or a performance deduction", default="fine"
    )
    fine_amount: Decimal = rule(
        "QA-SANCTION",
        "Amount of a fine or performance deduction",
        default=Decimal("200.00"),
        gt=0,
        max_digits=12,
        decimal_places=2,
    )
    fines_before_suspension: int = rule(
        "QA-SANCTION",
        "Fines (or deductions) in the window after which the next fine step is a suspension",
        default=2,
        ge=1,
        le=50,
    )
    retraining_days: int = rule(
        "QA-SANCTION", "Retraining period of a suspension, days", default=7, ge=1, le=365
    )

    sample_rate: Decimal = rule(
        "QA-SAMPLE",
        "Share of the week's contact records drawn at random",
        default=Decimal("0.05"),
        ge=Decimal("0.05"),
        le=Decimal("0.10"),
    )
    sample_allocation: Literal["proportional", "neyman"] = rule(
        "QA-SAMPLE", "How the sample is spread over the strata", default="proportional"
    )
    sample_weights: dict[str, float] = rule(
        "QA-SAMPLE",
        "Weight multiplying a stratum's share, by 'bucket/channel' (others weigh 1)",
        default_factory=lambda: {
            "M1/call": 2.0,
            "M3/letter": 2.0,
            "M3/visit": 2.0,
            "M3+/letter": 2.0,
            "M3+/visit": 2.0,
        },
    )
    sample_defect_estimates: dict[str, float] = rule(
        "QA-SAMPLE",
        "Expected defect rate by 'bucket/channel' for Neyman allocation (others 0.5)",
        default_factory=dict,
    )
    sample_risk_per_agent: int = rule(
        "QA-SAMPLE",
        "Records of each agent with an alert in the week added as risk picks",
        default=5,
        ge=0,
        le=100,
    )
    sample_timezone: str = rule(
        "QA-SAMPLE", "Time zone of the sampling week's boundaries", default="Asia/Shanghai"
    )

    dispute_window_days: int = rule(
        "QA-SCORE",
        "Days after a score within which the agent may dispute it",
        default=7,
        ge=1,
        le=90,
    )
    defect_threshold: Decimal = rule(
        "QA-SCORE",
        "A reviewed record scored below this (of 100), or auto-failed, is defective",
        default=Decimal("80.00"),
        ge=0,
        le=100,
        max_digits=5,
        decimal_places=2,
    )

    @field_validator("sample_weights")
    @classmethod
    def _positive_weights(cls, value: dict[str, float]) -> dict[str, float]:
        if any(w <= 0 for w in value.values()):
            raise ValueError("stratum weights must be positive")
        return value

    @field_validator("sample_defect_estimates")
    @classmethod
    def _rates(cls, value: dict[str, float]) -> dict[str, float]:
        if any(not 0 <= p <= 1 for p in value.values()):
            raise ValueError("defect estimates must be between 0 and 1")
        return value

    @field_validator("default_timezone", "sample_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @property
    def call_window(self) -> timedelta:
        return timedelta(hours=self.call_window_hours)

    @property
    def sanction_window(self) -> timedelta:
        return timedelta(days=self.sanction_window_days)

    @property
    def retraining(self) -> timedelta:
        return timedelta(days=self.retraining_days)

    @property
    def dispute_window(self) -> timedelta:
        return timedelta(days=self.dispute_window_days)
