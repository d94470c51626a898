"""Business-hours calendars per SLA step (COMP-SLA-*): deadlines and warnings in working
time, 24x7 by default."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from collect_common.policy import PolicyBook, PolicyError
from complaint_svc.domain.calendar import BusinessCalendar, CalendarError
from complaint_svc.domain.handling import DEPARTMENTS
from complaint_svc.domain.model import Channel, ComplaintType, Level, Ticket, alerts_for
from complaint_svc.domain.policy import BusinessHours, ComplaintPolicy

SHANGHAI = ZoneInfo("Asia/Shanghai")
OFFICE = BusinessCalendar()  # Monday to Friday, 09:00-18:00, Asia/Shanghai
HOURS = BusinessHours()


def sh(day: date, hour: int, minute: int = 0) -> datetime:
    """A wall-clock time in Shanghai, as the UTC instant the code works with."""
    return datetime.combine(day, time(hour, minute), tzinfo=SHANGHAI).astimezone(UTC)


MON, TUE, WED, THU, FRI, SAT = (date(2026, 11, d) for d in (23, 24, 25, 26, 27, 28))
NEXT_MON = date(2026, 11, 30)


def test_a_deadline_spanning_a_night_resumes_at_the_next_opening() -> None:
    assert OFFICE.add(sh(TUE, 17), timedelta(hours=2)) == sh(WED, 10)
    assert OFFICE.working_between(sh(TUE, 17), sh(WED, 10)) == timedelta(hours=2)


def test_a_deadline_spanning_a_weekend_skips_saturday_and_sunday() -> None:
    assert OFFICE.add(sh(FRI, 16), timedelta(hours=8)) == sh(NEXT_MON, 15)
    assert OFFICE.working_between(sh(FRI, 16), sh(NEXT_MON, 15)) == timedelta(hours=8)


def test_a_holiday_is_skipped_and_a_make_up_day_is_worked() -> None:
    national_day = BusinessCalendar(
        holidays=frozenset({date(2026, 10, 1), date(2026, 10, 2)}),  # Thursday, Friday
        extra_working_days=frozenset({date(2026, 9, 26)}),  # a Saturday, worked
    )
    wed = date(2026, 9, 30)
    assert national_day.add(sh(wed, 17), timedelta(hours=2)) == sh(date(2026, 10, 5), 10)
    assert national_day.add(sh(date(2026, 9, 25), 17), timedelta(hours=2)) == sh(
        date(2026, 9, 26), 10
    )
    assert OFFICE.add(sh(wed, 17), timedelta(hours=2)) == sh(date(2026, 10, 1), 10)


def test_a_start_outside_the_hours_counts_from_the_next_opening() -> None:
    assert OFFICE.add(sh(SAT, 10), timedelta(minutes=10)) == sh(NEXT_MON, 9, 10)
    assert OFFICE.add(sh(TUE, 7), timedelta(minutes=10)) == sh(TUE, 9, 10)
    assert OFFICE.add(sh(TUE, 22), timedelta(minutes=10)) == sh(WED, 9, 10)


def test_a_span_ending_at_closing_ends_there_not_the_next_morning() -> None:
    assert OFFICE.add(sh(TUE, 9), timedelta(hours=9)) == sh(TUE, 18)
    assert OFFICE.subtract(sh(WED, 9), timedelta(hours=1)) == sh(TUE, 17)


def test_a_lunch_break_does_not_count() -> None:
    split = BusinessCalendar(hours=((time(9, 0), time(12, 0)), (time(13, 30), time(18, 0))))
    assert split.add(sh(TUE, 11), timedelta(hours=2)) == sh(TUE, 14, 30)
    assert split.working_between(sh(TUE, 9), sh(TUE, 18)) == timedelta(hours=7, minutes=30)
    assert split.is_open(sh(TUE, 11, 59)) and not split.is_open(sh(TUE, 12, 30))
    assert not split.is_open(sh(TUE, 18)) and not split.is_open(sh(SAT, 10))


def test_the_time_zone_places_the_hours() -> None:
    london = BusinessCalendar(timezone="Europe/London")
    start = datetime(2026, 11, 24, 17, 0, tzinfo=UTC)  # Tuesday 17:00 in London (GMT)
    assert london.add(start, timedelta(hours=2)) == datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
    # the same instant is Wednesday 01:00 in Shanghai: counts from 09:00 there
    assert OFFICE.add(start, timedelta(hours=2)) == sh(WED, 11)


@pytest.mark.parametrize("hours", [0, 1, 5, 9, 13, 24, 47, 100])
@pytest.mark.parametrize("start_hour", [0, 8, 9, 12, 17, 18, 23])
def test_subtract_and_working_between_undo_add(hours: int, start_hour: int) -> None:
    for day in (MON, FRI, SAT):
        start = sh(day, start_hour)
        end = OFFICE.add(start, timedelta(hours=hours, minutes=7))
        assert OFFICE.working_between(start, end) == timedelta(hours=hours, minutes=7)
        back = OFFICE.subtract(end, timedelta(hours=hours, minutes=7))
        assert OFFICE.working_between(back, end) == timedelta(hours=hours, minutes=7)
        assert back >= start and OFFICE.working_between(start, back) == timedelta(0)


def test_a_calendar_that_cannot_count_time_is_refused() -> None:
    with pytest.raises(CalendarError, match="start must be before"):
        BusinessCalendar(hours=((time(18, 0), time(9, 0)),))
    with pytest.raises(CalendarError, match="overlap"):
        BusinessCalendar(hours=((time(9, 0), time(13, 0)), (time(12, 0), time(18, 0))))
    with pytest.raises(CalendarError, match="ISO weekdays"):
        BusinessCalendar(working_days=frozenset({0, 1}))
    with pytest.raises(CalendarError, match="time zone"):
        BusinessCalendar(timezone="Mars/Olympus")
    with pytest.raises(CalendarError, match="working day"):
        BusinessCalendar(working_days=frozenset())
    with pytest.raises(ValueError, match="naive"):
        OFFICE.add(datetime(2026, 11, 24, 9, 0), timedelta(hours=1))


# -- the policy: a calendar per step, 24x7 by default ----------------------------------


def accept(policy: ComplaintPolicy, now: datetime) -> Ticket:
    return Ticket.accept(
        id="t1",
        number="CP-1",
        channel=Channel.HOTLINE,
        type=ComplaintType.ATTITUDE,
        complainant_name="张三",
        complainant_contact="13812345678",
        content="rude",
        case_id=None,
        agent_id=None,
        now=now,
        policy=policy,
    )


def test_without_a_calendar_every_step_runs_around_the_clock() -> None:
    policy = ComplaintPolicy()
    friday_night = sh(FRI, 22)
    t = accept(policy, friday_night)
    assert all(policy.calendar(s) is None for s in t.steps)
    assert t.steps["contact"].deadline == friday_night + timedelta(minutes=10)
    assert t.steps["resolve"].deadline == friday_night + timedelta(hours=24)
    assert [a.due_at for a in alerts_for(t.steps["resolve"], policy)] == [
        friday_night + timedelta(hours=12),
        friday_night + timedelta(hours=18),
        friday_night + timedelta(hours=24),
    ]


def test_a_step_with_a_calendar_has_its_deadline_and_warnings_in_working_time() -> None:
    policy = ComplaintPolicy(resolve_calendar=HOURS)
    t = accept(policy, sh(FRI, 16))
    # 24 working hours: Friday 2 h, Monday 9 h, Tuesday 9 h, Wednesday 4 h
    assert t.steps["resolve"].deadline == sh(date(2026, 12, 2), 13)
    assert t.expected_result_by == sh(date(2026, 12, 2), 13)
    alerts = alerts_for(t.steps["resolve"], policy)
    assert [(a.level, a.percent, a.due_at) for a in alerts] == [
        (Level.WARN_FIRST, 50, sh(date(2026, 12, 1), 10)),  # 12 working hours
        (Level.WARN_SECOND, 75, sh(date(2026, 12, 1), 16)),  # 18 working hours
        (Level.BREACH, 100, sh(date(2026, 12, 2), 13)),
    ]
    # the other steps keep counting around the clock
    assert t.steps["contact"].deadline == sh(FRI, 16, 10)


def test_a_call_back_accepted_on_saturday_is_due_monday_morning() -> None:
    policy = ComplaintPolicy(contact_calendar=HOURS)
    t = accept(policy, sh(SAT, 10))
    assert t.steps["contact"].deadline == sh(NEXT_MON, 9, 10)
    assert [a.due_at for a in alerts_for(t.steps["contact"], policy)][:2] == [
        sh(NEXT_MON, 9, 5),
        sh(NEXT_MON, 9, 7) + timedelta(seconds=30),
    ]


def test_the_follow_up_and_a_new_cycle_count_in_their_calendars() -> None:
    policy = ComplaintPolicy(followup_calendar=HOURS, investigate_calendar=HOURS)
    t = accept(policy, sh(THU, 10))
    for step in ("contact", "verify", "evidence", "investigate"):
        t.complete(step, sh(THU, 11), policy)
    for dept in DEPARTMENTS:
        t.add_finding(id=dept, department=dept, author="u", text="x", now=sh(THU, 12))
    t.record_outcome(
        substantiated=False,
        remedies=(),
        fee_waiver_amount=None,
        sanction_severity=None,
        apology_recorded=False,
        decided_by="u",
        now=sh(THU, 12),
        policy=policy,
    )
    t.complete("resolve", sh(FRI, 17), policy)
    # 48 working hours from Friday 17:00: 1 + 9 x 5 (Mon-Fri) + 2 -> the Monday after
    assert t.steps["followup"].deadline == sh(date(2026, 12, 7), 11)
    t.follow_up(False, None, sh(SAT, 10), policy)  # escalated on a Saturday
    assert t.steps["investigate"].deadline == sh(NEXT_MON, 17)  # 8 working hours
    assert t.steps["resolve"].deadline == sh(SAT, 10) + timedelta(hours=24)  # 24x7


def test_resuming_moves_a_calendar_step_by_the_working_time_of_the_pause() -> None:
    policy = ComplaintPolicy(verify_calendar=HOURS)
    t = accept(policy, sh(TUE, 16))
    assert t.steps["verify"].deadline == sh(TUE, 18)
    t.complete("contact", sh(TUE, 16, 5), policy)
    t.pause(sh(TUE, 17))
    t.resume(sh(WED, 10), policy)  # paused 17 hours, 2 of them working
    assert t.steps["verify"].deadline == sh(WED, 11)
    assert t.steps["evidence"].deadline == sh(TUE, 16) + timedelta(hours=4 + 17)  # 24x7
    t.pause(sh(WED, 19))
    t.resume(sh(THU, 8), policy)  # a pause with no working time moves nothing
    assert t.steps["verify"].deadline == sh(WED, 11)


def test_a_bank_contract_configures_calendars_in_its_policy_file() -> None:
    book = PolicyBook.parse(
        ComplaintPolicy,
        {
            "policies": [
                {
                    "contract": "bank-a",
                    "resolve_minutes": 480,
                    "resolve_calendar": {
                        "working_days": [1, 2, 3, 4, 5, 6],
                        "hours": [["08:30", "12:00"], ["13:00", "17:30"]],
                        "holidays": ["2026-11-30"],
                    },
                }
            ]
        },
    )
    policy = book.for_contract("bank-a", date(2026, 11, 28))
    # Saturday 5.5 h, Sunday off, Monday a holiday, Tuesday 08:30 + 2.5 h
    assert policy.deadline("resolve", sh(SAT, 11)) == sh(date(2026, 12, 1), 11)
    assert book.for_contract("default", date(2026, 11, 28)).calendar("resolve") is None
    with pytest.raises(PolicyError, match=r"COMP-SLA-RESOLVE.*time zone"):
        PolicyBook.parse(
            ComplaintPolicy,
            {"policies": [{"resolve_calendar": {"timezone": "Nowhere/City"}}]},
        )
    assert ComplaintPolicy.rule_of("contact_calendar") == "COMP-SLA-CONTACT"
