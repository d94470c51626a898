"""CASE-BUCKET: days past due and buckets, on the debtor's calendar, from the policy."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from case_svc.domain.buckets import Bucket, bucket_for, days_past_due, debtor_today
from case_svc.domain.policy import CasePolicy
from collect_common.policy import PolicyBook, PolicyError

POLICY = CasePolicy()


def test_days_past_due_counts_from_the_missed_due_date() -> None:
    due = date(2026, 1, 30)
    assert days_past_due(due, due) == 0
    assert days_past_due(due, date(2026, 1, 31)) == 1
    assert days_past_due(due, date(2026, 3, 1)) == 30
    assert days_past_due(due, date(2026, 3, 2)) == 31


def test_days_past_due_is_never_negative() -> None:
    assert days_past_due(date(2026, 3, 5), date(2026, 3, 1)) == 0


def test_days_past_due_refuses_instants() -> None:
    with pytest.raises(TypeError):
        days_past_due(datetime(2026, 1, 1, tzinfo=UTC), date(2026, 3, 1))


@pytest.mark.parametrize(
    ("days", "bucket"),
    [
        (-5, Bucket.M0),
        (0, Bucket.M0),
        (1, Bucket.M1),
        (30, Bucket.M1),
        (31, Bucket.M2),
        (60, Bucket.M2),
        (61, Bucket.M3),
        (90, Bucket.M3),
        (91, Bucket.M3_PLUS),
        (5000, Bucket.M3_PLUS),
    ],
)
def test_default_bucket_edges(days: int, bucket: Bucket) -> None:
    assert bucket_for(days, POLICY) is bucket


def test_bucket_values_are_the_codes_events_carry() -> None:
    assert [str(b) for b in Bucket] == ["M0", "M1", "M2", "M3", "M3+"]


def test_bounds_come_from_the_contract_policy() -> None:
    strict = CasePolicy(contract="bank-b", m1_max_days=15, m2_max_days=45, m3_max_days=75)
    assert bucket_for(15, strict) is Bucket.M1
    assert bucket_for(16, strict) is Bucket.M2
    assert bucket_for(45, strict) is Bucket.M2
    assert bucket_for(46, strict) is Bucket.M3
    assert bucket_for(75, strict) is Bucket.M3
    assert bucket_for(76, strict) is Bucket.M3_PLUS


def test_policy_fields_cite_their_rules_with_the_documented_defaults() -> None:
    assert CasePolicy.rules() == {
        "m1_max_days": "CASE-BUCKET",
        "m2_max_days": "CASE-BUCKET",
        "m3_max_days": "CASE-BUCKET",
        "promise_grace_days": "CASE-PROMISE",
        "promise_max_days": "CASE-PROMISE",
        "plan_max_installments": "CASE-HARDSHIP",
        "installment_grace_days": "CASE-HARDSHIP",
        "plan_break_missed_installments": "CASE-HARDSHIP",
        "plan_break_days_late": "CASE-HARDSHIP",
        "plan_broken_lowers_willingness": "CASE-STRATEGY",
        "max_rows_per_request": "CASE-INTAKE",
        "default_debtor_timezone": "CASE-INTAKE",
    }
    p = CasePolicy()
    assert (p.m1_max_days, p.m2_max_days, p.m3_max_days) == (30, 60, 90)
    assert p.max_rows_per_request == 10000
    assert p.default_debtor_timezone == "Asia/Shanghai"
    assert (p.plan_break_missed_installments, p.plan_break_days_late) == (2, 30)
    assert p.cite("m2_max_days")["rule"] == "CASE-BUCKET"


@pytest.mark.parametrize(
    "override",
    [
        {"m1_max_days": 60},
        {"m2_max_days": 30},
        {"m3_max_days": 60},
        {"m1_max_days": 0},
        {"max_rows_per_request": 0},
        {"default_debtor_timezone": "Mars/Base"},
    ],
)
def test_policy_files_with_unusable_values_are_refused(override: dict[str, object]) -> None:
    with pytest.raises(PolicyError) as exc:
        PolicyBook.parse(CasePolicy, {"policies": [{"contract": "bank-a", **override}]})
    assert "policies[0]" in str(exc.value)


def test_a_contract_policy_overrides_only_what_it_names() -> None:
    book = PolicyBook.parse(
        CasePolicy,
        {"policies": [{"contract": "bank-a", "effective_from": "2026-01-01", "m1_max_days": 29}]},
    )
    p = book.for_contract("bank-a", date(2026, 3, 1))
    assert (p.m1_max_days, p.m2_max_days) == (29, 60)
    assert book.for_contract("bank-z", date(2026, 3, 1)).m1_max_days == 30


# -- the debtor's day ----------------------------------------------------------------


def test_debtor_today_turns_at_local_midnight_not_utc_midnight() -> None:
    before = datetime(2026, 3, 1, 15, 59, 59, tzinfo=UTC)  # 23:59:59 in Shanghai
    after = before + timedelta(seconds=1)  # 00:00:00 on 2 March in Shanghai
    assert before.date() == after.date() == date(2026, 3, 1)  # one UTC day
    assert debtor_today(before, "Asia/Shanghai") == date(2026, 3, 1)
    assert debtor_today(after, "Asia/Shanghai") == date(2026, 3, 2)


def test_debtor_today_when_the_utc_date_is_still_yesterday() -> None:
    now = datetime(2026, 3, 1, 20, 0, tzinfo=UTC)
    assert debtor_today(now, "Asia/Shanghai") == date(2026, 3, 2)
    assert debtor_today(now, "UTC") == date(2026, 3, 1)


def test_debtor_today_follows_daylight_saving_zones() -> None:
    # New York: UTC-5 in winter, UTC-4 after 8 March 2026.
    assert debtor_today(datetime(2026, 3, 1, 4, 59, tzinfo=UTC), "America/New_York") == date(
        2026, 2, 28
    )
    assert debtor_today(datetime(2026, 3, 10, 4, 0, tzinfo=UTC), "America/New_York") == date(
        2026, 3, 10
    )


def test_debtor_today_refuses_naive_instants() -> None:
    with pytest.raises(ValueError, match="naive"):
        debtor_today(datetime(2026, 3, 1, 12, 0), "Asia/Shanghai")


def test_bucket_moves_from_m1_to_m2_at_the_debtors_midnight() -> None:
    overdue_since = date(2026, 1, 30)
    late_evening = datetime(2026, 3, 1, 15, 59, tzinfo=UTC)  # 23:59 Shanghai, day 30
    midnight = datetime(2026, 3, 1, 16, 0, tzinfo=UTC)  # 00:00 Shanghai, day 31
    days = [
        days_past_due(overdue_since, debtor_today(t, "Asia/Shanghai"))
        for t in (late_evening, midnight)
    ]
    assert days == [30, 31]
    assert [bucket_for(d, POLICY) for d in days] == [Bucket.M1, Bucket.M2]
    # On the UTC calendar both instants are still day 30.
    assert {days_past_due(overdue_since, t.date()) for t in (late_evening, midnight)} == {30}
