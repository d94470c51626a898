"""The shortcuts bulk intake takes give the answers of the general rules (CASE-INTAKE)."""

from __future__ import annotations

import gc
from decimal import Decimal

import pytest

from case_svc.domain import validation as v
from case_svc.domain.strategy import History
from case_svc.domain.validation import InvalidField
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
