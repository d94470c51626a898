from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from complaint_svc.domain.handling import DEPARTMENTS
from complaint_svc.domain.model import (
    Channel,
    ComplaintType,
    Level,
    Ticket,
    TicketState,
    TicketStateError,
    alerts_for,
)
from complaint_svc.domain.policy import ComplaintPolicy

NOW = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)
POLICY = ComplaintPolicy()


def ticket() -> Ticket:
    return Ticket.accept(
        id="t1",
        number="CP-1",
        channel=Channel.HOTLINE,
        type=ComplaintType.ATTITUDE,
        complainant_name="张三",
        complainant_contact="13812345678",
        content="rude",
        case_id="c1",
        agent_id=None,
        now=NOW,
        policy=POLICY,
    )


def investigated(t: Ticket, at: datetime) -> None:
    """The three departments' findings and the cycle's outcome (COMP-JOINT)."""
    for i, d in enumerate(DEPARTMENTS):
        t.add_finding(id=f"f{t.cycle}-{i}", department=d, author="u", text="seen", now=at)
    t.record_outcome(
        substantiated=False,
        remedies=(),
        fee_waiver_amount=None,
        sanction_severity=None,
        apology_recorded=False,
        decided_by="u",
        now=at,
        policy=POLICY,
    )


def test_policy_cites_each_sla_rule_and_defaults() -> None:
    rules = ComplaintPolicy.rules()
    for rule_id in (
        "COMP-SLA-CONTACT",
        "COMP-SLA-VERIFY",
        "COMP-SLA-EVIDENCE",
        "COMP-SLA-INVESTIGATE",
        "COMP-SLA-RESOLVE",
        "COMP-SLA-FOLLOWUP",
    ):
        assert rule_id in rules.values()
    assert POLICY.duration("contact") == timedelta(minutes=10)
    assert POLICY.duration("followup") == timedelta(hours=48)
    with pytest.raises(ValueError, match="COMP-SLA-WARN"):
        ComplaintPolicy(warning_first_percent=80, warning_second_percent=75)


def test_acceptance_starts_every_clock_but_the_follow_up() -> None:
    t = ticket()
    assert t.steps["resolve"].deadline == NOW + timedelta(hours=24)
    assert t.steps["followup"].started_at is None
    alerts = alerts_for(t.steps["contact"], POLICY)
    assert [(a.level, a.due_at) for a in alerts] == [
        (Level.WARN_FIRST, NOW + timedelta(minutes=5)),
        (Level.WARN_SECOND, NOW + timedelta(minutes=7, seconds=30)),
        (Level.BREACH, NOW + timedelta(minutes=10)),
    ]


def test_the_whole_chain_moves_through_the_states() -> None:
    t = ticket()
    seen = []
    for step in ("contact", "verify", "evidence", "investigate", "resolve", "followup"):
        if step == "resolve":
            investigated(t, NOW + timedelta(minutes=1))
        t.complete(step, NOW + timedelta(minutes=1), POLICY)
        seen.append(t.state)
    assert seen == [
        TicketState.CONTACTED,
        TicketState.VERIFYING,
        TicketState.INVESTIGATING,
        TicketState.INVESTIGATING,
        TicketState.RESOLVED,
        TicketState.FOLLOWED_UP,
    ]
    assert t.steps["followup"].deadline == NOW + timedelta(minutes=1, hours=48)
    later = NOW + timedelta(hours=3)
    alerts = t.escalate(later, POLICY)
    assert t.state is TicketState.ESCALATED and t.cycle == 2
    assert {a.step for a in alerts} == {"investigate", "resolve"}
    assert t.steps["investigate"].deadline == later + timedelta(hours=8)
    assert t.steps["followup"].status == "not_started"
    assert t.steps["contact"].status == "done"
    assert t.timer_key("resolve", Level.BREACH) == "complaint:t1:c2:resolve:breach"
    assert t.timer_key("contact", Level.BREACH) == "complaint:t1:contact:breach"
    assert t.events[-1].type_name == "complaint.escalated.v1"
    with pytest.raises(TicketStateError, match="state escalated"):
        t.close(NOW)
    with pytest.raises(TicketStateError, match="state escalated"):
        t.complete("resolve", later, POLICY)
    t.complete("investigate", later, POLICY)
    assert t.state is TicketState.INVESTIGATING
    investigated(t, later)
    t.complete("resolve", later, POLICY)
    assert t.follow_up(True, "thanks", later, POLICY) == []
    assert t.state is TicketState.CLOSED and t.steps["followup"].status == "done"


def test_follow_up_is_only_after_the_result() -> None:
    t = ticket()
    with pytest.raises(TicketStateError, match="state received"):
        t.follow_up(False, None, NOW, POLICY)


def test_illegal_transitions_name_the_current_state() -> None:
    t = ticket()
    with pytest.raises(TicketStateError, match="state received"):
        t.complete("verify", NOW, POLICY)
    t.complete("contact", NOW, POLICY)
    with pytest.raises(TicketStateError, match="state contacted"):
        t.complete("contact", NOW, POLICY)
    t.complete("verify", NOW, POLICY)
    t.complete("evidence", NOW, POLICY)
    with pytest.raises(TicketStateError, match="complete investigate first"):
        t.complete("resolve", NOW, POLICY)
    with pytest.raises(TicketStateError):
        t.close(NOW)


def test_resume_moves_running_deadlines_by_the_pause() -> None:
    t = ticket()
    t.complete("contact", NOW + timedelta(minutes=2), POLICY)
    t.pause(NOW + timedelta(minutes=30))
    with pytest.raises(TicketStateError, match="paused"):
        t.complete("verify", NOW + timedelta(minutes=31), POLICY)
    shift = t.resume(NOW + timedelta(hours=1, minutes=30), POLICY)
    assert shift == timedelta(hours=1)
    assert t.steps["verify"].deadline == NOW + timedelta(hours=3)
    assert t.steps["contact"].deadline == NOW + timedelta(minutes=10)  # done: not moved
    with pytest.raises(TicketStateError, match="not paused"):
        t.resume(NOW, POLICY)


def test_an_alert_is_recorded_once_and_not_after_completion() -> None:
    t = ticket()
    assert t.alert("contact", Level.WARN_FIRST, 50, NOW)
    assert not t.alert("contact", Level.WARN_FIRST, 50, NOW)
    t.complete("contact", NOW, POLICY)
    assert not t.alert("contact", Level.BREACH, 100, NOW)
