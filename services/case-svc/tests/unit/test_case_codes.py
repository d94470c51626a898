"""The bank's classification codes of an account (CASE-INTAKE, for COMP-STATS): region,
customer group and product, validated at their edges, kept on the case and carried by
case.imported.v1 (product as ``case_type``); a re-sent code is an update."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import annotated_types
import pytest

from case_svc.domain import validation as v
from case_svc.domain.model import MAX_CODE, Case, CaseIntake
from case_svc.domain.policy import CasePolicy
from case_svc.domain.strategy import DEFAULT_STRATEGY
from case_svc.domain.validation import InvalidField, InvalidRow
from collect_common.events.types import CaseImported, CaseUpdated

POLICY = CasePolicy()
NOW = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)


def row(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "contract_no": "LN-2026-0001",
        "name": "张三",
        "national_id": "11010519491231002X",
        "phones": ["13800138000"],
        "principal": "1000",
        "overdue_since": "2026-01-30",
        "history": "good",
        "region": "310115",
        "customer_group": "retail-standard",
        "product": "credit_card",
    }
    data.update(changes)
    return {k: val for k, val in data.items() if val is not ...}


def from_row(**changes: Any) -> CaseIntake:
    return CaseIntake.from_row(row(**changes), bank_id="bank-a", now=NOW, policy=POLICY)


def refusal(**changes: Any) -> dict[str, str]:
    with pytest.raises(InvalidRow) as exc:
        from_row(**changes)
    assert {e.rule for e in exc.value.errors} == {"CASE-INTAKE"}
    return {e.field: e.reason for e in exc.value.errors}


# -- the validators ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("310115", "310115"),
        (" 110000 ", "110000"),
        ("000000", "000000"),  # the shape only: no list of divisions is consulted
        (None, None),
        ("", None),
        ("   ", None),
    ],
)
def test_region_codes_are_six_digits_or_absent(raw: object, expected: str | None) -> None:
    assert v.region_code(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "31011",  # 5 digits
        "3101150",  # 7
        "31011X",
        "３１０１１５",  # full-width digits
        "310-115",
        "上海市浦东新区",  # an address is not a code
        310115,  # a number: leading zeros would be lost, so only strings
        ["310115"],
        True,
    ],
)
def test_other_region_values_are_refused_naming_the_field_and_rule(raw: object) -> None:
    with pytest.raises(InvalidField) as exc:
        v.region_code(raw)
    assert exc.value.error.as_dict() == {
        "field": "region",
        "rule": "CASE-INTAKE",
        "reason": "must be an administrative division code of 6 digits (GB/T 2260)",
    }


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("credit_card", "credit_card"),
        ("retail-standard", "retail-standard"),
        ("VIP2", "VIP2"),
        ("x", "x"),
        (" consumer_loan ", "consumer_loan"),
        ("a" * 16, "a" * 16),  # exactly the limit
        (None, None),
        ("  ", None),
    ],
)
def test_codes_are_letters_digits_dash_and_underscore(raw: object, expected: str | None) -> None:
    assert v.code(raw, field="product", max_length=16) == expected


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("a" * 17, "must have at most 16 characters"),
        (" " + "a" * 17, "must have at most 16 characters"),
        ("retail std", "must be a code of letters, digits, - and _ only"),
        ("零售", "must be a code of letters, digits, - and _ only"),
        ("café", "must be a code of letters, digits, - and _ only"),
        ("a.b", "must be a code of letters, digits, - and _ only"),
        ("a/b", "must be a code of letters, digits, - and _ only"),
        (12, "must be a string code"),
        (["vip"], "must be a string code"),
    ],
)
def test_other_codes_are_refused_with_the_rule_broken(raw: object, reason: str) -> None:
    with pytest.raises(InvalidField) as exc:
        v.code(raw, field="customer_group", max_length=16)
    assert exc.value.error.as_dict() == {
        "field": "customer_group",
        "rule": "CASE-INTAKE",
        "reason": reason,
    }


def _max_length(field: str) -> int:
    (limit,) = (
        m.max_length
        for m in CaseImported.model_fields[field].metadata
        if isinstance(m, annotated_types.MaxLen)
    )
    return int(limit)


def test_every_code_the_intake_accepts_fits_the_import_event() -> None:
    assert _max_length("customer_group") == _max_length("case_type") == MAX_CODE
    assert _max_length("region") >= len("310115")
    longest = "g" * MAX_CODE
    event = CaseImported(
        case_id="c",
        debtor_id="d",
        bank_id="b",
        overdue_total=Decimal("1.00"),
        overdue_since=date(2026, 1, 1),
        bucket="M1",
        debtor_timezone="Asia/Shanghai",
        region=v.region_code("310115"),
        customer_group=v.code(longest, field="customer_group", max_length=MAX_CODE),
        case_type=v.code(longest, field="product", max_length=MAX_CODE),
    )
    assert event.case_type == longest


# -- a row of the bank --------------------------------------------------------------------


def test_a_row_with_codes_keeps_them_and_a_row_without_has_none() -> None:
    i = from_row()
    assert (i.region, i.customer_group, i.product) == ("310115", "retail-standard", "credit_card")
    bare = from_row(region=..., customer_group=..., product=...)
    assert (bare.region, bare.customer_group, bare.product) == (None, None, None)


def test_bad_codes_are_reported_with_the_other_bad_fields_of_the_row() -> None:
    reasons = refusal(
        region="31011",
        customer_group="g" * (MAX_CODE + 1),
        product="credit card",
        phones=["12345"],
    )
    assert reasons == {
        "phones[0]": "must be a mainland mobile number: 11 digits starting 13-19",
        "region": "must be an administrative division code of 6 digits (GB/T 2260)",
        "customer_group": f"must have at most {MAX_CODE} characters",
        "product": "must be a code of letters, digits, - and _ only",
    }


def test_an_intake_built_in_code_checks_its_codes_too() -> None:
    i = from_row()
    with pytest.raises(InvalidField) as exc:
        CaseIntake(**{**_fields(i), "region": "Shanghai"})
    assert exc.value.error.field == "region"
    with pytest.raises(InvalidField) as exc:
        CaseIntake(**{**_fields(i), "product": "loan#1"})
    assert exc.value.error.field == "product"


def _fields(i: CaseIntake) -> dict[str, Any]:
    return {name: getattr(i, name) for name in CaseIntake.__dataclass_fields__}


# -- the case and its events ------------------------------------------------------------


def opened(i: CaseIntake) -> Case:
    return Case.open("case-1", "debtor-1", i, now=NOW, policy=POLICY, table=DEFAULT_STRATEGY)


def test_a_new_case_keeps_the_codes_and_its_import_event_carries_them() -> None:
    case = opened(from_row())
    assert (case.region, case.customer_group, case.product) == (
        "310115",
        "retail-standard",
        "credit_card",
    )
    imported = case.events[0]
    assert isinstance(imported, CaseImported)
    assert (imported.region, imported.customer_group, imported.case_type) == (
        "310115",
        "retail-standard",
        "credit_card",
    )


def test_a_case_imported_without_codes_has_an_event_without_them() -> None:
    imported = opened(from_row(region=..., customer_group=..., product=...)).events[0]
    assert isinstance(imported, CaseImported)
    assert (imported.region, imported.customer_group, imported.case_type) == (None, None, None)


def test_a_changed_code_is_an_update_naming_the_field() -> None:
    case = opened(from_row())
    case.events.clear()
    changed = case.update_from(
        from_row(product="consumer_loan", region="440305"),
        now=NOW,
        policy=POLICY,
        table=DEFAULT_STRATEGY,
    )
    assert changed == ["region", "product"]
    assert (case.region, case.product, case.customer_group) == (
        "440305",
        "consumer_loan",
        "retail-standard",
    )
    (event,) = case.events
    assert event == CaseUpdated(
        case_id="case-1", debtor_id="debtor-1", changed_fields=changed, updated_at=NOW
    )
    assert case.version == 2


def test_a_code_left_out_of_a_resent_row_is_cleared_and_the_same_codes_change_nothing() -> None:
    case = opened(from_row())
    assert case.update_from(from_row(), now=NOW, policy=POLICY, table=DEFAULT_STRATEGY) == []
    changed = case.update_from(
        from_row(customer_group=...), now=NOW, policy=POLICY, table=DEFAULT_STRATEGY
    )
    assert changed == ["customer_group"]
    assert case.customer_group is None
