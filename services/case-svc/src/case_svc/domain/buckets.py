"""Delinquency buckets (rule CASE-BUCKET), counted on the debtor's own calendar.

``overdue_since`` is the due date the debtor missed, as the bank reports it:
on that day the account is 0 days past due, the next day 1. Zero days (or an
``overdue_since`` still ahead) is bucket ``M0``, "current": the account is not
past due yet, so a case opened on its due date starts in M0 and moves to M1
the next day. Then, with the default policy, M1 is 1-30 days, M2 31-60,
M3 61-90 and M3+ more than 90; the bounds come from :class:`CasePolicy`.

Days roll over at the debtor's local midnight, not at UTC midnight: the daily
recomputation asks :func:`debtor_today` for the debtor's date.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from functools import lru_cache
from zoneinfo import ZoneInfo

from case_svc.domain.policy import CasePolicy

RULE = "CASE-BUCKET"


class Bucket(StrEnum):
    M0 = "M0"  # current: not yet past due
    M1 = "M1"
    M2 = "M2"
    M3 = "M3"
    M3_PLUS = "M3+"


def days_past_due(overdue_since: date, today: date) -> int:
    """Whole days from the missed due date to ``today``; never negative."""
    if isinstance(overdue_since, datetime) or isinstance(today, datetime):
        raise TypeError("days past due counts calendar days: pass dates, not datetimes")
    return max(0, (today - overdue_since).days)


def bucket_for(days: int, policy: CasePolicy) -> Bucket:
    """The bucket of ``days`` past due under ``policy`` (rule CASE-BUCKET)."""
    if days <= 0:
        return Bucket.M0
    if days <= policy.m1_max_days:
        return Bucket.M1
    if days <= policy.m2_max_days:
        return Bucket.M2
    if days <= policy.m3_max_days:
        return Bucket.M3
    return Bucket.M3_PLUS


def debtor_today(now_utc: datetime, tz_name: str) -> date:
    """The debtor's local calendar day at the instant ``now_utc`` (aware)."""
    if now_utc.tzinfo is None or now_utc.utcoffset() is None:
        raise ValueError("naive datetime: every instant must carry its time zone")
    return _local_date(now_utc, tz_name)


@lru_cache(maxsize=256)
def _local_date(instant: datetime, tz_name: str) -> date:
    # A batch asks for the same instant and zone once per account: the answer is kept.
    # Aware datetimes are equal (and hash alike) when they are the same instant, and the
    # local day depends on nothing else.
    return instant.astimezone(ZoneInfo(tz_name)).date()
