"""SMS-TEMPLATE: the required content, unknown or malformed placeholders, rendering."""

from __future__ import annotations

import pytest

from contact_svc.domain.sms import TemplateInvalid, render, validate_body

BODY = "欠款{overdue_amount}元，请于{deadline}前通过{payment_method}还款，咨询{agency_contact}。"
VALUES = {
    "overdue_amount": "5,000.00",
    "deadline": "2026-12-05",
    "payment_method": "银行转账",
    "agency_contact": "400-800-1234",
}


def test_a_complete_body_is_valid_and_renders_every_value() -> None:
    assert set(validate_body(BODY)) == set(VALUES)
    text = render(BODY, VALUES)
    assert all(v in text for v in VALUES.values()) and "{" not in text


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (BODY.replace("{deadline}", "明天"), "deadline"),
        (BODY + "{debtor_name}", "unknown placeholder(s) debtor_name"),
        (BODY + "{overdue_amount:>10}", "plain"),
        (BODY + "{0}", "plain"),
        (BODY + "{", "malformed"),
    ],
)
def test_bad_bodies_are_refused_naming_the_rule(body: str, message: str) -> None:
    with pytest.raises(TemplateInvalid) as caught:
        validate_body(body)
    assert caught.value.field == "body"
    assert "SMS-TEMPLATE" in caught.value.detail and message in caught.value.detail


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({**VALUES, "deadline": "  "}, "values.deadline"),
        ({k: v for k, v in VALUES.items() if k != "agency_contact"}, "values.agency_contact"),
        ({**VALUES, "extra": "x"}, "values.extra"),
        ({**VALUES, "payment_method": "{overdue_amount}"}, "values.payment_method"),
    ],
)
def test_missing_or_bad_values_are_refused(values: dict[str, str], field: str) -> None:
    with pytest.raises(TemplateInvalid) as caught:
        render(BODY, values)
    assert caught.value.field == field
