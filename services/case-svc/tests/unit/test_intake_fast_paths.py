"""The shortcuts bulk intake takes give the answers of the general rules (CASE-INTAKE)."""

from __future__ import annotations

import gc
import json
from dataclasses import fields
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from case_svc.adapters.repository import feed_data, phones_json
from case_svc.domain import validation as v
from case_svc.domain.buckets import Bucket
from case_svc.domain.model import Case, CaseIntake
from case_svc.domain.policy import CasePolicy
from case_svc.domain.strategy import (
    DEFAULT_STRATEGY,
    History,
    StrategyTable,
    Willingness,
)
from case_svc.domain.validation import InvalidField, InvalidRow
from case_svc.entrypoints.api.schemas import ACCOUNT_EXAMPLE
from case_svc.service_layer.intake import collector_paused

WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def _reference_check_char(first17: str) -> str:
    return "10X98765432"[sum(int(d) * w for d, w in zip(first17, WEIGHTS, strict=True)) % 11]


@pytest.mark.parametrize("step", [1, 7919, 104729])
def test_check_characters_follow_the_weighted_sum_for_many_bodies(step: int) -> None:
    for n in range(0, 2000 * step, step):
        body = f"{(110105 + n) % 1_000_000:06d}{19000101 + n % 1_000_000:08d}{n % 1000:03d}"
        assert v.national_id_check_char(body) == _reference_check_char(body)


def test_full_width_digits_in_an_id_body_are_summed_by_their_value() -> None:
    body = "１１０１０５１９４９１２３１００２"  # int() reads full-width digits
    assert v.national_id_check_char(body) == _reference_check_char(body) == "X"
    with pytest.raises(ValueError, match="longer"):
        v.national_id_check_char("1101051949123100")  # 16 characters


@pytest.mark.parametrize(
    "raw",
    [
        "0",
        "7",
        "00012.5",
        "12.05",
        "999999999999999999999999.99",  # 24 integer digits: the shortcut
        "9999999999999999999999999.99",  # 25: the general rule
        "123.4",
        "1.00",
    ],
)
def test_plain_amounts_are_the_exact_cents_they_spell(raw: str) -> None:
    out = v.amount(raw)
    expected = Decimal(raw).quantize(Decimal("0.01"))
    assert (out, str(out), out.as_tuple().exponent) == (expected, str(expected), -2)


def test_an_already_normalised_mobile_is_returned_as_sent() -> None:
    assert v.mobile("13812345678") == "13812345678"
    assert v.mobiles(["13812345678", "138 1234 5678", "+8613812345678"]) == ("13812345678",)
    with pytest.raises(InvalidField):
        v.mobile("12812345678")


@pytest.mark.parametrize(
    "allowed",
    [History, frozenset(History), tuple(History), list(History), {h.value for h in History}],
)
def test_codes_are_checked_and_listed_alike_whatever_holds_them(allowed: object) -> None:
    assert v.one_of("good", allowed, field="history") == "good"  # type: ignore[arg-type]
    with pytest.raises(InvalidField) as exc:
        v.one_of("excellent", allowed, field="history")  # type: ignore[arg-type]
    assert exc.value.error.reason == "must be one of " + ", ".join(sorted(h.value for h in History))


def test_the_collector_is_held_during_imports_and_resumes_after_the_last() -> None:
    assert gc.isenabled()
    with collector_paused():
        assert not gc.isenabled()
        with collector_paused():  # a second import at the same time
            assert not gc.isenabled()
        assert not gc.isenabled()  # the first one still runs
    assert gc.isenabled()
    with pytest.raises(RuntimeError), collector_paused():
        raise RuntimeError("the import failed")
    assert gc.isenabled()


def test_a_collector_disabled_by_someone_else_stays_disabled() -> None:
    gc.disable()
    try:
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()


# --- a valid row is checked once -----------------------------------------------------------

NOW = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
POLICY = CasePolicy()


def _row(**changes: object) -> dict[str, object]:
    # the bank's example account of the OpenAPI document, overdue before NOW
    row: dict[str, object] = {**ACCOUNT_EXAMPLE, "overdue_since": "2026-01-30"}
    row.update(changes)
    return row


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"national_id": "11010519491231002x", "name": "  张三 "},  # normalised: upper, stripped
        {"phones": ["+86 138-1234-5678", "13812345678", "0086 139 0000 0001"]},
        {"address": None, "interest": 0, "fees": Decimal("1.5"), "principal": "7"},
        {"address": "   ", "history": "repeat_delinquent", "debtor_timezone": " Europe/Berlin "},
        {"region": "110105", "customer_group": "retail-standard", "product": "credit_card"},
        {"region": " 310000 ", "customer_group": "  ", "product": None},
        {"interest": "1.500", "fees": "-0.00"},  # zeros beyond the cents; a negative zero
    ],
)
def test_an_intake_read_from_a_valid_row_is_the_one_its_constructor_validates(
    changes: dict[str, object],
) -> None:
    intake = CaseIntake.from_row(_row(**changes), bank_id=" bank-a ", now=NOW, policy=POLICY)
    # the constructor runs every field check again and normalises; nothing may differ
    again = CaseIntake(**{f.name: getattr(intake, f.name) for f in fields(CaseIntake)})
    assert intake == again
    assert intake.bank_id == "bank-a"
    assert type(intake.history) is History
    assert all(type(a) is Decimal for a in (intake.principal, intake.interest, intake.fees))


def test_a_bank_id_the_constructor_refuses_is_refused_for_a_valid_row_too() -> None:
    with pytest.raises(InvalidField) as exc:
        CaseIntake.from_row(_row(), bank_id=" ", now=NOW, policy=POLICY)
    assert exc.value.error.field == "bank_id"


def test_a_row_with_bad_fields_still_reports_every_one_of_them() -> None:
    bad = _row(name=" ", phones=["12345"], principal="1e3", overdue_since="2026-03-02")
    with pytest.raises(InvalidRow) as exc:
        CaseIntake.from_row(bad, bank_id="bank-a", now=NOW, policy=POLICY)
    fields_ = [e.field for e in exc.value.errors]
    assert fields_ == ["name", "phones[0]", "principal", "overdue_since"]
    with pytest.raises(InvalidRow) as zero:
        CaseIntake.from_row(
            _row(principal="0", interest="0.00", fees=0), bank_id="b", now=NOW, policy=POLICY
        )
    assert [(e.field, e.reason) for e in zero.value.errors] == [
        ("principal", "principal, interest and fees add up to 0")
    ]


# --- strategy decisions and stored columns -----------------------------------------------


def test_the_strategy_table_answers_each_combination_as_it_first_decided() -> None:
    fresh = StrategyTable.from_dict(DEFAULT_STRATEGY.to_dict())
    for bucket in Bucket:
        for history in History:
            for willingness in Willingness:
                first = fresh.decide(bucket, history, willingness)
                again = fresh.decide(str(bucket), str(history), str(willingness))
                assert again is first
                # a table that never answered before decides the same
                other = StrategyTable.from_dict(DEFAULT_STRATEGY.to_dict())
                assert other.decide(bucket, history, willingness) == first
    with pytest.raises(ValueError, match="unknown buckets"):
        fresh.decide("M9", "good", "high")
    with pytest.raises(ValueError, match="unknown buckets"):
        fresh.decide("M9", "good", "high")  # refused every time, never remembered


@pytest.mark.parametrize(
    "phones",
    [("13812345678",), ("13812345678", "13900000001", "15000000002"), (), ('1"\\2', "电话")],
)
def test_phones_are_stored_as_json_dumps_spells_them(phones: tuple[str, ...]) -> None:
    assert phones_json(phones) == json.dumps(list(phones))
    assert json.loads(phones_json(phones)) == list(phones)


def test_the_change_feed_holds_each_event_as_model_dump_json_writes_it() -> None:
    intake = CaseIntake.from_row(_row(region="110105"), bank_id="bank-a", now=NOW, policy=POLICY)
    case = Case.open("c-1", "dbt_1", intake, now=NOW, policy=POLICY, table=DEFAULT_STRATEGY)
    case.record_payment("PAY-1", Decimal("100.00"), NOW)
    case.recall("bank-withdrawn", NOW)
    assert len(case.events) >= 4
    for event in case.events:
        assert feed_data(event) == event.model_dump_json()
