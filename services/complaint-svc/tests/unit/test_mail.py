from __future__ import annotations

import pytest

from complaint_svc.domain.mail import parse_complaint_mail, parse_subject, strip_html


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("关于招商银行催收投诉 - 张三 - 13812345678", ("张三", "13812345678")),
        ("关于xx银行催收投诉－李四－138 1234 5678", ("李四", "13812345678")),
        ("关于 某 银行催收投诉  —  [王五]  –  【+86 139-0000-1111】 ", ("王五", "+8613900001111")),
        (
            "关于中国工商银行信用卡中心催收投诉\u3000-\u3000赵六\u3000-\u300013700000000",
            ("赵六", "13700000000"),
        ),
    ],
)
def test_subjects_in_the_form_give_name_and_phone(subject: str, expected: tuple[str, str]) -> None:
    assert parse_subject(subject) == expected


@pytest.mark.parametrize(
    "subject",
    [
        "投诉",
        "关于招商银行催收投诉 - 张三",
        "关于招商银行催收投诉 - 张三 - 12",
        "Re: hello - a - b",
    ],
)
def test_other_subjects_are_not_parsed(subject: str) -> None:
    assert parse_subject(subject) is None


def test_html_is_stripped() -> None:
    assert strip_html("<style>p{}</style><p>a &amp; b</p><p>c</p>") == "a & b\nc"


def test_a_message_with_headers_but_no_text_needs_triage() -> None:
    parsed = parse_complaint_mail(b"Subject: hello\r\nMessage-ID: <x@y>\r\n\r\n")
    assert parsed.message_id == "<x@y>"
    assert "no text in the message" in parsed.triage_reasons
    assert "no sender address (From)" in parsed.triage_reasons


def test_a_message_without_message_id_is_keyed_by_its_hash() -> None:
    parsed = parse_complaint_mail(b"From: a@b.c\r\nSubject: x\r\n\r\nbody")
    assert parsed.message_id == f"sha256:{parsed.raw_sha256}"
