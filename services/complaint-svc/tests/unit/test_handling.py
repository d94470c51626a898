"""The joint investigation per cycle (COMP-JOINT), its outcome (COMP-SANCTION) and the
steps each cycle kept (COMP-ESCALATE), on the ticket model."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from collect_common.events.complaint import ComplaintOutcomeRecorded
from complaint_svc.domain.handling import (
    DEPARTMENTS,
    Department,
    OutcomeInvalid,
    Remedy,
    SanctionSeverity,
    sanction_of,
)
from complaint_svc.domain.model import (
    Channel,
    ComplaintType,
    JointInvestigationIncomplete,
    Ticket,
    TicketState,
    TicketStateError,
)
from complaint_svc.domain.policy import ComplaintPolicy

NOW = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)
POLICY = ComplaintPolicy()


def investigating(at: datetime = NOW) -> Ticket:
    t = Ticket.accept(
        id="t1",
        number="CP-1",
        channel=Channel.HOTLINE,
        type=ComplaintType.ATTITUDE,
        complainant_name="张三",
        complainant_contact="13812345678",
        content="rude",
        case_id="c1",
        agent_id="a7",
        now=at,
        policy=POLICY,
    )
    t.debtor_id = "d1"
    for step in ("contact", "verify", "evidence"):
        t.complete(step, at + timedelta(minutes=5), POLICY)
    return t


def find_all(t: Ticket, at: datetime) -> None:
    for d in DEPARTMENTS:
        t.add_finding(id=f"{t.cycle}-{d}", department=d, author=f"{d}-lead", text="ok", now=at)


def outcome(t: Ticket, at: datetime, policy: ComplaintPolicy = POLICY, **kw: Any) -> None:
    args: dict[str, Any] = {
        "substantiated": True,
        "remedies": (),
        "fee_waiver_amount": None,
        "sanction_severity": None,
        "apology_recorded": False,
        "decided_by": "handler-1",
        "now": at,
        "policy": policy,
    }
    args.update(kw)
    t.record_outcome(**args)


def test_the_ticket_names_the_departments_whose_findings_are_missing() -> None:
    t = investigating()
    assert t.pending_departments() == [
        Department.COLLECTION,
        Department.COMPLIANCE,
        Department.CUSTOMER_SERVICE,
    ]
    t.add_finding(
        id="f1",
        department=Department.COMPLIANCE,
        author="li",
        text="The agent called the debtor's employer twice.",
        now=NOW,
    )
    t.add_finding(id="f2", department=Department.COMPLIANCE, author="wu", text="+", now=NOW)
    assert t.pending_departments() == [Department.COLLECTION, Department.CUSTOMER_SERVICE]
    with pytest.raises(JointInvestigationIncomplete) as refused:
        outcome(t, NOW)
    assert refused.value.pending == [Department.COLLECTION, Department.CUSTOMER_SERVICE]
    assert "collection, customer_service" in str(refused.value)
    assert "state investigating" in str(refused.value)
    assert t.outcomes == {}


def test_an_outcome_after_all_three_emits_the_event_with_ids_only() -> None:
    t = investigating()
    find_all(t, NOW)
    t.events.clear()
    outcome(
        t,
        NOW + timedelta(hours=1),
        remedies=(Remedy.FEE_WAIVER, Remedy.CHANGE_OF_APPROACH),
        fee_waiver_amount=Decimal("200.00"),
        sanction_severity=SanctionSeverity.SERIOUS,
        apology_recorded=True,
    )
    [event] = t.events
    assert isinstance(event, ComplaintOutcomeRecorded)
    assert event.model_dump(mode="json") == {
        "ticket_id": "t1",
        "cycle": 1,
        "case_id": "c1",
        "debtor_id": "d1",
        "agent_id": "a7",
        "substantiated": True,
        "remedies": ["fee_waiver", "change_of_approach"],
        "fee_waiver_amount": "200.00",
        "sanction_requested": True,
        "sanction_severity": "serious",
        "apology_recorded": True,
        "rule_id": "COMP-JOINT",
        "decided_at": "2026-11-28T03:00:00Z",
    }
    assert t.outcomes[1].decided_by == "handler-1"
    with pytest.raises(TicketStateError, match="cycle 1 has its outcome"):
        outcome(t, NOW)
    with pytest.raises(TicketStateError, match="outcome of cycle 1 is recorded"):
        t.add_finding(id="late", department=Department.COLLECTION, author="x", text="x", now=NOW)


def test_the_outcome_is_recorded_while_investigating_and_not_paused() -> None:
    t = Ticket.accept(
        id="t2",
        number="CP-2",
        channel=Channel.PORTAL,
        type=ComplaintType.OTHER,
        complainant_name="n",
        complainant_contact="c",
        content="x",
        case_id=None,
        agent_id=None,
        now=NOW,
        policy=POLICY,
    )
    find_all(t, NOW)  # departments may start before the evidence is in
    with pytest.raises(TicketStateError, match=r"cannot record the outcome .* state received"):
        outcome(t, NOW)
    t2 = investigating()
    find_all(t2, NOW)
    t2.pause(NOW)
    with pytest.raises(TicketStateError, match="paused"):
        outcome(t2, NOW)


def test_resolve_needs_the_cycle_outcome() -> None:
    t = investigating()
    t.complete("investigate", NOW + timedelta(hours=1), POLICY)
    with pytest.raises(TicketStateError, match="record the outcome of cycle 1 first"):
        t.complete("resolve", NOW + timedelta(hours=2), POLICY)
    find_all(t, NOW + timedelta(hours=1))
    outcome(t, NOW + timedelta(hours=2), substantiated=False)
    t.complete("resolve", NOW + timedelta(hours=2), POLICY)
    assert t.state is TicketState.RESOLVED
    with pytest.raises(TicketStateError, match="state resolved"):
        t.add_finding(id="x", department=Department.COLLECTION, author="x", text="x", now=NOW)


@pytest.mark.parametrize(
    ("kw", "field", "message"),
    [
        ({"remedies": (Remedy.FEE_WAIVER,)}, "fee_waiver_amount", "needs its amount"),
        (
            {"remedies": (Remedy.FEE_WAIVER,), "fee_waiver_amount": Decimal("5000.01")},
            "fee_waiver_amount",
            "exceeds the bank policy's limit of 5000.00",
        ),
        (
            {"remedies": (Remedy.FEE_WAIVER,), "fee_waiver_amount": Decimal("0")},
            "fee_waiver_amount",
            "positive",
        ),
        ({"fee_waiver_amount": Decimal("10")}, "fee_waiver_amount", "only given with"),
        ({"remedies": (Remedy.NEW_PLAN, Remedy.NEW_PLAN)}, "remedies", "twice"),
        (
            {"substantiated": False, "sanction_severity": SanctionSeverity.MINOR},
            "sanction_severity",
            "only requested when the complaint is substantiated",
        ),
    ],
)
def test_an_outcome_breaking_the_sanction_rules_is_refused(
    kw: dict[str, Any], field: str, message: str
) -> None:
    t = investigating()
    find_all(t, NOW)
    with pytest.raises(OutcomeInvalid, match=message) as refused:
        outcome(t, NOW, **kw)
    assert (refused.value.field, refused.value.rule) == (field, "COMP-SANCTION")
    assert t.outcomes == {} and not any(isinstance(e, ComplaintOutcomeRecorded) for e in t.events)


def test_a_sanction_needs_an_agent_on_the_ticket() -> None:
    t = investigating()
    t.agent_id = None
    find_all(t, NOW)
    with pytest.raises(OutcomeInvalid, match="names no agent") as refused:
        outcome(t, NOW, sanction_severity=SanctionSeverity.MINOR)
    assert refused.value.field == "sanction_requested"
    outcome(t, NOW, apology_recorded=True)
    assert t.outcomes[1].sanction_requested is False


def test_the_fee_waiver_limit_is_the_contract_policy() -> None:
    strict = ComplaintPolicy(fee_waiver_max_amount=Decimal("100.00"))
    assert ComplaintPolicy.rule_of("fee_waiver_max_amount") == "COMP-SANCTION"
    t = investigating()
    find_all(t, NOW)
    with pytest.raises(OutcomeInvalid, match=r"limit of 100\.00"):
        outcome(t, NOW, strict, remedies=(Remedy.FEE_WAIVER,), fee_waiver_amount=Decimal("150"))
    outcome(t, NOW, strict, remedies=(Remedy.FEE_WAIVER,), fee_waiver_amount=Decimal("100.00"))
    assert t.outcomes[1].fee_waiver_amount == Decimal("100.00")


def test_a_sanction_request_names_its_severity() -> None:
    assert sanction_of(True, SanctionSeverity.MINOR) is SanctionSeverity.MINOR
    assert sanction_of(False, None) is None
    with pytest.raises(OutcomeInvalid, match="names its severity"):
        sanction_of(True, None)
    with pytest.raises(OutcomeInvalid, match="only given with a sanction request"):
        sanction_of(False, SanctionSeverity.SERIOUS)


def test_an_escalated_cycle_needs_its_own_findings_and_outcome_and_keeps_the_history() -> None:
    t = investigating()
    t.complete("investigate", NOW + timedelta(hours=9), POLICY)  # late: 8 h allowed
    find_all(t, NOW + timedelta(hours=9))
    outcome(t, NOW + timedelta(hours=10), substantiated=False)
    t.complete("resolve", NOW + timedelta(hours=10), POLICY)
    first_resolve_deadline = t.steps["resolve"].deadline
    escalated_at = NOW + timedelta(hours=20)
    t.follow_up(False, "not satisfied", escalated_at, POLICY)
    assert t.state is TicketState.ESCALATED and t.cycle == 2
    assert t.pending_departments() == list(DEPARTMENTS)
    assert t.pending_departments(1) == []

    t.complete("investigate", escalated_at + timedelta(hours=1), POLICY)
    with pytest.raises(JointInvestigationIncomplete, match="cycle 2"):
        outcome(t, escalated_at + timedelta(hours=1))
    with pytest.raises(TicketStateError, match="record the outcome of cycle 2 first"):
        t.complete("resolve", escalated_at + timedelta(hours=2), POLICY)
    find_all(t, escalated_at + timedelta(hours=2))
    outcome(
        t,
        escalated_at + timedelta(hours=2),
        remedies=(Remedy.NEW_PLAN,),
        sanction_severity=SanctionSeverity.MINOR,
        apology_recorded=True,
    )
    t.complete("resolve", escalated_at + timedelta(hours=3), POLICY)
    t.follow_up(True, None, escalated_at + timedelta(hours=4), POLICY)
    assert t.state is TicketState.CLOSED
    assert t.outcomes[1].substantiated is False and t.outcomes[2].substantiated is True
    assert len([f for f in t.findings if f.cycle == 2]) == 3

    first = {r.step: r for r in t.cycle_steps(1)}
    assert list(first) == ["contact", "verify", "evidence", "investigate", "resolve", "followup"]
    assert first["investigate"].within_sla is False
    assert first["investigate"].completed_at == NOW + timedelta(hours=9)
    assert first["resolve"].deadline == first_resolve_deadline
    assert first["resolve"].within_sla is True
    assert first["followup"].completed_at == escalated_at
    second = {r.step: r for r in t.cycle_steps(2)}
    assert list(second) == ["investigate", "resolve", "followup"]
    assert second["investigate"].deadline == escalated_at + timedelta(hours=8)
    assert second["resolve"].completed_at == escalated_at + timedelta(hours=3)
    assert all(r.within_sla for r in second.values())
