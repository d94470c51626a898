"""Speech rate and volume (QA-REALTIME) and the SMS weekly cap (SMS-WEEKLY-CAP) at their edges."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from qa_svc.domain.policy import QaPolicy
from qa_svc.domain.rules import (
    Sms,
    local_week,
    sms_weekly_breach,
    speech_rate_breach,
    volume_breach,
)

P = QaPolicy()  # 200 wpm, -6 dB, 3 SMS a week, Asia/Shanghai
T0 = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)  # a Wednesday, 10:00 in Shanghai
SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.mark.parametrize(
    ("wpm", "breached"), [(None, False), (0.0, False), (200.0, False), (200.1, True), (320, True)]
)
def test_speech_rate_over_the_threshold_breaches(wpm: float | None, breached: bool) -> None:
    breach = speech_rate_breach("e1", T0, wpm, P)
    assert (breach is not None) is breached
    if breach is not None:
        assert breach.rule_id == "QA-REALTIME" and breach.check == "speech_rate"
        assert breach.evidence == ("e1",) and breach.window_start == T0


@pytest.mark.parametrize(
    ("db", "breached"), [(None, False), (-18.0, False), (-6.0, False), (-5.9, True), (3.0, True)]
)
def test_volume_over_the_threshold_breaches(db: float | None, breached: bool) -> None:
    breach = volume_breach("e1", T0, db, P)
    assert (breach is not None) is breached
    if breach is not None:
        assert breach.rule_id == "QA-REALTIME" and breach.check == "volume"


def test_a_contract_moves_the_speech_and_volume_thresholds() -> None:
    strict = QaPolicy(max_speech_rate_wpm=150, max_volume_db=-12)
    assert speech_rate_breach("e", T0, 160, strict) is not None
    assert speech_rate_breach("e", T0, 160, P) is None
    assert volume_breach("e", T0, -10, strict) is not None
    assert volume_breach("e", T0, -10, P) is None


def sms(*hours: float) -> list[Sms]:
    return [Sms(f"s{i}", T0 + timedelta(hours=h)) for i, h in enumerate(hours)]


def test_the_third_sms_of_the_week_is_allowed_the_fourth_breaches() -> None:
    three = sms(0, 24, 48)
    assert sms_weekly_breach(three, three[-1], SHANGHAI, P) is None
    four = sms(0, 24, 48, 49)
    breach = sms_weekly_breach(four, four[-1], SHANGHAI, P)
    assert breach is not None
    assert breach.rule_id == "SMS-WEEKLY-CAP" and breach.check == "sms_weekly_cap"
    assert breach.evidence == ("s0", "s1", "s2", "s3")
    # the debtor-local week: Monday 2026-11-23 00:00 to Monday 2026-11-30 00:00, Shanghai
    assert breach.window_start == datetime(2026, 11, 22, 16, 0, tzinfo=UTC)
    assert breach.window_end == datetime(2026, 11, 29, 16, 0, tzinfo=UTC)


def test_the_week_is_the_debtors_local_week() -> None:
    sunday_late = datetime(2026, 11, 29, 15, 59, tzinfo=UTC)  # Sunday 23:59 in Shanghai
    monday = datetime(2026, 11, 29, 16, 0, tzinfo=UTC)  # Monday 00:00 in Shanghai
    week = [*sms(0, 1, 2), Sms("sun", sunday_late)]
    assert sms_weekly_breach(week, week[-1], SHANGHAI, P) is not None
    next_week = [*sms(0, 1, 2), Sms("mon", monday)]
    assert sms_weekly_breach(next_week, next_week[-1], SHANGHAI, P) is None
    # the same instants are one UTC week for a debtor in London: 4 SMS, a breach
    london = ZoneInfo("Europe/London")
    assert sms_weekly_breach(next_week, next_week[-1], london, P) is not None
    assert local_week(monday, SHANGHAI)[0] == monday


def test_a_late_sms_counts_in_its_own_week() -> None:
    this_week = sms(0, 1, 2)
    late = Sms("late", T0 - timedelta(days=7))  # the week before
    assert sms_weekly_breach([*this_week, late], late, SHANGHAI, P) is None
    late_here = Sms("late", T0 - timedelta(hours=30))  # Monday of this week
    breach = sms_weekly_breach([*this_week, late_here], late_here, SHANGHAI, P)
    assert breach is not None and breach.evidence[0] == "late"


def test_a_contract_may_lower_the_cap_but_not_raise_it() -> None:
    two = QaPolicy(sms_weekly_cap=2)
    three = sms(0, 1, 2)
    assert sms_weekly_breach(three, three[-1], SHANGHAI, two) is not None
    with pytest.raises(ValidationError, match="sms_weekly_cap"):
        QaPolicy(sms_weekly_cap=4)
    assert QaPolicy.rule_of("sms_weekly_cap") == "SMS-WEEKLY-CAP"
    assert QaPolicy.rule_of("max_speech_rate_wpm") == "QA-REALTIME"
    assert QaPolicy.rule_of("max_volume_db") == "QA-REALTIME"
