"""The live rules at their edges (QA-REALTIME, QA-QUIET), late events, one alert per breach."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest

from qa_svc.domain.alerts import Action, AlertStatus, IllegalTransition, transition
from qa_svc.domain.policy import QaPolicy
from qa_svc.domain.rules import Call, duration_breach, frequency_breach, quiet_breach

P = QaPolicy()  # 3 calls per 24 h, 10-1800 s, quiet 22:00-08:00 Asia/Shanghai
T0 = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)
H = timedelta(hours=1)


def calls(*hours: float) -> list[Call]:
    return [Call(f"e{i}", T0 + timedelta(hours=h)) for i, h in enumerate(hours)]


def test_the_third_call_in_the_window_is_allowed_the_fourth_breaches() -> None:
    three = calls(0, 1, 2)
    assert frequency_breach(three, three[-1], P) is None
    four = calls(0, 1, 2, 3)
    breach = frequency_breach(four, four[-1], P)
    assert breach is not None
    assert breach.rule_id == "QA-REALTIME" and breach.check == "call_frequency"
    assert breach.evidence == ("e0", "e1", "e2", "e3")
    assert breach.window_start == T0 and breach.window_end == T0 + 24 * H


def test_the_window_is_half_open_calls_24_h_apart_never_share_it() -> None:
    edge = calls(0, 8, 16, 24)  # the 4th call is exactly 24 h after the 1st
    assert frequency_breach(edge, edge[-1], P) is None
    inside = [*calls(0, 8, 16), Call("e3", T0 + 24 * H - timedelta(seconds=1))]
    assert frequency_breach(inside, inside[-1], P) is not None


def test_a_late_event_counts_where_it_belongs() -> None:
    on_time = calls(0, 2, 3)
    assert frequency_breach(on_time, on_time[-1], P) is None
    late = Call("late", T0 + H)  # arrives last, happened second
    breach = frequency_breach([*on_time, late], late, P)
    assert breach is not None and set(breach.evidence) == {"e0", "e1", "e2", "late"}
    assert breach.window_start == T0


def test_every_window_holding_the_new_call_makes_one_breach() -> None:
    many = calls(0, 1, 2, 3, 4, 5)
    breach = frequency_breach(many, many[-1], P)
    assert breach is not None
    assert breach.window_start == T0 and breach.window_end == T0 + 2 * H + 24 * H
    assert len(breach.evidence) == 6


def test_a_custom_policy_moves_the_limit() -> None:
    policy = QaPolicy(max_calls_per_window=2, call_window_hours=1)
    three = calls(0, 0.5, 0.9)
    assert frequency_breach(three, three[-1], policy) is not None
    spread = calls(0, 0.5, 1)
    assert frequency_breach(spread, spread[-1], policy) is None


@pytest.mark.parametrize(
    ("seconds", "breached"), [(9, True), (10, False), (1800, False), (1801, True), (0, True)]
)
def test_call_duration_edges(seconds: int, breached: bool) -> None:
    assert (duration_breach("e", T0, seconds, P) is not None) is breached


def _shanghai(hour: int, minute: int) -> datetime:
    return datetime(2026, 11, 28, hour, minute, tzinfo=UTC) - timedelta(hours=8)


@pytest.mark.parametrize(
    ("hour", "minute", "breached"),
    [(21, 59, False), (22, 0, True), (23, 30, True), (0, 0, True), (7, 59, True), (8, 0, False)],
)
def test_quiet_hours_edges_in_the_default_zone(hour: int, minute: int, breached: bool) -> None:
    at = _shanghai(hour, minute)
    result = quiet_breach("e", at, None, P)
    assert (result is not None) is breached
    if result is not None:
        assert result.rule_id == "QA-QUIET" and result.evidence == ("e",)


def test_quiet_hours_use_the_zone_the_event_carries() -> None:
    at = datetime(2026, 11, 28, 14, 0, tzinfo=UTC)  # 22:00 in Shanghai, 14:00 in London
    assert quiet_breach("e", at, None, P) is not None
    assert quiet_breach("e", at, "Europe/London", P) is None
    assert quiet_breach("e", at, "Not/AZone", P) is not None  # unknown: the default zone


def test_a_quiet_span_within_one_day() -> None:
    policy = QaPolicy(quiet_start=time(12, 0), quiet_end=time(13, 0))
    assert quiet_breach("e", _shanghai(12, 0), None, policy) is not None
    assert quiet_breach("e", _shanghai(13, 0), None, policy) is None


def test_policy_fields_name_their_rules_and_refuse_unknown_zones() -> None:
    rules = QaPolicy.rules()
    assert rules["max_calls_per_window"] == "QA-REALTIME"
    assert rules["quiet_start"] == "QA-QUIET"
    with pytest.raises(ValueError, match="unknown time zone"):
        QaPolicy(default_timezone="Mars/Olympus")


def test_alert_transitions() -> None:
    assert transition(AlertStatus.OPEN, Action.ACKNOWLEDGE) is AlertStatus.ACKNOWLEDGED
    assert transition(AlertStatus.ACKNOWLEDGED, Action.DISMISS) is AlertStatus.DISMISSED
    assert transition(AlertStatus.OPEN, Action.ESCALATE) is AlertStatus.ESCALATED
    with pytest.raises(IllegalTransition, match="acknowledged"):
        transition(AlertStatus.ACKNOWLEDGED, Action.ACKNOWLEDGE)
    with pytest.raises(IllegalTransition, match="dismissed"):
        transition(AlertStatus.DISMISSED, Action.ESCALATE)
