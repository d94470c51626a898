"""CASE-INTAKE field validators: every field at its edges."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import pytest

from case_svc.domain import validation as v
from case_svc.domain.validation import FieldError, InvalidField, InvalidRow

TODAY = date(2026, 3, 1)


def independent_check_char(first17: str) -> str:
    """GB 11643-1999 by the ISO 7064 MOD 11-2 formula, not the module's lookup table:
    the check value c satisfies (sum(a_i * 2^(18-i)) + c) = 1 (mod 11), 10 written X."""
    total = sum(int(d) * (2 ** (17 - i) % 11) for i, d in enumerate(first17))
    c = (12 - total % 11) % 11
    return "X" if c == 10 else str(c)


def make_id(region: str = "440305", born: str = "19900307", seq: str = "123") -> str:
    body = region + born + seq
    assert len(body) == 17
    return body + independent_check_char(body)


def refused(excinfo: pytest.ExceptionInfo[InvalidField]) -> FieldError:
    err = excinfo.value.error
    assert err.rule == "CASE-INTAKE"
    return err


# -- national ID --------------------------------------------------------------


def test_the_known_example_id_is_valid_and_its_check_char_agrees() -> None:
    assert independent_check_char("11010519491231002") == "X"
    assert v.national_id("11010519491231002X") == "11010519491231002X"


def test_lowercase_x_and_surrounding_blanks_are_normalised() -> None:
    assert v.national_id(" 11010519491231002x ") == "11010519491231002X"


@pytest.mark.parametrize(
    ("region", "born", "seq"),
    [
        ("440305", "19900307", "123"),
        ("310101", "20000229", "004"),  # leap day
        ("510107", "19750101", "999"),
        ("650102", "19881231", "000"),
        ("110101", "19000101", "018"),  # the earliest birth date accepted
        ("330106", "19661020", "417"),
    ],
)
def test_generated_ids_with_independent_check_chars_pass(region: str, born: str, seq: str) -> None:
    nid = make_id(region, born, seq)
    assert v.national_id(nid, today=TODAY) == nid
    assert v.national_id_check_char(nid[:17]) == nid[17]


def test_ids_whose_check_char_is_x_exist_and_pass() -> None:
    found = [make_id(seq=f"{n:03d}") for n in range(200) if make_id(seq=f"{n:03d}").endswith("X")]
    assert found
    for nid in found:
        assert v.national_id(nid.lower()) == nid


def test_every_wrong_check_char_is_refused() -> None:
    nid = make_id()
    for wrong in "0123456789X":
        if wrong == nid[17]:
            continue
        with pytest.raises(InvalidField) as exc:
            v.national_id(nid[:17] + wrong)
        err = refused(exc)
        assert err.field == "national_id"
        assert "check character" in err.reason


@pytest.mark.parametrize(
    "value",
    [
        "11010519491231002",  # 17
        "11010519491231002X1",  # 19
        "",
        "1101051949123100X2",  # X not last
        "11010519491231002Y",
        "A1010519491231002X",
        "110105 19491231002X",
        "110105１９491231002X",  # full-width digits
    ],
)
def test_wrong_shapes_are_refused(value: str) -> None:
    with pytest.raises(InvalidField) as exc:
        v.national_id(value)
    refused(exc)


@pytest.mark.parametrize("value", [None, 110105194912310020, ["11010519491231002X"]])
def test_non_strings_are_refused(value: object) -> None:
    with pytest.raises(InvalidField):
        v.national_id(value)


@pytest.mark.parametrize("born", ["19900230", "19901301", "19900001", "20230229", "00000000"])
def test_birth_dates_that_do_not_exist_are_refused(born: str) -> None:
    with pytest.raises(InvalidField) as exc:
        v.national_id(make_id(born=born))
    assert "birth date" in refused(exc).reason


def test_birth_date_before_1900_is_refused() -> None:
    with pytest.raises(InvalidField) as exc:
        v.national_id(make_id(born="18991231"))
    assert "before 1900-01-01" in refused(exc).reason


def test_birth_date_today_passes_and_tomorrow_is_in_the_future() -> None:
    assert v.national_id(make_id(born="20260301"), today=TODAY)
    with pytest.raises(InvalidField) as exc:
        v.national_id(make_id(born="20260302"), today=TODAY)
    assert refused(exc).reason == "birth date is in the future"


def test_reasons_never_repeat_the_value() -> None:
    nid = make_id()
    bad = nid[:17] + ("0" if nid[17] != "0" else "1")
    with pytest.raises(InvalidField) as exc:
        v.national_id(bad)
    assert bad not in str(exc.value) and bad[:6] not in exc.value.error.reason


# -- mobile --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("13800138000", "13800138000"),
        ("+8613800138000", "13800138000"),
        ("+86 138 0013 8000", "13800138000"),
        ("0086-138-0013-8000", "13800138000"),
        ("008613912345678", "13912345678"),
        (" 199-0000-0000 ", "19900000000"),
        ("14700000000", "14700000000"),
        ("+86\t15012345678", "15012345678"),
    ],
)
def test_mainland_mobiles_are_normalised_to_11_digits(raw: str, expected: str) -> None:
    assert v.mobile(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "12800138000",  # second digit 2
        "10800138000",
        "23800138000",
        "1380013800",  # 10 digits
        "138001380001",  # 12 digits
        "010-12345678",  # Beijing landline
        "+85213800138000",  # Hong Kong prefix
        "8613800138000",  # bare 86 is not a prefix we guess at
        "138OO138000",
        "(+86)13800138000",
        "",
    ],
)
def test_other_numbers_are_refused(raw: str) -> None:
    with pytest.raises(InvalidField) as exc:
        v.mobile(raw)
    err = refused(exc)
    assert err.field == "phone"
    assert raw.strip() == "" or raw not in err.reason


def test_mobiles_keep_order_drop_duplicates_and_name_the_bad_index() -> None:
    assert v.mobiles(["13800138000", "+86 139 0000 0000", "138-0013-8000"]) == (
        "13800138000",
        "13900000000",
    )
    with pytest.raises(InvalidField) as exc:
        v.mobiles(["13800138000", "12345"])
    assert refused(exc).field == "phones[1]"
    bad: object
    for bad in ([], "13800138000", None):
        with pytest.raises(InvalidField) as exc:
            v.mobiles(bad)
        assert refused(exc).field == "phones"


# -- amount --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("0", "0.00"),
        ("0.00", "0.00"),
        ("1234.5", "1234.50"),
        ("1234.56", "1234.56"),
        (" 12.30 ", "12.30"),
        ("+5", "5.00"),
        ("-0", "0.00"),
        ("1.500", "1.50"),  # trailing zeros beyond the cents carry no value
        (7, "7.00"),
        (0, "0.00"),
        (Decimal("99.9"), "99.90"),
        (Decimal("1E+3"), "1000.00"),  # a Decimal is already exact
        ("9999999999999.99", "9999999999999.99"),
    ],
)
def test_amounts_become_decimals_with_two_places(raw: object, expected: str) -> None:
    out = v.amount(raw)
    assert isinstance(out, Decimal)
    assert str(out) == expected


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (1.5, "not a float"),
        (0.0, "not a float"),
        (True, "not bool"),
        (None, "not NoneType"),
        ("1e3", "plain decimal"),
        ("1E3", "plain decimal"),
        ("NaN", "plain decimal"),
        ("Infinity", "plain decimal"),
        ("1,000.00", "plain decimal"),
        ("", "plain decimal"),
        (".5", "plain decimal"),
        ("5.", "plain decimal"),
        ("0x10", "plain decimal"),
        ("１２", "plain decimal"),  # full-width digits
        (Decimal("NaN"), "finite"),
        (Decimal("Infinity"), "finite"),
        ("-0.01", "negative"),
        (-1, "negative"),
        (Decimal("-5"), "negative"),
        ("1.005", "2 decimal places"),
        ("0.001", "2 decimal places"),
        (Decimal("1.001"), "2 decimal places"),
        ("1" + "0" * 40, "too large"),
    ],
)
def test_bad_amounts_are_refused_with_a_reason(raw: object, why: str) -> None:
    with pytest.raises(InvalidField) as exc:
        v.amount(raw, field="principal")
    err = refused(exc)
    assert err.field == "principal"
    assert why in err.reason


# -- overdue since ---------------------------------------------------------------


def test_overdue_since_today_or_earlier_passes_and_tomorrow_is_refused() -> None:
    assert v.overdue_since(TODAY, TODAY) == TODAY
    assert v.overdue_since(date(2020, 1, 1), TODAY) == date(2020, 1, 1)
    assert v.overdue_since("2026-03-01", TODAY) == TODAY
    with pytest.raises(InvalidField) as exc:
        v.overdue_since(date(2026, 3, 2), TODAY)
    err = refused(exc)
    assert (err.field, err.reason) == ("overdue_since", "must not be in the future")


@pytest.mark.parametrize(
    "raw", ["2026/03/01", "20260301", "2026-02-30", "2026-3-1", "", None, 20260301]
)
def test_overdue_since_that_is_not_a_date_is_refused(raw: object) -> None:
    with pytest.raises(InvalidField) as exc:
        v.overdue_since(raw, TODAY)
    assert refused(exc).field == "overdue_since"


def test_overdue_since_refuses_a_datetime() -> None:
    with pytest.raises(InvalidField):
        v.overdue_since(datetime(2026, 2, 1, 12, 0), TODAY)


# -- the rest ----------------------------------------------------------------------


def test_time_zones_are_iana_names() -> None:
    assert v.timezone_name("Asia/Shanghai") == "Asia/Shanghai"
    assert v.timezone_name(" Asia/Urumqi ") == "Asia/Urumqi"
    for bad in ["Asia", "Mars/Base", "../etc/passwd", "", None, "asia/shanghai"]:
        with pytest.raises(InvalidField) as exc:
            v.timezone_name(bad)
        assert refused(exc).field == "debtor_timezone"


def test_text_and_code_fields() -> None:
    assert v.required_text("  L-1 ", field="contract_no", max_length=4) == "L-1"
    assert v.optional_text("  ", field="address", max_length=10) is None
    assert v.optional_text(None, field="address", max_length=10) is None
    with pytest.raises(InvalidField):
        v.required_text("L-123", field="contract_no", max_length=4)
    with pytest.raises(InvalidField):
        v.required_text(" ", field="contract_no", max_length=4)
    assert v.one_of("good", {"good", "unknown"}, field="history") == "good"
    with pytest.raises(InvalidField) as exc:
        v.one_of("excellent", {"good", "unknown"}, field="history")
    assert refused(exc).reason == "must be one of good, unknown"


def test_field_error_is_a_plain_frozen_value_and_invalid_row_lists_them() -> None:
    err = FieldError("principal", "CASE-INTAKE", "must not be negative")
    assert err.as_dict() == {
        "field": "principal",
        "rule": "CASE-INTAKE",
        "reason": "must not be negative",
    }
    with pytest.raises(AttributeError):
        err.reason = "x"  # type: ignore[misc]
    row = InvalidRow([err, FieldError("phones", "CASE-INTAKE", "at least one")])
    assert [e.field for e in row.errors] == ["principal", "phones"]
    assert "principal: must not be negative (CASE-INTAKE)" in str(row)
    assert isinstance(InvalidField(err), ValueError)
