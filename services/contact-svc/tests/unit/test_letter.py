"""Letters (LETTER): the required content of a formal letter, checked on the template and on
the rendered text, and the delivery states."""

from __future__ import annotations

import pytest

from contact_svc.domain.letter import (
    REQUIRED_PLACEHOLDERS,
    LetterStateError,
    move,
    render,
    validate_body,
)
from contact_svc.domain.sms import TemplateInvalid

BODY = (
    "{recipient_name}（{address}）：您在{creditor}的借款尚欠{overdue_amount}元，"
    "请于{deadline}前还清。{legal_consequences} 联系：{agency_contact}"
)
VALUES = {
    "recipient_name": "张三",
    "address": "上海市浦东新区世纪大道100号",
    "overdue_amount": "5000",
    "creditor": "xxxx银行",
    "deadline": "2026-12-15",
    "legal_consequences": "逾期不还，我司将依法提起诉讼。",
    "agency_contact": "400-800-1234",
}


@pytest.mark.parametrize("name", REQUIRED_PLACEHOLDERS)
def test_a_template_without_a_required_statement_is_refused(name: str) -> None:
    body = BODY.replace("{" + name + "}", "")
    with pytest.raises(TemplateInvalid) as exc:
        validate_body(body)
    assert exc.value.field == "body"
    assert exc.value.detail.startswith("LETTER:") and name in exc.value.detail


def test_unknown_or_malformed_placeholders_are_refused_naming_letter() -> None:
    with pytest.raises(TemplateInvalid, match=r"LETTER: unknown placeholder.*id_number"):
        validate_body(BODY + "{id_number}")
    with pytest.raises(TemplateInvalid, match="LETTER: placeholder"):
        validate_body(BODY + "{deadline!r}")


def test_the_rendered_letter_states_every_value_and_the_amount_as_money() -> None:
    text = render(BODY, VALUES)
    assert "尚欠5,000.00元" in text
    for name in REQUIRED_PLACEHOLDERS:
        if name != "overdue_amount":
            assert VALUES[name] in text
    assert render(BODY, {**VALUES, "overdue_amount": "12,345.6"}).count("12,345.60") == 1


@pytest.mark.parametrize("amount", ["abc", "0", "-5", "10.005", "NaN", "1e12"])
def test_an_amount_that_is_not_money_owed_is_refused(amount: str) -> None:
    with pytest.raises(TemplateInvalid) as exc:
        render(BODY, {**VALUES, "overdue_amount": amount})
    assert exc.value.field == "values.overdue_amount"


def test_missing_blank_or_unknown_values_are_refused_by_field() -> None:
    with pytest.raises(TemplateInvalid) as exc:
        render(BODY, {**VALUES, "creditor": "  "})
    assert exc.value.field == "values.creditor"
    values = dict(VALUES)
    del values["legal_consequences"]
    with pytest.raises(TemplateInvalid) as exc:
        render(BODY, values)
    assert exc.value.field == "values.legal_consequences"
    with pytest.raises(TemplateInvalid) as exc:
        render(BODY, {**VALUES, "phone": "13812345678"})
    assert exc.value.field == "values.phone"
    with pytest.raises(TemplateInvalid) as exc:
        render(BODY, {**VALUES, "address": "{deadline}"})
    assert exc.value.field == "values.address"


def test_delivery_moves_forward_only_and_names_the_current_state() -> None:
    assert move("generated", "dispatched") == "dispatched"
    assert move("dispatched", "in_transit") == "in_transit"
    assert move("in_transit", "delivered") == "delivered"
    assert move("in_transit", "returned") == "returned"
    for current, target in [
        ("generated", "in_transit"),
        ("dispatched", "delivered"),
        ("dispatched", "dispatched"),
        ("delivered", "returned"),
        ("returned", "in_transit"),
    ]:
        with pytest.raises(LetterStateError) as exc:
            move(current, target)
        assert exc.value.current == current
        assert f"the letter is {current}" in str(exc.value)
