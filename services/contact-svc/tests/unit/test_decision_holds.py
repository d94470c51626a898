"""Contact holds in the engine (CONTACT-CONDUCT) and quiet hours for field visits
(CALL-QUIET applied to the ``visit`` channel by the default policy)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from contact_svc.domain.decision import CaseView, Counts, HoldView, decide
from contact_svc.domain.policy import ContactPolicy

POLICY = ContactPolicy()
TZ = "Asia/Shanghai"
ALL = ("call", "sms", "letter", "visit")


def case() -> CaseView:
    return CaseView("case-1", "debtor-1", "active", ALL, TZ)


def local(d: int, h: int, mi: int = 0) -> datetime:
    return datetime(2026, 11, d, h, mi, tzinfo=ZoneInfo(TZ)).astimezone(UTC)


def hold(until: datetime | None, hold_id: str = "h-1", kind: str = "do_not_contact") -> HoldView:
    return HoldView(hold_id, kind, "CONTACT-CONDUCT", until)


@pytest.mark.parametrize("channel", ALL)
def test_an_open_ended_hold_denies_every_channel_until_lifted(channel: str) -> None:
    d = decide(case(), None, channel, Counts(), local(24, 10), POLICY, [hold(None)])  # type: ignore[arg-type]
    assert not d.allowed
    assert d.rules == ["CONTACT-CONDUCT"]
    assert "do-not-contact hold h-1" in d.denials[0].reason
    assert d.next_allowed_at is None


def test_a_hold_with_an_end_says_the_contact_is_next_allowed_then() -> None:
    until = local(26, 9)
    d = decide(case(), None, "letter", Counts(), local(24, 10), POLICY, [hold(until)])
    assert d.rules == ["CONTACT-CONDUCT"] and d.next_allowed_at == until


def test_the_last_of_several_holds_decides_and_time_rules_apply_after_it() -> None:
    holds = [hold(local(25, 9), "h-1"), hold(local(25, 21), "h-2", "complaint")]
    d = decide(case(), None, "call", Counts(), local(24, 10), POLICY, holds)
    assert d.rules == ["CONTACT-CONDUCT", "CONTACT-CONDUCT"]
    assert "complaint hold h-2" in d.denials[1].reason
    # the last hold ends at 21:00, inside quiet hours: calls are next allowed at 08:00
    assert d.next_allowed_at == local(26, 8)
    # one open-ended hold among them: only lifting it allows the contact
    d = decide(case(), None, "call", Counts(), local(24, 10), POLICY, [*holds, hold(None, "h-3")])
    assert d.next_allowed_at is None


def test_todays_call_cap_does_not_outlive_a_hold_ending_tomorrow() -> None:
    full = Counts(calls_today=3)
    d = decide(case(), None, "call", full, local(24, 10), POLICY, [hold(local(25, 10))])
    assert d.rules == ["CONTACT-CONDUCT", "CALL-DAILY-CAP"]
    assert d.next_allowed_at == local(25, 10)
    # ending later today, the cap still holds: tomorrow 08:00
    d = decide(case(), None, "call", full, local(24, 10), POLICY, [hold(local(24, 11))])
    assert d.next_allowed_at == local(25, 8)


@pytest.mark.parametrize(
    ("h", "mi", "allowed"),
    [
        (11, 59, True),
        (12, 0, False),
        (13, 59, False),
        (14, 0, True),
        (20, 0, False),
        (7, 59, False),
    ],
)
def test_a_visit_is_held_to_the_quiet_hours_in_the_debtors_local_time(
    h: int, mi: int, allowed: bool
) -> None:
    d = decide(case(), None, "visit", Counts(), local(24, h, mi), POLICY)
    assert d.allowed is allowed
    if not allowed:
        assert d.rules == ["CALL-QUIET"]
        assert d.next_allowed_at in (local(24, 14), local(24, 8), local(25, 8))


def test_letters_are_not_held_to_quiet_hours_unless_the_contract_says_so() -> None:
    at = local(24, 23)
    assert decide(case(), None, "letter", Counts(), at, POLICY).allowed
    strict = ContactPolicy(quiet_channels=("call", "visit", "letter"))
    d = decide(case(), None, "letter", Counts(), at, strict)
    assert d.rules == ["CALL-QUIET"] and d.next_allowed_at == local(25, 8)
    assert at + timedelta(hours=9) == d.next_allowed_at
