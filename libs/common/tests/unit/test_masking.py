"""Masking of personal data (SEC-PII)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from collect_common.security.masking import (
    mask_address,
    mask_card,
    mask_field,
    mask_name,
    mask_national_id,
    mask_phone,
    mask_text,
    mask_value,
)

NATIONAL_ID = "11010519491231002X"


class TestFieldMaskers:
    def test_national_id_18_keeps_first_3_and_last_4(self) -> None:
        assert mask_national_id(NATIONAL_ID) == "110***********002X"
        assert mask_national_id("110105194912310021") == "110***********0021"

    def test_national_id_15_keeps_first_3_and_last_3(self) -> None:
        assert mask_national_id("110105491231002") == "110*********002"

    def test_national_id_other_lengths_never_leak_more(self) -> None:
        assert mask_national_id("1234") == "****"
        assert mask_national_id("12345678") == "******78"

    @pytest.mark.parametrize(
        ("phone", "masked"),
        [
            ("13812345678", "138****5678"),
            ("+8613812345678", "+86138****5678"),
            ("+86 138 1234 5678", "+86 138 **** 5678"),
            ("+86-138-1234-5678", "+86-138-****-5678"),
            ("0086 19912345678", "0086 199****5678"),
        ],
    )
    def test_mobile(self, phone: str, masked: str) -> None:
        assert mask_phone(phone) == masked

    def test_other_phone_keeps_last_4_digits_only(self) -> None:
        assert mask_phone("010-87654321") == "***-****4321"

    @pytest.mark.parametrize(
        ("card", "masked"),
        [
            ("6222021234567890", "************7890"),
            ("6222021234567890123", "***************0123"),
            ("6222 0212 3456 7890", "**** **** **** 7890"),
            ("6222-0212-3456-7890-123", "****-****-****-***0-123"),
        ],
    )
    def test_card(self, card: str, masked: str) -> None:
        assert mask_card(card) == masked

    def test_address_keeps_six_characters(self) -> None:
        assert mask_address("北京市朝阳区建国路88号") == "北京市朝阳区******"
        assert mask_address("北京市") == "北**"
        assert mask_address("") == ""

    @pytest.mark.parametrize(
        ("name", "masked"),
        [
            ("张三", "张*"),
            ("欧阳娜娜", "欧***"),
            ("张", "*"),
            ("John Smith", "J*** *****"),
            ("", ""),
        ],
    )
    def test_name(self, name: str, masked: str) -> None:
        assert mask_name(name) == masked


class TestMaskTextFinds:
    @pytest.mark.parametrize(
        ("text", "masked"),
        [
            (
                f"身份证{NATIONAL_ID}，手机13812345678。",
                "身份证110***********002X，手机138****5678。",
            ),
            (f"id={NATIONAL_ID.lower()}", "id=110***********002x"),
            ("old id 110105491231002 on file", "old id 110*********002 on file"),
            ("call 13812345678.", "call 138****5678."),
            ("call +86 138 1234 5678 now", "call +86 138 **** 5678 now"),
            ("call +86-138-1234-5678", "call +86-138-****-5678"),
            ("call 0086 13912345678", "call 0086 139****5678"),
            ("tel:8615912345678", "tel:86159****5678"),
            ("card 6222021234567890 ok", "card ************7890 ok"),
            ("card 6222 0212 3456 7890 ok", "card **** **** **** 7890 ok"),
            ("card 6222-0212-3456-7890-123", "card ****-****-****-***0-123"),
            ("19 digits 6222021234567890123", "19 digits ***************0123"),
            # 18 digits without a birth date in the middle: treated as a card
            ("acct 622202123456789012", "acct **************9012"),
            ("phones 13812345678,13912345678", "phones 138****5678,139****5678"),
            ("2026-01-05 13812345678", "2026-01-05 138****5678"),
            (f'{{"national_id": "{NATIONAL_ID}"}}', '{"national_id": "110***********002X"}'),
        ],
    )
    def test_personal_data_is_masked(self, text: str, masked: str) -> None:
        assert mask_text(text) == masked

    def test_several_kinds_in_one_text(self) -> None:
        text = f"debtor {NATIONAL_ID} phone 138-1234-5678 card 6222 0212 3456 7890 owes 12345.67"
        assert mask_text(text) == (
            "debtor 110***********002X phone 138-****-5678 card **** **** **** 7890 owes 12345.67"
        )


class TestMaskTextLeavesAlone:
    @pytest.mark.parametrize(
        "text",
        [
            "amount 12345.67",
            "amount 13812345678.00 yuan",  # an amount, not a phone
            "total 1234567890123.45",
            "at 2026-01-05",
            "at 2026-01-05T09:00:00Z",
            "at 2026-01-05T09:00:00.123456+08:00",
            "at 2026-01-05 09:00:00",
            f"event {uuid.UUID('13812345-6781-4234-a716-138123456789')}",
            "event 550e8400-e29b-41d4-a716-446655440000",
            "ts 1767603600",
            "ts 1767603600000",  # milliseconds
            "ts 1767603600 1767603601",
            "sha256 0123456789abcdef13812345678901234567890abcdef0123456789abcdef01",
            "ten digits 1381234567",
            "twelve digits 138123456789",
            "landline 010-87654321",
            "ip 192.168.100.200",
            "version 1.2.3",
            "",
            "short",
        ],
    )
    def test_unrelated_numbers_are_kept(self, text: str) -> None:
        assert mask_text(text) == text

    def test_digits_next_to_a_run_are_not_sliced(self) -> None:
        # 20 digits: not a card, and no phone is cut out of its middle
        assert mask_text("ref 13812345678901234567") == "ref 13812345678901234567"


class TestMaskValue:
    def test_recurses_and_masks_by_key(self) -> None:
        value = {
            "phone": "13812345678",
            "address": "北京市朝阳区建国路88号",
            "debtor_name": "张三",
            "notes": [f"id {NATIONAL_ID}", ("13912345678", 42)],
            "nested": {"mobile": 13812345678, "amount": 12345.67},
            7: "13812345678",
        }
        assert mask_value(value) == {
            "phone": "138****5678",
            "address": "北京市朝阳区******",
            "debtor_name": "张*",
            "notes": ["id 110***********002X", ("139****5678", 42)],
            "nested": {"mobile": "138****5678", "amount": 12345.67},
            7: "138****5678",
        }

    def test_does_not_mutate_its_input(self) -> None:
        value = {"notes": ["13812345678"]}
        mask_value(value)
        assert value == {"notes": ["13812345678"]}

    def test_int_that_reads_as_personal_data(self) -> None:
        assert mask_value(13812345678) == "138****5678"
        assert mask_value(1767603600) == 1767603600
        assert mask_value(True) is True

    def test_sets(self) -> None:
        assert mask_value({"13812345678"}) == {"138****5678"}
        assert mask_value(frozenset({"x"})) == frozenset({"x"})

    def test_other_objects_kept_or_stringified(self) -> None:
        when = datetime(2026, 1, 5, tzinfo=UTC)
        assert mask_value(when) is when
        assert mask_value(Decimal("12345.67")) == Decimal("12345.67")

        class Debtor:
            def __str__(self) -> str:
                return f"Debtor({NATIONAL_ID})"

        assert mask_value(Debtor(), stringify=True) == "Debtor(110***********002X)"
        assert mask_value([Debtor()], stringify=True) == ["Debtor(110***********002X)"]

    def test_mask_field_is_case_insensitive_on_keys(self) -> None:
        assert mask_field("Address", "上海市浦东新区世纪大道1号") == "上海市浦东新*******"
        assert mask_field("comment", "上海市浦东新区世纪大道1号") == "上海市浦东新区世纪大道1号"
        assert mask_field("national_id", "1101051949") == "********49"
