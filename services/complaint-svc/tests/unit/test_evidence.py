"""The debtor's SMS and letters as a ticket's evidence (COMP-SLA-EVIDENCE), and the event a
ticket's final state emits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from collect_common.events.complaint import ComplaintClosed
from complaint_svc.domain.evidence import ContactRecord, RecordKind, evidence_to_attach
from complaint_svc.domain.handling import DEPARTMENTS
from complaint_svc.domain.model import Channel, ComplaintType, Ticket, TicketState
from complaint_svc.domain.policy import ComplaintPolicy

NOW = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)
POLICY = ComplaintPolicy()


def ticket(debtor_id: str | None = "d-1") -> Ticket:
    t = Ticket.accept(
        id="t1",
        number="CP-1",
        channel=Channel.HOTLINE,
        type=ComplaintType.FREQUENCY,
        complainant_name="张三",
        complainant_contact="13812345678",
        content="too many messages",
        case_id="c-1",
        agent_id="a-1",
        now=NOW,
        policy=POLICY,
    )
    t.debtor_id = debtor_id
    return t


def sms(ref: str, days_ago: float, debtor_id: str = "d-1") -> ContactRecord:
    return ContactRecord(
        kind=RecordKind.SMS,
        reference=ref,
        debtor_id=debtor_id,
        case_id="c-1",
        agent_id="a-1",
        occurred_at=NOW - timedelta(days=days_ago),
    )


def test_the_policy_names_the_window_with_its_rule() -> None:
    assert POLICY.evidence_contact_days == 30
    assert ComplaintPolicy.rules()["evidence_contact_days"] == "COMP-SLA-EVIDENCE"


def test_records_in_the_window_are_attached_oldest_first_and_once() -> None:
    t = ticket()
    later = NOW + timedelta(hours=2)
    records = [
        sms("m-recent", 1),
        sms("m-edge", 30),  # exactly the window's start: in
        sms("m-old", 30.5),  # before the window
        sms("m-other", 1, debtor_id="d-2"),  # another debtor's
        ContactRecord(
            kind=RecordKind.LETTER_DELIVERED,
            reference="l-1",
            debtor_id="d-1",
            case_id="c-1",
            agent_id=None,
            occurred_at=NOW - timedelta(days=3),
            proof_ref="receipt-77",
        ),
    ]
    new = evidence_to_attach(t, records, POLICY.evidence_contact_days, later)
    assert [(e.kind, e.reference) for e in new] == [
        ("sms", "m-edge"),
        ("letter_delivered", "l-1"),
        ("sms", "m-recent"),
    ]
    assert new[1].proof_ref == "receipt-77" and new[1].occurred_at == NOW - timedelta(days=3)
    assert all(e.added_at == later and e.size_bytes is None for e in new)
    assert t.evidence == new
    # the same records again (a redelivered event): nothing new
    assert evidence_to_attach(t, records, POLICY.evidence_contact_days, later) == []
    # the same letter's dispatch is another record (kind and id)
    dispatched = ContactRecord(
        kind=RecordKind.LETTER_DISPATCHED,
        reference="l-1",
        debtor_id="d-1",
        case_id="c-1",
        agent_id=None,
        occurred_at=NOW - timedelta(days=5),
    )
    assert [e.kind for e in evidence_to_attach(t, [dispatched], 30, later)] == ["letter_dispatched"]


def test_a_record_after_acceptance_is_attached_and_the_window_follows_the_policy() -> None:
    t = ticket()
    assert len(evidence_to_attach(t, [sms("m-after", -1)], 30, NOW + timedelta(days=1))) == 1
    assert evidence_to_attach(t, [sms("m-week", 8)], 7, NOW) == []
    assert len(evidence_to_attach(t, [sms("m-week", 8)], 10, NOW)) == 1


def test_a_closed_ticket_or_one_without_a_debtor_gains_nothing() -> None:
    assert evidence_to_attach(ticket(debtor_id=None), [sms("m-1", 1)], 30, NOW) == []
    t = ticket()
    t.state = TicketState.CLOSED
    assert evidence_to_attach(t, [sms("m-1", 1)], 30, NOW) == []
    assert t.evidence == []


def test_closing_a_ticket_emits_complaint_closed_with_ids_only() -> None:
    t = ticket()
    at = NOW + timedelta(minutes=1)
    for step in ("contact", "verify", "evidence", "investigate"):
        t.complete(step, at, POLICY)
    for i, d in enumerate(DEPARTMENTS):
        t.add_finding(id=f"f{i}", department=d, author="u", text="seen", now=at)
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
    t.complete("resolve", at, POLICY)
    assert not [e for e in t.events if isinstance(e, ComplaintClosed)]
    done = NOW + timedelta(hours=5)
    t.follow_up(True, "thanks", done, POLICY)
    closed = t.events[-1]
    assert isinstance(closed, ComplaintClosed)
    assert closed.model_dump(mode="json") == {
        "ticket_id": "t1",
        "case_id": "c-1",
        "debtor_id": "d-1",
        "closed_at": "2026-11-28T07:00:00Z",
    }
