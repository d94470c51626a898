"""Masking of personal data for logs and API responses (SEC-PII).

SEC-PII: national IDs, phone numbers, addresses and card numbers are masked in
logs, and in responses unless the caller's role needs them in clear.

Field maskers (use them when you know what a value is):

=====================  =========================  ==========================
function               input                      output
=====================  =========================  ==========================
``mask_national_id``   ``11010519491231002X``     ``110***********002X``
                       ``110105491231002`` (old)  ``110*********002``
``mask_phone``         ``13812345678``            ``138****5678``
                       ``+86 138-1234-5678``      ``+86 138-****-5678``
``mask_card``          ``6222021234567890``       ``************7890``
                       ``6222 0212 3456 7890``    ``**** **** **** 7890``
``mask_address``       ``北京市朝阳区建国路88号``   ``北京市朝阳区******``
``mask_name``          ``张三`` / ``欧阳娜娜``       ``张*`` / ``欧***``
=====================  =========================  ==========================

Choices: a national ID keeps its first 3 characters (the province and part of
the city code) and its last 4 (18-digit IDs: sequence number and check
character) or last 3 (15-digit IDs); the birth date is always hidden. Phone
numbers keep the carrier prefix and the last 4 digits, the usual Chinese
convention. Cards keep the last 4 digits only. Masks keep the length and the
separators of the input, so masked values still read like what they were.

``mask_text`` finds national IDs, mainland mobile numbers and card numbers in
free text; ``mask_value`` applies it recursively to dicts, lists and tuples,
and ``mask_field`` also masks by key name (``address``, ``debtor_name``...)
what no pattern can recognise. Text detection is deliberately biased towards
masking: any run of 16 to 19 digits is treated as a card number (including,
say, a snowflake-style numeric id), while decimal amounts (``12345.67``), ISO
dates and times, UUIDs, long hex strings and 10/13-digit unix timestamps are
left alone.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, Final

__all__ = [
    "SENSITIVE_KEYS",
    "mask_address",
    "mask_card",
    "mask_field",
    "mask_name",
    "mask_national_id",
    "mask_phone",
    "mask_text",
    "mask_value",
]

MASK: Final = "*"

# --- building blocks ---------------------------------------------------------------------------

_REGION: Final = r"[1-9]\d{5}"
_MONTH: Final = r"(?:0[1-9]|1[0-2])"
_DAY: Final = r"(?:0[1-9]|[12]\d|3[01])"
# 18 characters: region, YYYYMMDD birth date, 3-digit sequence, check digit or X. Anything of
# 17 digits followed by X is an ID-shaped value too, whatever its date says.
_ID18: Final = rf"{_REGION}(?:18|19|20)\d{{2}}{_MONTH}{_DAY}\d{{3}}[\dXx]|\d{{17}}[Xx]"
# 15 digits (issued before 1999): region, YYMMDD birth date, 3-digit sequence.
_ID15: Final = rf"{_REGION}\d{{2}}{_MONTH}{_DAY}\d{{3}}"
# 16-19 digits, contiguous or in groups of four separated by one space or dash.
_CARD: Final = r"\d{16,19}|\d{4}(?:[ -]\d{4}){3}(?:[ -]?\d{1,3})?"
# Mainland mobile: 1[3-9]x xxxx xxxx, optional +86 / 0086 / 86 prefix, optional separators.
_MOBILE: Final = r"(?:(?:\+|00)?86[ -]?)?1[3-9]\d(?:[ -]?\d{4}){2}"

# Tokens that contain digit runs but are not personal data. They are matched (and kept as they
# are) before the personal-data alternatives, so the scanner never looks inside them.
_UUID: Final = r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}"
_ISO_DATETIME: Final = (
    r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:Z|[+-]\d{2}(?::?\d{2})?)?)?"
)
_DECIMAL: Final = r"\d+\.\d+"
_HEX: Final = r"(?<![0-9A-Za-z])[0-9A-Fa-f]{32,}(?![0-9A-Za-z])"

_TEXT_RE: Final = re.compile(
    # The leading lookahead lets the scanner skip, cheaply, positions no alternative can match.
    rf"(?=[0-9A-Fa-f+])"
    rf"(?:(?P<keep>{_UUID}|{_ISO_DATETIME}|{_DECIMAL}|{_HEX})"
    rf"|(?<!\d)(?:(?P<id18>{_ID18})|(?P<card>{_CARD})|(?P<id15>{_ID15})|(?P<mobile>{_MOBILE}))(?!\d))"
)

_DIGITS_RE: Final = re.compile(r"\d")
# Cheap pre-check: every value we mask holds at least 11 digits with at most single
# separators between them. Text without such a run skips the full scan.
_CANDIDATE_RE: Final = re.compile(r"\d(?:[ -]?\d){10}")


def _mask_positions(value: str, significant: list[int], keep_head: int, keep_tail: int) -> str:
    """Replace ``value[i]`` for the significant positions but the first/last few with ``*``."""
    hidden = significant[keep_head : len(significant) - keep_tail]
    if not hidden:
        return value
    chars = list(value)
    for index in hidden:
        chars[index] = MASK
    return "".join(chars)


def _alnum_positions(value: str) -> list[int]:
    return [i for i, ch in enumerate(value) if ch.isalnum()]


def _digit_positions(value: str) -> list[int]:
    return [m.start() for m in _DIGITS_RE.finditer(value)]


# --- field maskers -----------------------------------------------------------------------------


def mask_national_id(value: str) -> str:
    """Mask a Chinese resident ID: keep the first 3 and the last 4 (18 chars) or 3 (15 chars).

    Other lengths are masked but for the last 2 characters (and entirely when shorter than 6),
    so a malformed value never leaks more than a well-formed one.
    """
    positions = _alnum_positions(value)
    count = len(positions)
    if count == 18:
        return _mask_positions(value, positions, 3, 4)
    if count == 15:
        return _mask_positions(value, positions, 3, 3)
    if count < 6:
        return _mask_positions(value, positions, 0, 0)
    return _mask_positions(value, positions, 0, 2)


def mask_phone(value: str) -> str:
    """Mask a phone number: ``13812345678`` -> ``138****5678``.

    A mainland mobile number (11 digits starting ``1[3-9]``, optionally after ``+86``,
    ``0086`` or ``86``) hides the 4 digits after the carrier prefix; separators and the
    country prefix are kept. Any other number hides every digit but the last 4.
    """
    digits = _digit_positions(value)
    national = digits[-11:]
    if len(national) == 11 and value[national[0]] == "1" and value[national[1]] in "3456789":
        prefix_digits = "".join(value[i] for i in digits[:-11])
        if prefix_digits in ("", "86", "0086"):
            return _mask_positions(value, national, 3, 4)
    return _mask_positions(value, digits, 0, min(4, len(digits) // 2))


def mask_card(value: str) -> str:
    """Mask a bank card number: every digit but the last 4; separators are kept."""
    digits = _digit_positions(value)
    return _mask_positions(value, digits, 0, min(4, len(digits) // 2))


def mask_address(value: str, *, keep: int = 6) -> str:
    """Keep the first ``keep`` characters (province and city, ``北京市朝阳区``), mask the rest.

    An address no longer than ``keep`` keeps only its first half.
    """
    if len(value) <= keep:
        keep = len(value) // 2
    return value[:keep] + MASK * (len(value) - keep)


def mask_name(value: str) -> str:
    """Keep the first character of a name: ``张三`` -> ``张*``, ``John Smith`` -> ``J*** *****``.

    A one-character name is masked entirely.
    """
    if len(value) <= 1:
        return MASK * len(value)
    return value[0] + "".join(ch if ch.isspace() else MASK for ch in value[1:])


# --- free text ---------------------------------------------------------------------------------


def _replace(match: re.Match[str]) -> str:
    kind = match.lastgroup
    found = match.group()
    if kind == "id18":
        return _mask_positions(found, _alnum_positions(found), 3, 4)
    if kind == "id15":
        return _mask_positions(found, _digit_positions(found), 3, 3)
    if kind == "card":
        return mask_card(found)
    if kind == "mobile":
        return mask_phone(found)
    return found  # "keep": a UUID, date, amount or hash


def mask_text(text: str) -> str:
    """Mask national IDs, mainland mobile numbers and card numbers found anywhere in ``text``."""
    if len(text) < 11 or _CANDIDATE_RE.search(text) is None:
        return text
    return _TEXT_RE.sub(_replace, text)


# --- structures --------------------------------------------------------------------------------

SENSITIVE_KEYS: Final[Mapping[str, Callable[[str], str]]] = {
    "national_id": mask_national_id,
    "id_number": mask_national_id,
    "id_card": mask_national_id,
    "phone": mask_phone,
    "phone_number": mask_phone,
    "mobile": mask_phone,
    "card_number": mask_card,
    "bank_card": mask_card,
    "address": mask_address,
    "home_address": mask_address,
    "work_address": mask_address,
    "debtor_name": mask_name,
    "full_name": mask_name,
}
"""Keys whose string values are masked with a field masker, whatever they look like."""

_SCALARS: Final = (float, bool, type(None))


def mask_field(key: str, value: Any, *, stringify: bool = False) -> Any:
    """Mask ``value`` stored under ``key``.

    Keys in ``SENSITIVE_KEYS`` (case-insensitive) get their field masker when the value is a
    string or an int; everything else goes through ``mask_value``.
    """
    masker = SENSITIVE_KEYS.get(key.lower())
    if masker is not None and isinstance(value, str):
        return masker(value)
    if masker is not None and isinstance(value, int) and not isinstance(value, bool):
        return masker(str(value))
    return mask_value(value, stringify=stringify)


def mask_value(obj: Any, *, stringify: bool = False) -> Any:
    """Return a copy of ``obj`` with personal data masked.

    Strings go through ``mask_text``; dicts (values, by key with ``mask_field``), lists,
    tuples, sets and frozensets are walked recursively; an int that reads as personal data
    (``13812345678``) becomes its masked string. Other objects are returned unchanged, or,
    with ``stringify=True`` (what the logging processor uses, since the JSON renderer would
    print their ``repr`` unmasked), replaced by their masked ``str()``.
    """
    if isinstance(obj, str):
        return mask_text(obj)
    if isinstance(obj, _SCALARS):
        return obj
    if isinstance(obj, int):
        text = str(obj)
        masked = mask_text(text)
        return obj if masked == text else masked
    if isinstance(obj, dict):
        return {
            k: mask_field(k, v, stringify=stringify)
            if isinstance(k, str)
            else mask_value(v, stringify=stringify)
            for k, v in obj.items()
        }
    if isinstance(obj, list):
        return [mask_value(v, stringify=stringify) for v in obj]
    if isinstance(obj, tuple):
        return tuple(mask_value(v, stringify=stringify) for v in obj)
    if isinstance(obj, set | frozenset):
        return type(obj)(mask_value(v, stringify=stringify) for v in obj)
    if stringify:
        return mask_text(str(obj))
    return obj
