"""The Case aggregate: intake, daily buckets, strategy, payments, lifecycle, and its events."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from case_svc.domain.buckets import Bucket
from case_svc.domain.lifecycle import ActionNotAllowed, CaseStatus, IllegalTransition
from case_svc.domain.model import Case, CaseIntake, PaymentConflict
from case_svc.domain.policy import CasePolicy
from case_svc.domain.strategy import (
    DEFAULT_STRATEGY,
    Channel,
    History,
    StrategyTable,
    Track,
    Willingness,
)
from case_svc.domain.validation import InvalidField, InvalidRow
from collect_common.events import catalogue
from collect_common.events.catalogue import Event
from collect_common.events.types import (
    CaseAssigned,
    CaseBucketChanged,
    CaseClosed,
    CaseImported,
    CaseRecalled,
    CaseSettled,
    CaseStatusChanged,
    CaseStrategyChanged,
    CaseUpdated,
    PaymentReceived,
)

POLICY = CasePolicy()
TABLE = DEFAULT_STRATEGY
NID = "11010519491231002X"
# 2026-03-01 10:00 in Shanghai; overdue since 30 January: day 30, bucket M1.
NOW = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
SHANGHAI_2359 = datetime(2026, 3, 1, 15, 59, tzinfo=UTC)
SHANGHAI_MIDNIGHT = datetime(2026, 3, 1, 16, 0, tzinfo=UTC)


def intake(**changes: Any) -> CaseIntake:
    base = CaseIntake(
        bank_id="bank-a",
        contract_no="LN-2026-0001",
        name="张三",
        national_id=NID,
        phones=("13800138000",),
        address="北京市朝阳区某路1号",
        principal=Decimal("1000.00"),
        interest=Decimal("50.00"),
        fees=Decimal("10.00"),
        overdue_since=date(2026, 1, 30),
        debtor_timezone="Asia/Shanghai",
        history=History.GOOD,
    )
    return replace(base, **changes)


def opened(**changes: Any) -> Case:
    willingness = changes.pop("willingness", Willingness.HIGH)
    case = Case.open(
        "case-1",
        "debtor-1",
        intake(**changes),
        now=NOW,
        policy=POLICY,
        table=TABLE,
        willingness=willingness,
    )
    case.events.clear()
    return case


def types(events: list[Event]) -> list[type[Event]]:
    return [type(e) for e in events]


# -- intake rows -----------------------------------------------------------------------


def row(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "contract_no": " LN-2026-0001 ",
        "name": "张三",
        "national_id": "11010519491231002x",
        "phones": ["+86 138-0013-8000", "0086 139 0000 0000"],
        "principal": "1000",
        "interest": "50.5",
        "fees": 0,
        "overdue_since": "2026-01-30",
        "history": "good",
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v is not ...}


def test_a_valid_row_becomes_a_normalised_intake() -> None:
    i = CaseIntake.from_row(row(), bank_id="bank-a", now=NOW, policy=POLICY)
    assert i.contract_no == "LN-2026-0001"
    assert i.national_id == NID
    assert i.phones == ("13800138000", "13900000000")
    assert (i.principal, i.interest, i.fees) == (
        Decimal("1000.00"),
        Decimal("50.50"),
        Decimal("0.00"),
    )
    assert i.overdue_total == Decimal("1050.50")
    assert i.debtor_timezone == "Asia/Shanghai"  # the policy's default
    assert i.history is History.GOOD
    assert i.address is None


def test_a_row_reports_every_bad_field_with_its_rule() -> None:
    with pytest.raises(InvalidRow) as exc:
        CaseIntake.from_row(
            row(
                national_id="11010519491231002",
                phones=["12345"],
                principal=12.5,
                interest="1e3",
                overdue_since="2026-03-02",
                history="great",
                contract_no="",
            ),
            bank_id="bank-a",
            now=NOW,
            policy=POLICY,
        )
    fields = {e.field: e.reason for e in exc.value.errors}
    assert set(fields) == {
        "contract_no",
        "national_id",
        "phones[0]",
        "principal",
        "interest",
        "overdue_since",
        "history",
    }
    assert fields["overdue_since"] == "must not be in the future"
    assert {e.rule for e in exc.value.errors} == {"CASE-INTAKE"}


def test_overdue_since_is_judged_on_the_debtors_day() -> None:
    # 16:30 UTC on 1 March is already 2 March in Shanghai, not yet in London.
    late = datetime(2026, 3, 1, 16, 30, tzinfo=UTC)
    ok = CaseIntake.from_row(row(overdue_since="2026-03-02"), bank_id="b", now=late, policy=POLICY)
    assert ok.overdue_since == date(2026, 3, 2)
    with pytest.raises(InvalidRow) as exc:
        CaseIntake.from_row(
            row(overdue_since="2026-03-02", debtor_timezone="Europe/London"),
            bank_id="b",
            now=late,
            policy=POLICY,
        )
    assert [e.field for e in exc.value.errors] == ["overdue_since"]


def test_nothing_owed_is_refused_and_missing_interest_and_fees_are_zero() -> None:
    with pytest.raises(InvalidRow) as exc:
        CaseIntake.from_row(
            row(principal="0", interest=..., fees=...), bank_id="b", now=NOW, policy=POLICY
        )
    assert [e.field for e in exc.value.errors] == ["principal"]
    i = CaseIntake.from_row(row(interest=..., fees=...), bank_id="b", now=NOW, policy=POLICY)
    assert (i.interest, i.fees) == (Decimal("0.00"), Decimal("0.00"))


def test_an_intake_built_in_code_is_validated_too() -> None:
    with pytest.raises(InvalidField):
        intake(principal=1000.0)
    with pytest.raises(InvalidField):
        intake(national_id="11010519491231002Y")
    with pytest.raises(InvalidField):
        intake(debtor_timezone="Nowhere/City")
    assert intake(phones=("+86 138 0013 8000",)).phones == ("13800138000",)


def test_personal_data_stays_out_of_repr() -> None:
    text = repr(intake()) + repr(opened())
    for secret in ("张三", NID, "13800138000", "北京"):
        assert secret not in text


# -- opening ---------------------------------------------------------------------------


def test_open_computes_bucket_and_track_and_records_import_then_strategy() -> None:
    case = Case.open(
        "case-1",
        "debtor-1",
        intake(),
        now=NOW,
        policy=POLICY,
        table=TABLE,
        willingness=Willingness.HIGH,
    )
    assert case.bucket is Bucket.M1
    assert case.days_past_due(NOW) == 30
    assert case.status is CaseStatus.ACTIVE
    assert case.strategy.track is Track.GENTLE
    assert case.strategy.rule_name == "gentle-good-record-early"
    assert case.strategy.reason.startswith("CASE-STRATEGY: bucket M1, history good")
    assert case.overdue_total == case.balance == Decimal("1060.00")
    assert case.version == 1
    imported, strategy = case.events
    assert imported == CaseImported(
        case_id="case-1",
        debtor_id="debtor-1",
        bank_id="bank-a",
        overdue_total=Decimal("1060.00"),
        overdue_since=date(2026, 1, 30),
        bucket="M1",
        debtor_timezone="Asia/Shanghai",
    )
    assert strategy == CaseStrategyChanged(
        case_id="case-1",
        debtor_id="debtor-1",
        previous_track=None,
        track="gentle",
        channels=["sms", "call"],
        rule_name="gentle-good-record-early",
        table_version="1",
        reason=case.strategy.reason,
    )


def test_a_case_opened_on_its_due_date_is_current() -> None:
    case = opened(overdue_since=date(2026, 3, 1))
    assert case.bucket is Bucket.M0


def test_open_refuses_naive_instants() -> None:
    with pytest.raises(ValueError, match="naive"):
        Case.open("c", "d", intake(), now=datetime(2026, 3, 1, 10), policy=POLICY, table=TABLE)


# -- the same contract again: update, never duplicate ------------------------------------


class Cases:
    """A stand-in for the repository: cases by (bank, contract number)."""

    def __init__(self) -> None:
        self.by_contract: dict[tuple[str, str], Case] = {}

    def intake(self, i: CaseIntake, now: datetime) -> str:
        key = (i.bank_id, i.contract_no)
        case = self.by_contract.get(key)
        if case is None:
            self.by_contract[key] = Case.open(
                f"case-{len(self.by_contract) + 1}",
                "debtor-1",
                i,
                now=now,
                policy=POLICY,
                table=TABLE,
            )
            return "created"
        return "updated" if case.update_from(i, now=now, policy=POLICY, table=TABLE) else "same"


def test_resending_a_contract_updates_its_case_and_never_duplicates() -> None:
    cases = Cases()
    assert cases.intake(intake(), NOW) == "created"
    assert cases.intake(intake(), NOW) == "same"
    assert cases.intake(intake(interest=Decimal("60.00")), NOW) == "updated"
    assert cases.intake(intake(contract_no="LN-2026-0002"), NOW) == "created"
    assert len(cases.by_contract) == 2
    case = cases.by_contract[("bank-a", "LN-2026-0001")]
    assert case.id == "case-1"
    assert case.interest == Decimal("60.00")
    assert types(case.events) == [CaseImported, CaseStrategyChanged, CaseUpdated]


def test_update_names_changed_fields_never_their_values() -> None:
    case = opened()
    changed = case.update_from(
        intake(phones=("13900000000",), address=None, interest=Decimal("70.00")),
        now=NOW,
        policy=POLICY,
        table=TABLE,
    )
    assert changed == ["phones", "address", "interest"]
    (event,) = case.events
    assert event == CaseUpdated(
        case_id="case-1", debtor_id="debtor-1", changed_fields=changed, updated_at=NOW
    )
    assert "13900000000" not in event.model_dump_json()
    assert case.phones == ("13900000000",)
    assert case.version == 2


def test_an_identical_resend_records_nothing() -> None:
    case = opened()
    assert case.update_from(intake(), now=NOW, policy=POLICY, table=TABLE) == []
    assert case.events == []
    assert case.version == 1


def test_an_update_that_moves_the_bucket_and_the_track() -> None:
    case = opened()
    case.update_from(
        intake(overdue_since=date(2026, 1, 1), history=History.REPEAT_DELINQUENT),
        now=NOW,
        policy=POLICY,
        table=TABLE,
    )
    assert types(case.events) == [CaseUpdated, CaseBucketChanged, CaseStrategyChanged]
    updated, bucket, strategy = case.events
    assert isinstance(updated, CaseUpdated) and isinstance(bucket, CaseBucketChanged)
    assert updated.changed_fields == ["overdue_since", "history"]
    assert (bucket.previous, bucket.bucket, bucket.days_past_due) == ("M1", "M2", 59)
    assert isinstance(strategy, CaseStrategyChanged)
    assert (strategy.previous_track, strategy.track) == ("gentle", "standard")


def test_an_update_for_another_contract_or_a_closed_case_is_refused() -> None:
    case = opened()
    with pytest.raises(ValueError, match="another bank contract"):
        case.update_from(intake(contract_no="X"), now=NOW, policy=POLICY, table=TABLE)
    case.recall("bank-request", NOW)
    with pytest.raises(ActionNotAllowed, match=r"^case is recalled: cannot be updated"):
        case.update_from(intake(), now=NOW, policy=POLICY, table=TABLE)


# -- the daily recomputation (CASE-BUCKET) ------------------------------------------------


def test_bucket_moves_at_the_debtors_midnight_and_the_track_follows() -> None:
    case = opened()  # good record, willing: gentle at M1
    assert not case.recompute_bucket(SHANGHAI_2359, POLICY, TABLE)  # still day 30
    assert case.events == []
    assert case.recompute_bucket(SHANGHAI_MIDNIGHT, POLICY, TABLE)  # day 31, same UTC day
    bucket, strategy = case.events
    assert bucket == CaseBucketChanged(
        case_id="case-1",
        debtor_id="debtor-1",
        previous="M1",
        bucket="M2",
        days_past_due=31,
        as_of=date(2026, 3, 2),
    )
    assert isinstance(strategy, CaseStrategyChanged)
    assert (strategy.previous_track, strategy.track, strategy.rule_name) == (
        "gentle",
        "standard",
        None,
    )
    assert case.strategy.reason == (
        "CASE-STRATEGY: bucket M2, history good, willingness high matched no rule "
        "of table v1 -> default standard track (call, sms, letter)"
    )
    assert case.version == 2


def test_the_same_day_again_records_nothing() -> None:
    case = opened()
    case.recompute_bucket(SHANGHAI_MIDNIGHT, POLICY, TABLE)
    case.events.clear()
    assert not case.recompute_bucket(SHANGHAI_MIDNIGHT + timedelta(hours=20), POLICY, TABLE)
    assert case.events == []


@pytest.mark.parametrize(
    ("days", "before", "after"),
    [(30, "M1", "M2"), (60, "M2", "M3"), (90, "M3", "M3+")],
)
def test_each_bucket_edge_on_the_day_it_is_crossed(days: int, before: str, after: str) -> None:
    case = opened(overdue_since=date(2026, 3, 1) - timedelta(days=days - 1))
    case.recompute_bucket(NOW, POLICY, TABLE)  # the day before the edge day
    case.events.clear()
    on_edge = NOW + timedelta(days=1)
    case.recompute_bucket(on_edge, POLICY, TABLE)
    assert case.days_past_due(on_edge) == days
    assert str(case.bucket) == before
    case.recompute_bucket(on_edge + timedelta(days=1), POLICY, TABLE)
    assert case.days_past_due(on_edge + timedelta(days=1)) == days + 1
    assert str(case.bucket) == after
    changes = [e for e in case.events if isinstance(e, CaseBucketChanged)]
    assert [(e.previous, e.bucket, e.days_past_due) for e in changes] == [(before, after, days + 1)]


def test_m3_plus_and_unresponsive_goes_to_the_legal_track() -> None:
    case = opened(overdue_since=date(2025, 12, 1), willingness=Willingness.UNKNOWN)
    assert case.bucket is Bucket.M3
    case.recompute_bucket(datetime(2026, 3, 1, 16, 0, tzinfo=UTC), POLICY, TABLE)  # day 91
    assert case.bucket is Bucket.M3_PLUS
    assert case.strategy.track is Track.LEGAL
    assert case.strategy.channels == (Channel.LEGAL, Channel.LETTER)


def test_a_case_out_of_collection_is_not_recomputed() -> None:
    case = opened()
    case.record_payment("p-1", Decimal("1060.00"), NOW)
    case.events.clear()
    assert not case.recompute_bucket(NOW + timedelta(days=40), POLICY, TABLE)
    assert not case.apply_strategy(TABLE)
    assert case.events == []
    assert case.bucket is Bucket.M1


def test_bounds_of_another_contract_apply() -> None:
    case = opened()
    strict = CasePolicy(contract="bank-a", m1_max_days=20, m2_max_days=40, m3_max_days=60)
    case.recompute_bucket(NOW, strict, TABLE)
    assert case.bucket is Bucket.M2


# -- strategy ----------------------------------------------------------------------------


def test_a_new_table_version_changes_the_track_and_keeps_why() -> None:
    case = opened()
    data = TABLE.to_dict()
    data["version"] = "2"
    data["tracks"]["gentle"] = ["sms"]  # no calls on the gentle track any more
    v2 = StrategyTable.from_dict(data)
    assert case.apply_strategy(v2)
    (event,) = case.events
    assert isinstance(event, CaseStrategyChanged)
    assert (event.previous_track, event.track, event.channels) == ("gentle", "gentle", ["sms"])
    assert event.table_version == "2"
    assert "of table v2" in case.strategy.reason


def test_a_new_version_with_the_same_track_and_channels_updates_why_without_an_event() -> None:
    case = opened()
    data = TABLE.to_dict()
    data["version"] = "1.1"
    v11 = StrategyTable.from_dict(data)
    assert case.apply_strategy(v11)
    assert case.events == []
    assert case.strategy.table_version == "1.1"
    assert not case.apply_strategy(v11)


def test_low_willingness_of_a_repeat_delinquent_goes_firm() -> None:
    case = opened(history=History.REPEAT_DELINQUENT, willingness=Willingness.UNKNOWN)
    assert case.strategy.track is Track.STANDARD
    assert case.assess_willingness(Willingness.LOW, TABLE, at=NOW)
    assert types(case.events) == [CaseUpdated, CaseStrategyChanged]
    assert case.strategy.track is Track.FIRM
    assert case.strategy.rule_name == "firm-repeat-delinquent-unwilling"
    assert not case.assess_willingness(Willingness.LOW, TABLE, at=NOW)


# -- payments ------------------------------------------------------------------------------


def test_partial_then_full_payment_settles() -> None:
    case = opened()
    paid_at = datetime(2026, 3, 1, 11, 0, tzinfo=UTC)
    assert case.record_payment("p-1", Decimal("60.00"), paid_at)
    assert case.balance == Decimal("1000.00")
    assert case.status is CaseStatus.ACTIVE
    assert case.record_payment("p-2", "1000.00", paid_at + timedelta(days=1))  # type: ignore[arg-type]
    assert case.status is CaseStatus.SETTLED
    assert case.balance == Decimal("0.00")
    assert types(case.events) == [PaymentReceived, PaymentReceived, CaseSettled]
    first, second, settled = case.events
    assert first == PaymentReceived(
        case_id="case-1",
        debtor_id="debtor-1",
        payment_id="p-1",
        amount=Decimal("60.00"),
        paid_at=paid_at,
        balance=Decimal("1000.00"),
    )
    assert isinstance(second, PaymentReceived) and second.balance == Decimal("0.00")
    assert settled == CaseSettled(
        case_id="case-1", debtor_id="debtor-1", settled_at=paid_at + timedelta(days=1)
    )
    assert case.version == 3


def test_the_same_payment_twice_is_ignored_even_after_settling() -> None:
    case = opened()
    assert case.record_payment("p-1", Decimal("500"), NOW)
    assert not case.record_payment("p-1", Decimal("500.00"), NOW)
    assert case.paid_total == Decimal("500.00")
    assert case.record_payment("p-2", Decimal("560"), NOW)
    assert case.status is CaseStatus.SETTLED
    events = list(case.events)
    assert not case.record_payment("p-2", Decimal("560"), NOW)
    assert case.events == events
    assert case.paid_total == Decimal("1060.00")


def test_the_same_payment_id_with_another_amount_is_a_conflict() -> None:
    case = opened()
    case.record_payment("p-1", Decimal("500"), NOW)
    with pytest.raises(PaymentConflict, match="p-1"):
        case.record_payment("p-1", Decimal("501"), NOW)


def test_an_overpayment_settles_with_a_negative_balance() -> None:
    case = opened()
    case.record_payment("p-1", Decimal("2000"), NOW)
    assert case.status is CaseStatus.SETTLED
    assert case.balance == Decimal("-940.00")


@pytest.mark.parametrize("amount", [Decimal("0"), 10.5, "1e2", Decimal("-1"), "0.001"])
def test_bad_payment_amounts_are_refused(amount: Any) -> None:
    case = opened()
    with pytest.raises(InvalidField):
        case.record_payment("p-1", amount, NOW)
    assert case.events == [] and case.payments == {}


def test_payment_instants_must_be_aware_and_are_kept_in_utc() -> None:
    case = opened()
    with pytest.raises(ValueError, match="naive"):
        case.record_payment("p-1", Decimal("1"), datetime(2026, 3, 1, 10, 0))
    from zoneinfo import ZoneInfo

    local = datetime(2026, 3, 1, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
    case.record_payment("p-2", Decimal("1"), local)
    (event,) = case.events
    assert isinstance(event, PaymentReceived)
    assert event.paid_at == datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
    assert event.paid_at.tzinfo is UTC


def test_recall_stops_the_case_and_a_payment_after_it_is_refused_naming_the_state() -> None:
    case = opened()
    case.recall("bank-request", NOW)
    assert case.status is CaseStatus.RECALLED
    assert case.events == [
        CaseRecalled(case_id="case-1", debtor_id="debtor-1", recalled_at=NOW, reason="bank-request")
    ]
    with pytest.raises(ActionNotAllowed) as exc:
        case.record_payment("p-1", Decimal("10"), NOW)
    assert str(exc.value) == "case is recalled: cannot record a payment"
    assert case.paid_total == Decimal("0.00")


def test_recall_twice_and_recall_after_settling_are_illegal_transitions() -> None:
    case = opened()
    case.recall(None, NOW)
    with pytest.raises(IllegalTransition, match=r"^case is recalled: cannot move to recalled"):
        case.recall(None, NOW)
    settled = opened()
    settled.record_payment("p", Decimal("1060"), NOW)
    with pytest.raises(IllegalTransition, match=r"^case is settled: cannot move to recalled"):
        settled.recall("late", NOW)


# -- lifecycle -----------------------------------------------------------------------------


def test_close_after_settling_and_nothing_after_closing() -> None:
    case = opened()
    case.record_payment("p", Decimal("1060"), NOW)
    case.close("settled", NOW + timedelta(days=1))
    assert case.status is CaseStatus.CLOSED
    assert case.events[-1] == CaseClosed(
        case_id="case-1",
        debtor_id="debtor-1",
        reason="settled",
        closed_at=NOW + timedelta(days=1),
    )
    with pytest.raises(IllegalTransition, match=r"^case is closed"):
        case.close("again", NOW)
    with pytest.raises(IllegalTransition, match=r"^case is closed"):
        case.start_skip_tracing(NOW)
    with pytest.raises(ActionNotAllowed, match=r"^case is closed: cannot be assigned"):
        case.assign("agent-1", None, NOW)
    with pytest.raises(ValueError, match="reason"):
        opened().close(" ", NOW)


def test_skip_tracing_then_legal_puts_the_case_on_the_legal_track_and_keeps_it() -> None:
    case = opened()
    case.start_skip_tracing(NOW)
    case.escalate_to_legal(NOW + timedelta(days=7), TABLE)
    assert case.status is CaseStatus.LEGAL
    assert case.strategy.track is Track.LEGAL
    assert case.strategy.rule_name == "CASE-SKIP"
    skip, legal, strategy = case.events
    assert skip == CaseStatusChanged(
        case_id="case-1",
        debtor_id="debtor-1",
        previous_status="active",
        status="skip_tracing",
        rule_id="CASE-SKIP",
        changed_at=NOW,
    )
    assert isinstance(legal, CaseStatusChanged) and legal.status == "legal"
    assert isinstance(strategy, CaseStrategyChanged)
    assert (strategy.previous_track, strategy.track) == ("gentle", "legal")
    assert strategy.reason.startswith("CASE-SKIP: the case was escalated to legal")
    # The daily recomputation moves the bucket but not the track while in legal.
    case.events.clear()
    case.recompute_bucket(SHANGHAI_MIDNIGHT, POLICY, TABLE)
    assert types(case.events) == [CaseBucketChanged]
    assert case.strategy.track is Track.LEGAL
    # Payments are still welcome in legal.
    assert case.record_payment("p-1", Decimal("100"), NOW)


def test_contact_regained_returns_to_collection() -> None:
    case = opened()
    case.start_skip_tracing(NOW)
    case.contact_regained(NOW)
    assert case.status is CaseStatus.ACTIVE
    with pytest.raises(IllegalTransition, match=r"^case is active: cannot move to active"):
        case.contact_regained(NOW)


def test_assignment_records_the_previous_agent() -> None:
    case = opened()
    assert case.assign("agent-1", "team-a", NOW)
    assert not case.assign("agent-1", "team-a", NOW)
    assert case.assign("agent-2", "team-a", NOW)
    assert case.events[-1] == CaseAssigned(
        case_id="case-1",
        debtor_id="debtor-1",
        agent_id="agent-2",
        team_id="team-a",
        previous_agent_id="agent-1",
        assigned_at=NOW,
    )


# -- events ----------------------------------------------------------------------------------


def test_every_recorded_event_is_catalogued_keyed_by_case_and_free_of_personal_data() -> None:
    case = Case.open("case-1", "debtor-1", intake(), now=NOW, policy=POLICY, table=TABLE)
    case.update_from(
        intake(phones=("13900000000",), overdue_since=date(2025, 11, 1)),
        now=NOW,
        policy=POLICY,
        table=TABLE,
    )
    case.assign("agent-1", "team-a", NOW)
    case.assess_willingness(Willingness.LOW, TABLE, at=NOW)
    case.start_skip_tracing(NOW)
    case.escalate_to_legal(NOW, TABLE)
    case.record_payment("p-1", Decimal("1060"), NOW)
    case.close("settled", NOW)
    catalogued = catalogue()
    assert {type(e) for e in case.events} == {
        CaseImported,
        CaseStrategyChanged,
        CaseUpdated,
        CaseBucketChanged,
        CaseAssigned,
        CaseStatusChanged,
        PaymentReceived,
        CaseSettled,
        CaseClosed,
    }
    for event in case.events:
        assert catalogued[event.type_name] is type(event)
        assert (event.topic, event.partition_key) == ("case.events", "case-1")
        wire = json.dumps(event.model_dump(mode="json"), ensure_ascii=False)
        for secret in ("张三", NID, "13800138000", "13900000000", "北京"):
            assert secret not in wire
