from __future__ import annotations

from datetime import date, time
from pathlib import Path

import pytest

from collect_common.policy import Policy, PolicyBook, PolicyError, rule


class ContactPolicy(Policy):
    daily_call_cap: int = rule(
        "CALL-DAILY-CAP", "Call attempts per debtor per day", default=3, ge=1, le=5
    )
    quiet_start: time = rule(
        "CALL-QUIET", "Start of the midday quiet period, debtor time", default=time(12, 0)
    )
    weekly_sms_cap: int = rule("SMS-WEEKLY-CAP", "SMS per debtor per week", default=3, ge=2, le=3)


def test_each_value_knows_its_rule_and_a_denial_can_cite_it() -> None:
    assert ContactPolicy.rule_of("daily_call_cap") == "CALL-DAILY-CAP"
    assert ContactPolicy.rules() == {
        "daily_call_cap": "CALL-DAILY-CAP",
        "quiet_start": "CALL-QUIET",
        "weekly_sms_cap": "SMS-WEEKLY-CAP",
    }
    policy = ContactPolicy(contract="bank-a", version="7")
    assert policy.cite("daily_call_cap") == {
        "rule": "CALL-DAILY-CAP",
        "policy_field": "daily_call_cap",
        "policy_version": "bank-a/7",
    }
    with pytest.raises(KeyError):
        ContactPolicy.rule_of("version")


def test_reference_lists_every_rule_with_its_default_for_the_docs() -> None:
    rows = ContactPolicy.reference()
    assert [r["rule"] for r in rows] == ["CALL-DAILY-CAP", "CALL-QUIET", "SMS-WEEKLY-CAP"]
    assert rows[1]["default"] == "12:00:00"


def test_the_version_in_force_is_chosen_by_contract_and_day() -> None:
    book = PolicyBook.parse(
        ContactPolicy,
        {
            "policies": [
                {"contract": "bank-a", "version": "1", "effective_from": "2026-01-01"},
                {
                    "contract": "bank-a",
                    "version": "2",
                    "effective_from": "2026-07-01",
                    "daily_call_cap": 5,
                },
            ]
        },
    )
    assert book.for_contract("bank-a", date(2026, 6, 30)).daily_call_cap == 3
    assert book.for_contract("bank-a", date(2026, 7, 1)).version == "2"
    assert book.for_contract("bank-a", date(2026, 7, 1)).daily_call_cap == 5
    # an unknown contract falls back to the defaults
    assert book.for_contract("bank-z", date(2026, 7, 1)).daily_call_cap == 3
    assert book.contracts() == ["bank-a", "default"]


def test_an_invalid_policy_names_the_field_and_its_rule() -> None:
    with pytest.raises(PolicyError, match=r"policies\[0\]\.daily_call_cap \(rule CALL-DAILY-CAP\)"):
        PolicyBook.parse(ContactPolicy, {"policies": [{"contract": "b", "daily_call_cap": 6}]})
    with pytest.raises(PolicyError, match="unknown_cap"):
        PolicyBook.parse(ContactPolicy, {"policies": [{"contract": "b", "unknown_cap": 1}]})
    with pytest.raises(PolicyError, match="same day"):
        PolicyBook(
            ContactPolicy,
            [ContactPolicy(contract="b", version="1"), ContactPolicy(contract="b", version="2")],
        )


def test_policy_books_load_from_toml(tmp_path: Path) -> None:
    path = tmp_path / "contact.toml"
    path.write_text(
        '[[policies]]\ncontract = "bank-a"\nversion = "3"\n'
        "effective_from = 2026-03-01\nweekly_sms_cap = 2\n"
    )
    book = PolicyBook.load(ContactPolicy, path)
    assert book.for_contract("bank-a", date(2026, 3, 1)).weekly_sms_cap == 2
