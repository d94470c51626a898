"""case-svc's configurable business values, one field per rule, per bank contract.

Loaded into a ``PolicyBook[CasePolicy]``; the version in force on the debtor's
day is passed to the domain, which holds no business numbers of its own.
"""

from __future__ import annotations

from typing import Self
from zoneinfo import ZoneInfo

from pydantic import field_validator, model_validator

from collect_common.policy import Policy, rule


class CasePolicy(Policy):
    # rule: CASE-BUCKET. Upper bounds (inclusive) of days past due per bucket;
    # 0 or fewer days is M0 (current), more than m3_max_days is M3+.
    m1_max_days: int = rule("CASE-BUCKET", "Last day past due of bucket M1", default=30, ge=1)
    m2_max_days: int = rule("CASE-BUCKET", "Last day past due of bucket M2", default=60, ge=2)
    m3_max_days: int = rule(
        "CASE-BUCKET", "Last day past due of bucket M3 (later is M3+)", default=90, ge=3
    )
    # rule: CASE-PROMISE (promises to pay)
    promise_grace_days: int = rule(
        "CASE-PROMISE",
        "Days after the promised day (debtor-local) before an unpaid promise is broken",
        default=0,
        ge=0,
        le=30,
    )
    promise_max_days: int = rule(
        "CASE-PROMISE", "Furthest a promised day may be from the debtor's today", default=30, ge=1
    )
    # rule: CASE-HARDSHIP (repayment plans)
    plan_max_installments: int = rule(
        "CASE-HARDSHIP", "Most installments one repayment plan may have", default=36, ge=1
    )
    installment_grace_days: int = rule(
        "CASE-HARDSHIP",
        "Days after an installment's day (debtor-local) before it counts as missed",
        default=0,
        ge=0,
        le=30,
    )
    # rule: CASE-HARDSHIP. When a plan counts as broken: either limit is enough.
    plan_break_missed_installments: int = rule(
        "CASE-HARDSHIP",
        "Installments missed and not made good (paid in full later) that break a plan",
        default=2,
        ge=1,
        le=36,
    )
    plan_break_days_late: int = rule(
        "CASE-HARDSHIP",
        "Days after an installment's day (debtor-local) that it may stay unpaid before "
        "the plan is broken, even if it is the only one missed",
        default=30,
        ge=1,
        le=365,
    )
    plan_broken_lowers_willingness: bool = rule(
        "CASE-STRATEGY",
        "A broken repayment plan marks the debtor's willingness to pay low, so the "
        "strategy is decided again on it",
        default=True,
    )
    # rule: CASE-INTAKE
    max_rows_per_request: int = rule(
        "CASE-INTAKE", "Most accounts one bulk intake request may carry", default=10000, ge=1
    )
    default_debtor_timezone: str = rule(
        "CASE-INTAKE",
        "Debtor's time zone when the bank sends none (days and quiet hours are local)",
        default="Asia/Shanghai",
    )

    @field_validator("default_debtor_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (LookupError, ValueError, OSError):
            raise ValueError(f"{value!r} is not a known IANA time zone") from None
        return value

    @model_validator(mode="after")
    def _buckets_ascend(self) -> Self:
        if not self.m1_max_days < self.m2_max_days < self.m3_max_days:
            raise ValueError(
                "CASE-BUCKET bounds must ascend: m1_max_days < m2_max_days < m3_max_days"
            )
        return self

    @model_validator(mode="after")
    def _late_after_missed(self) -> Self:
        if self.plan_break_days_late <= self.installment_grace_days:
            raise ValueError(
                "CASE-HARDSHIP: plan_break_days_late must be more than installment_grace_days"
            )
        return self
