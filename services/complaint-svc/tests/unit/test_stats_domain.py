"""COMP-STATS in the domain: report periods in the reporting time zone, report shaping,
corrective actions' lifecycle, and the portal's rate window (COMP-CHANNELS)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from complaint_svc.domain.policy import ComplaintPolicy
from complaint_svc.domain.stats import (
    UNKNOWN,
    ActionStateError,
    ActionStatus,
    CorrectiveAction,
    Finding,
    StatsInputError,
    StepAttainment,
    counts_with_zeros,
    iso_week,
    local_days,
    months_through,
    parse_month,
    series_of,
    week_of,
)
from complaint_svc.service_layer.portal_limits import decide, window_start

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


# -- periods ------------------------------------------------------------------------------


def test_an_iso_week_runs_monday_to_monday_in_the_reporting_zone() -> None:
    week = iso_week("2026-W48", SHANGHAI)
    assert week.start == utc("2026-11-23T00:00:00+08:00") == utc("2026-11-22T16:00:00+00:00")
    assert week.end == utc("2026-11-30T00:00:00+08:00")


def test_the_current_week_is_the_local_one_not_the_utc_one() -> None:
    # Sunday 17:00 UTC is already Monday 01:00 in Shanghai: the next ISO week there
    sunday_evening_utc = utc("2026-11-29T17:00:00+00:00")
    assert week_of(sunday_evening_utc, SHANGHAI).label == "2026-W49"
    assert week_of(sunday_evening_utc, ZoneInfo("UTC")).label == "2026-W48"


@pytest.mark.parametrize("label", ["2026-48", "2026-W8", "W48-2026", "2025-W53", "2026-W00"])
def test_a_week_that_is_not_an_iso_week_names_the_field(label: str) -> None:
    with pytest.raises(StatsInputError) as exc:
        iso_week(label, SHANGHAI)
    assert exc.value.field == "week"


def test_2026_has_53_iso_weeks() -> None:
    week = iso_week("2026-W53", SHANGHAI)
    assert week.start == utc("2026-12-28T00:00:00+08:00")


def test_months_run_across_the_year_in_local_time() -> None:
    months = months_through(parse_month("2026-02"), 3, SHANGHAI)
    assert [m.label for m in months] == ["2025-12", "2026-01", "2026-02"]
    assert months[0].start == utc("2025-12-01T00:00:00+08:00")
    assert months[1].start == months[0].end == utc("2026-01-01T00:00:00+08:00")
    assert months[2].end == utc("2026-03-01T00:00:00+08:00")


def test_month_boundaries_follow_daylight_saving_time() -> None:
    new_york = ZoneInfo("America/New_York")
    march, april = months_through((2026, 4), 2, new_york)
    assert march.start == utc("2026-03-01T05:00:00+00:00")  # EST
    assert april.start == march.end == utc("2026-04-01T04:00:00+00:00")  # EDT


@pytest.mark.parametrize("label", ["2026-13", "2026-1", "26-11", "2026/11"])
def test_a_month_that_is_not_one_names_the_field(label: str) -> None:
    with pytest.raises(StatsInputError) as exc:
        parse_month(label)
    assert exc.value.field == "through"


def test_local_days_include_the_last_day() -> None:
    period = local_days(date(2026, 11, 1), date(2026, 11, 30), SHANGHAI)
    assert period.start == utc("2026-11-01T00:00:00+08:00")
    assert period.end == utc("2026-12-01T00:00:00+08:00")
    with pytest.raises(StatsInputError) as exc:
        local_days(date(2026, 11, 2), date(2026, 11, 1), SHANGHAI)
    assert exc.value.field == "to"


# -- report shaping -----------------------------------------------------------------------


def test_counts_list_every_known_key_then_the_others_with_unknown_for_none() -> None:
    counts = counts_with_zeros({"email": 2, None: 1, "fax": 3}, ("hotline", "email"))
    assert [(c.key, c.count) for c in counts] == [
        ("hotline", 0),
        ("email", 2),
        ("fax", 3),
        (UNKNOWN, 1),
    ]


def test_series_align_counts_with_the_months_largest_first() -> None:
    months = months_through((2026, 11), 2, SHANGHAI)
    series = series_of(
        {("2026-10", "310000"): 1, ("2026-11", "310000"): 4, ("2026-11", None): 2}, months
    )
    assert [(s.key, s.counts, s.total) for s in series] == [
        ("310000", [1, 4], 5),
        (UNKNOWN, [0, 2], 2),
    ]


def test_attainment_is_within_over_completed() -> None:
    assert StepAttainment("contact", "COMP-SLA-CONTACT", 3, 2, 1).attainment == 0.6667
    assert StepAttainment("verify", "COMP-SLA-VERIFY", 0, 0, 2).attainment is None


# -- corrective actions -------------------------------------------------------------------


def action(**overrides: object) -> CorrectiveAction:
    values: dict[str, object] = {
        "id": "a1",
        "ticket_id": "t1",
        "finding": None,
        "description": "retrain agent 7 on call conduct",
        "owner": "lead-1",
        "deadline": NOW + timedelta(days=7),
        "actor": "ops-1",
        "now": NOW,
    }
    values.update(overrides)
    return CorrectiveAction.create(**values)  # type: ignore[arg-type]


def test_an_action_comes_from_exactly_one_ticket_or_finding() -> None:
    finding = Finding(report="weekly", period="2026-W48", dimension="type", key="attitude")
    assert action(ticket_id=None, finding=finding).source == "finding"
    assert action().source == "ticket"
    for ticket_id, f in ((None, None), ("t1", finding)):
        with pytest.raises(StatsInputError) as exc:
            action(ticket_id=ticket_id, finding=f)
        assert exc.value.field == "ticket_id"


def test_an_action_needs_a_deadline_ahead() -> None:
    with pytest.raises(StatsInputError) as exc:
        action(deadline=NOW)
    assert exc.value.field == "deadline"


def test_an_action_moves_open_in_progress_done_and_records_each_change() -> None:
    a = action()
    assert a.status is ActionStatus.OPEN
    assert [c.kind for c in a.changes] == ["created"]
    a.changes.clear()
    later = NOW + timedelta(hours=1)
    change = a.update(actor="lead-1", now=later, status=ActionStatus.IN_PROGRESS, owner="lead-2")
    assert change is not None
    assert change.fields == {"status": ["open", "in_progress"], "owner": ["lead-1", "lead-2"]}
    assert (change.actor, change.at) == ("lead-1", later)
    a.update(actor="lead-2", now=later, status=ActionStatus.DONE)
    assert a.status is ActionStatus.DONE and a.done_at == later


def test_an_action_cannot_skip_go_back_or_change_once_done() -> None:
    a = action()
    with pytest.raises(ActionStateError) as exc:
        a.update(actor="x", now=NOW, status=ActionStatus.DONE)
    assert exc.value.current is ActionStatus.OPEN
    a.update(actor="x", now=NOW, status=ActionStatus.IN_PROGRESS)
    with pytest.raises(ActionStateError):
        a.update(actor="x", now=NOW, status=ActionStatus.OPEN)
    a.update(actor="x", now=NOW, status=ActionStatus.DONE)
    with pytest.raises(ActionStateError) as done:
        a.update(actor="x", now=NOW, owner="someone-else")
    assert done.value.current is ActionStatus.DONE


def test_a_repeated_value_changes_nothing_and_a_description_is_named_not_copied() -> None:
    a = action()
    assert a.update(actor="x", now=NOW, owner="lead-1", status=ActionStatus.OPEN) is None
    change = a.update(actor="x", now=NOW, description="retrain and re-examine agent 7")
    assert change is not None and change.fields == {"description": [None, None]}
    assert a.description == "retrain and re-examine agent 7"


def test_moving_the_deadline_into_the_past_is_refused() -> None:
    a = action()
    with pytest.raises(StatsInputError):
        a.update(actor="x", now=NOW, deadline=NOW - timedelta(minutes=1))


def test_overdue_is_past_the_deadline_and_not_done() -> None:
    a = action(deadline=NOW + timedelta(days=1))
    assert not a.overdue(NOW + timedelta(days=1))  # at the deadline: still in time
    assert a.overdue(NOW + timedelta(days=1, seconds=1))
    a.update(actor="x", now=NOW, status=ActionStatus.IN_PROGRESS)
    a.update(actor="x", now=NOW, status=ActionStatus.DONE)
    assert not a.overdue(NOW + timedelta(days=30))


# -- policy values ------------------------------------------------------------------------


def test_policy_names_the_reporting_zone_and_portal_rate_with_their_rules() -> None:
    policy = ComplaintPolicy()
    assert policy.reporting_timezone == "Asia/Shanghai"
    assert policy.rule_of("reporting_timezone") == "COMP-STATS"
    assert policy.rule_of("trend_max_months") == "COMP-STATS"
    assert policy.rule_of("portal_rate_limit") == "COMP-CHANNELS"
    assert policy.rule_of("portal_rate_window_seconds") == "COMP-CHANNELS"
    with pytest.raises(ValidationError, match="reporting_timezone"):
        ComplaintPolicy(reporting_timezone="Mars/Olympus_Mons")


# -- the portal's rate window -------------------------------------------------------------


def test_rate_windows_are_aligned_and_retry_after_runs_to_the_window_end() -> None:
    now = utc("2026-11-28T02:00:42+00:00")
    start = window_start(now, 60)
    assert start == utc("2026-11-28T02:00:00+00:00")
    assert decide(10, 10, start, 60, now).allowed
    refused = decide(11, 10, start, 60, now)
    assert not refused.allowed and refused.retry_after_seconds == 18
    assert decide(11, 10, start, 60, start + timedelta(seconds=59.5)).retry_after_seconds == 1


def test_periods_at_the_calendars_ends_are_refused_not_crashed() -> None:
    for call, field in (
        (lambda: iso_week("9999-W52", SHANGHAI), "week"),
        (lambda: parse_month("0000-01"), "through"),
        (lambda: months_through((1970, 2), 3, SHANGHAI), "months"),
        (lambda: local_days(date(9999, 12, 30), date(9999, 12, 31), SHANGHAI), "from"),
    ):
        with pytest.raises(StatsInputError) as exc:
            call()
        assert exc.value.field == field
