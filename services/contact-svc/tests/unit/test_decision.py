"""The contact-policy engine at the edges of every rule (CALL-QUIET, CALL-DAILY-CAP,
SMS-WEEKLY-CAP, CASE-STRATEGY, CASE-LIFECYCLE, QA-SANCTION)."""

from __future__ import annotations

from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import pytest

from collect_common.policy import PolicyBook, PolicyError
from contact_svc.domain.decision import AgentView, CaseView, Counts, decide
from contact_svc.domain.policy import ContactPolicy

POLICY = ContactPolicy()
ZONES = ["Asia/Shanghai", "America/New_York", "Asia/Kolkata"]


def case(
    tz: str = "Asia/Shanghai",
    status: str = "active",
    channels: tuple[str, ...] | None = ("call", "sms"),
) -> CaseView:
    return CaseView("case-1", "debtor-1", status, channels, tz)


def local(tz: str, y: int, mo: int, d: int, h: int, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=ZoneInfo(tz)).astimezone(UTC)


# -- CALL-QUIET: [12:00, 14:00) and [20:00, 08:00) debtor-local ----------------------------


@pytest.mark.parametrize("tz", ZONES)
@pytest.mark.parametrize(
    ("h", "mi", "allowed"),
    [
        (11, 59, True),
        (12, 0, False),
        (13, 59, False),
        (14, 0, True),
        (19, 59, True),
        (20, 0, False),
        (23, 59, False),
        (0, 0, False),
        (7, 59, False),
        (8, 0, True),
    ],
)
def test_call_quiet_edges_in_the_debtors_local_time(
    tz: str, h: int, mi: int, allowed: bool
) -> None:
    d = decide(case(tz), None, "call", Counts(), local(tz, 2026, 11, 24, h, mi), POLICY)
    assert d.allowed is allowed
    if not allowed:
        assert d.rules == ["CALL-QUIET"]


def test_quiet_denial_says_when_calling_is_next_allowed() -> None:
    tz = "America/New_York"
    noon = decide(case(tz), None, "call", Counts(), local(tz, 2026, 11, 24, 12), POLICY)
    assert noon.next_allowed_at == local(tz, 2026, 11, 24, 14)
    evening = decide(case(tz), None, "call", Counts(), local(tz, 2026, 11, 24, 20), POLICY)
    assert evening.next_allowed_at == local(tz, 2026, 11, 25, 8)
    early = decide(case(tz), None, "call", Counts(), local(tz, 2026, 11, 25, 7, 59), POLICY)
    assert early.next_allowed_at == local(tz, 2026, 11, 25, 8)


def test_the_same_utc_instant_is_quiet_for_one_debtor_and_not_another() -> None:
    at = datetime(2026, 11, 24, 4, 30, tzinfo=UTC)  # 12:30 Shanghai, 23:30 New York (prev day)
    assert decide(case("Asia/Shanghai"), None, "call", Counts(), at, POLICY).rules == ["CALL-QUIET"]
    at = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)  # 23:00 Shanghai, 10:00 New York
    assert not decide(case("Asia/Shanghai"), None, "call", Counts(), at, POLICY).allowed
    assert decide(case("America/New_York"), None, "call", Counts(), at, POLICY).allowed


def test_quiet_hours_do_not_apply_to_sms() -> None:
    tz = "Asia/Shanghai"
    assert decide(case(tz), None, "sms", Counts(), local(tz, 2026, 11, 24, 21), POLICY).allowed


def test_quiet_periods_are_policy() -> None:
    policy = ContactPolicy(quiet_periods=((time(21, 0), time(9, 0)),))
    tz = "Asia/Shanghai"
    assert decide(case(tz), None, "call", Counts(), local(tz, 2026, 11, 24, 12), policy).allowed
    assert not decide(case(tz), None, "call", Counts(), local(tz, 2026, 11, 24, 8), policy).allowed
    assert ContactPolicy.rule_of("quiet_periods") == "CALL-QUIET"


# -- CALL-DAILY-CAP ---------------------------------------------------------------------


@pytest.mark.parametrize(("made", "allowed"), [(0, True), (2, True), (3, False), (4, False)])
def test_the_nth_call_of_the_day(made: int, allowed: bool) -> None:
    tz = "Asia/Shanghai"
    at = local(tz, 2026, 11, 24, 10)
    d = decide(case(tz), None, "call", Counts(calls_today=made), at, POLICY)
    assert d.allowed is allowed
    if not allowed:
        assert d.rules == ["CALL-DAILY-CAP"]
        assert d.next_allowed_at == local(tz, 2026, 11, 25, 8)  # new day, after quiet hours


def test_a_contract_may_allow_up_to_five_calls_and_no_more() -> None:
    five = ContactPolicy(daily_call_cap=5)
    tz = "Asia/Shanghai"
    at = local(tz, 2026, 11, 24, 10)
    assert decide(case(tz), None, "call", Counts(calls_today=4), at, five).allowed
    assert not decide(case(tz), None, "call", Counts(calls_today=5), at, five).allowed
    with pytest.raises(ValueError, match="less than or equal to 5"):
        ContactPolicy(daily_call_cap=6)
    with pytest.raises(PolicyError, match="CALL-DAILY-CAP"):
        PolicyBook.parse(ContactPolicy, {"policies": [{"contract": "b", "daily_call_cap": 9}]})


def test_unanswered_calls_have_their_own_cap() -> None:
    tz = "Asia/Shanghai"
    at = local(tz, 2026, 11, 24, 10)
    counts = Counts(calls_today=2, unanswered_today=2)
    d = decide(case(tz), None, "call", counts, at, POLICY)
    assert d.rules == ["CALL-DAILY-CAP"] and "unanswered" in d.denials[0].reason
    assert decide(case(tz), None, "call", Counts(2, 1), at, POLICY).allowed


def test_cap_and_quiet_together_point_to_the_next_allowed_morning() -> None:
    tz = "America/New_York"
    at = local(tz, 2026, 11, 24, 21)
    d = decide(case(tz), None, "call", Counts(calls_today=3), at, POLICY)
    assert d.rules == ["CALL-QUIET", "CALL-DAILY-CAP"]
    assert d.next_allowed_at == local(tz, 2026, 11, 25, 8)


# -- SMS-WEEKLY-CAP (ISO week, debtor-local) -------------------------------------------


@pytest.mark.parametrize("tz", ["Asia/Shanghai", "America/New_York"])
def test_sms_week_boundary_sunday_2359_vs_monday_0000_local(tz: str) -> None:
    full = Counts(sms_this_week=3)
    sunday = local(tz, 2026, 11, 29, 23, 59)  # 2026-11-29 is a Sunday
    d = decide(case(tz), None, "sms", full, sunday, POLICY)
    assert d.rules == ["SMS-WEEKLY-CAP"]
    assert d.next_allowed_at == local(tz, 2026, 11, 30, 0, 0)
    # the service counts per week: at Monday 00:00 the new week has none yet
    monday = local(tz, 2026, 11, 30, 0, 0)
    assert decide(case(tz), None, "sms", Counts(), monday, POLICY).allowed


def test_the_third_sms_is_allowed_and_the_fourth_is_not() -> None:
    at = local("Asia/Shanghai", 2026, 11, 24, 10)
    assert decide(case(), None, "sms", Counts(sms_this_week=2), at, POLICY).allowed
    assert not decide(case(), None, "sms", Counts(sms_this_week=3), at, POLICY).allowed
    two = ContactPolicy(sms_weekly_cap=2)
    assert not decide(case(), None, "sms", Counts(sms_this_week=2), at, two).allowed


# -- case state, track, agent -----------------------------------------------------------


@pytest.mark.parametrize("status", ["closed", "settled", "recalled"])
def test_no_contact_on_a_closed_settled_or_recalled_case(status: str) -> None:
    at = local("Asia/Shanghai", 2026, 11, 24, 10)
    for channel in ("call", "sms"):
        d = decide(case(status=status), None, channel, Counts(), at, POLICY)  # type: ignore[arg-type]
        assert d.rules == ["CASE-LIFECYCLE"] and status in d.denials[0].reason
        assert d.next_allowed_at is None


@pytest.mark.parametrize("status", ["active", "skip_tracing", "legal", "plan"])
def test_open_statuses_allow_contact(status: str) -> None:
    at = local("Asia/Shanghai", 2026, 11, 24, 10)
    assert decide(case(status=status), None, "call", Counts(), at, POLICY).allowed


def test_a_channel_the_track_does_not_allow_is_denied() -> None:
    at = local("Asia/Shanghai", 2026, 11, 24, 10)
    letters_only = case(channels=("letter",))
    d = decide(letters_only, None, "call", Counts(), at, POLICY)
    assert d.rules == ["CASE-STRATEGY"] and d.next_allowed_at is None
    assert decide(letters_only, None, "letter", Counts(), at, POLICY).allowed
    untracked = case(channels=None)  # before case-svc set a track: the policy's channels
    assert decide(untracked, None, "call", Counts(), at, POLICY).allowed
    assert not decide(untracked, None, "visit", Counts(), at, POLICY).allowed


def test_a_suspended_agent_is_denied_and_an_active_one_is_not() -> None:
    at = local("Asia/Shanghai", 2026, 11, 24, 10)
    d = decide(case(), AgentView("a-1", suspended=True), "call", Counts(), at, POLICY)
    assert d.rules == ["QA-SANCTION"] and d.next_allowed_at is None
    assert decide(case(), AgentView("a-1", suspended=False), "call", Counts(), at, POLICY).allowed


def test_every_denial_names_its_rule_together() -> None:
    at = local("Asia/Shanghai", 2026, 11, 24, 12, 30)
    d = decide(
        case(status="recalled"), AgentView("a", True), "call", Counts(calls_today=3), at, POLICY
    )
    assert d.rules == ["CASE-LIFECYCLE", "QA-SANCTION", "CALL-QUIET", "CALL-DAILY-CAP"]
    assert not d.allowed and d.next_allowed_at is None


def test_every_policy_number_carries_its_rule() -> None:
    assert ContactPolicy.rules() == {
        "quiet_periods": "CALL-QUIET",
        "quiet_channels": "CALL-QUIET",
        "daily_call_cap": "CALL-DAILY-CAP",
        "daily_unanswered_cap": "CALL-DAILY-CAP",
        "sms_weekly_cap": "SMS-WEEKLY-CAP",
        "channels_without_track": "CASE-STRATEGY",
        "no_contact_statuses": "CASE-LIFECYCLE",
        "letter_carriers": "LETTER",
        "visit_min_staff": "VISIT-TEAM",
        "visit_max_staff": "VISIT-TEAM",
        "visit_min_recordings": "VISIT-TEAM",
    }
    with pytest.raises(ValueError, match="CALL-QUIET"):
        ContactPolicy(quiet_periods=((time(9), time(9)),))
    with pytest.raises(ValueError, match="visit_min_staff"):
        ContactPolicy(visit_min_staff=1)  # VISIT-TEAM: never fewer than two
    with pytest.raises(ValueError, match="VISIT-TEAM"):
        ContactPolicy(visit_min_staff=3, visit_max_staff=2)


def test_local_days_follow_daylight_saving_changes() -> None:
    tz = "America/New_York"  # clocks go back at 02:00 on 2026-11-01
    d = decide(case(tz), None, "call", Counts(), local(tz, 2026, 10, 31, 20), POLICY)
    assert d.next_allowed_at == datetime(2026, 11, 1, 13, 0, tzinfo=UTC)  # 08:00 EST
    d = decide(case(tz), None, "call", Counts(), local(tz, 2026, 10, 30, 20), POLICY)
    assert d.next_allowed_at == datetime(2026, 10, 31, 12, 0, tzinfo=UTC)  # 08:00 EDT
