"""Field validators for what the bank sends (rule CASE-INTAKE).

Each validator returns the normalised value or raises :class:`InvalidField`
carrying a :class:`FieldError` (field, rule, reason), so bulk intake can report
every rejected row with the field and the reason, and the API can answer
problem+json naming both. Reasons never repeat the offending value: it may be
personal data (SEC-PII).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from operator import mul
from typing import cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

RULE = "CASE-INTAKE"

# GB 11643-1999: weights of the first 17 digits, and the check character by the
# weighted sum modulo 11.
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
_ID_ZERO_OFFSET = ord("0") * sum(_ID_WEIGHTS)  # the weighted sum of 17 ASCII "0"s
_ID_SHAPE = re.compile(r"[0-9]{17}[0-9X]")
# No living borrower was born before this day; anything earlier is a typo.
_EARLIEST_BIRTH = date(1900, 1, 1)

# Mainland mobile numbers: 1, then 3-9, then nine digits (landlines are refused).
_MOBILE = re.compile(r"1[3-9][0-9]{9}")
_MOBILE_SEPARATORS = re.compile(r"[\s\-]")

# Plain decimal notation only: no exponent, no thousands separators, no NaN/Infinity.
_AMOUNT = re.compile(r"[+-]?[0-9]+(?:\.[0-9]+)?")
# The common case: unsigned, at most 2 decimal places, far below Decimal's precision.
_PLAIN_CENTS = re.compile(r"[0-9]{1,24}(?:\.[0-9]{1,2})?")
_CENT = Decimal("0.01")
# What the money columns hold (NUMERIC(18, 2)): 16 digits before the point.
MAX_MONEY = Decimal("9999999999999999.99")
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")

# Administrative division codes in the GB/T 2260 style: 6 digits (province, city, county
# by pairs). Only the shape is checked; the list of divisions changes every year.
_REGION = re.compile(r"[0-9]{6}")
# The bank's classification codes (customer group, product): ASCII letters, digits, - and _.
_CODE = re.compile(r"[A-Za-z0-9_-]+")
# Control characters other than tab and line breaks: never part of a name, an address or
# a contract number, and NUL cannot even be stored in a PostgreSQL text column.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class FieldError:
    """Why one field of one row was refused."""

    field: str
    rule: str
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "rule": self.rule, "reason": self.reason}


class InvalidField(ValueError):
    """A field value refused by a validator; ``error`` says which field, rule and why."""

    def __init__(self, error: FieldError) -> None:
        super().__init__(f"{error.field}: {error.reason} ({error.rule})")
        self.error = error


class InvalidRow(ValueError):
    """A whole row refused: every field error found in it, in field order."""

    def __init__(self, errors: list[FieldError] | tuple[FieldError, ...]) -> None:
        self.errors = tuple(errors)
        super().__init__("; ".join(f"{e.field}: {e.reason} ({e.rule})" for e in self.errors))


def _refuse(field: str, reason: str) -> InvalidField:
    return InvalidField(FieldError(field=field, rule=RULE, reason=reason))


def national_id_check_char(first17: str) -> str:
    """The GB 11643-1999 check character of the first 17 digits."""
    if len(first17) != 17 or not first17.isascii() or not first17.isdigit():
        total = sum(int(d) * w for d, w in zip(first17, _ID_WEIGHTS, strict=True))
        return _ID_CHECK[total % 11]
    # ASCII digits: their code points minus "0", weighted, summed in one pass
    return _ID_CHECK[(sum(map(mul, first17.encode(), _ID_WEIGHTS)) - _ID_ZERO_OFFSET) % 11]


def national_id(value: object, *, today: date | None = None, field: str = "national_id") -> str:
    """An 18-character resident identity number (GB 11643-1999), upper case.

    17 digits and a check character (a digit or ``X``; a lower-case ``x`` is
    accepted), the check character matching the weighted sum, and a real birth
    date YYYYMMDD in positions 7-14, not after ``today`` when given.
    """
    if not isinstance(value, str):
        raise _refuse(field, "must be a string of 18 characters")
    s = value.strip().upper()
    if len(s) != 18:
        raise _refuse(field, f"must have 18 characters, not {len(s)}")
    if not _ID_SHAPE.fullmatch(s):
        raise _refuse(field, "must be 17 digits followed by a digit or X")
    try:
        born = date(int(s[6:10]), int(s[10:12]), int(s[12:14]))
    except ValueError:
        raise _refuse(field, "positions 7-14 are not a real birth date (YYYYMMDD)") from None
    if born < _EARLIEST_BIRTH:
        raise _refuse(field, f"birth date is before {_EARLIEST_BIRTH.isoformat()}")
    if today is not None and born > today:
        raise _refuse(field, "birth date is in the future")
    if national_id_check_char(s[:17]) != s[17]:
        raise _refuse(field, "check character does not match (GB 11643-1999)")
    return s


def mobile(value: object, *, field: str = "phone") -> str:
    """A mainland mobile number as 11 digits.

    Spaces and dashes are ignored, and a ``+86`` or ``0086`` country prefix is
    dropped.
    """
    if not isinstance(value, str):
        raise _refuse(field, "must be a string")
    if _MOBILE.fullmatch(value):  # already 11 digits: nothing to drop
        return value
    s = _MOBILE_SEPARATORS.sub("", value)
    if s.startswith("+86"):
        s = s[3:]
    elif s.startswith("0086"):
        s = s[4:]
    if not _MOBILE.fullmatch(s):
        raise _refuse(field, "must be a mainland mobile number: 11 digits starting 13-19")
    return s


def mobiles(values: object, *, field: str = "phones") -> tuple[str, ...]:
    """Every phone of a debtor, normalised, duplicates dropped, order kept (at least one)."""
    if isinstance(values, str) or not isinstance(values, (list, tuple)):
        raise _refuse(field, "must be a list of mobile numbers")
    if not values:
        raise _refuse(field, "at least one mobile number is required")
    out: list[str] = []
    for index, raw in enumerate(values):
        number = mobile(raw, field=f"{field}[{index}]")
        if number not in out:
            out.append(number)
    return tuple(out)


def amount(value: object, *, field: str = "amount") -> Decimal:
    """A money amount >= 0 with at most 2 decimal places, as a Decimal with 2 places.

    Accepts ``str`` in plain decimal notation, ``int`` and ``Decimal``; refuses
    ``float`` (binary fractions are not money), exponents (``"1e3"``), NaN,
    infinities and negative amounts. Trailing zeros beyond the cents are fine
    (``"1.500"``), other digits are not.
    """
    if isinstance(value, bool) or not isinstance(value, (str, int, Decimal)):
        kind = "a float" if isinstance(value, float) else type(value).__name__
        raise _refuse(field, f"must be a decimal string, an integer or a Decimal, not {kind}")
    if isinstance(value, str):
        text = value.strip()
        if _PLAIN_CENTS.fullmatch(text):  # >= 0, <= 2 places, in range: the cents as given
            return Decimal(text).quantize(_CENT)
        if not _AMOUNT.fullmatch(text):
            raise _refuse(field, "must be a plain decimal number such as 1234.50")
        number = Decimal(text)
    else:
        number = Decimal(value)
    if not number.is_finite():
        raise _refuse(field, "must be a finite number")
    if number < 0:
        raise _refuse(field, "must not be negative")
    try:
        cents = number.quantize(_CENT)
    except InvalidOperation:
        raise _refuse(field, "is too large") from None
    if cents != number:
        raise _refuse(field, "must have at most 2 decimal places")
    return abs(cents)  # abs: "-0.00" is 0.00


def money(value: object, *, field: str = "amount") -> Decimal:
    """An :func:`amount` a case can hold: at most :data:`MAX_MONEY` (larger ones would not
    fit the money columns; refused here by field instead of failing the whole import)."""
    cents = amount(value, field=field)
    if cents > MAX_MONEY:
        raise _refuse(field, f"must be at most {MAX_MONEY}")
    return cents


def overdue_since(value: object, today: date, *, field: str = "overdue_since") -> date:
    """The day the account became overdue (a ``date`` or ``YYYY-MM-DD``), not after ``today``.

    ``today`` is the debtor's local calendar day (see ``buckets.debtor_today``).
    """
    if isinstance(value, str):
        text = value.strip()
        if not _ISO_DATE.fullmatch(text):
            raise _refuse(field, "must be a date YYYY-MM-DD")
        try:
            value = date.fromisoformat(text)
        except ValueError:
            raise _refuse(field, "is not a real date") from None
    if isinstance(value, datetime) or not isinstance(value, date):
        raise _refuse(field, "must be a date YYYY-MM-DD")
    if value > today:
        raise _refuse(field, "must not be in the future")
    return value


def timezone_name(value: object, *, field: str = "debtor_timezone") -> str:
    """An IANA time zone name such as ``Asia/Shanghai``."""
    if not isinstance(value, str) or not value.strip():
        raise _refuse(field, "must be an IANA time zone name such as Asia/Shanghai")
    name = value.strip()
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise _refuse(field, "is not a known IANA time zone") from None
    return name


def required_text(value: object, *, field: str, max_length: int) -> str:
    """A non-blank string, stripped, of at most ``max_length`` characters, without control
    characters (tab and line breaks allowed)."""
    if not isinstance(value, str) or not value.strip():
        raise _refuse(field, "is required")
    text = value.strip()
    if len(text) > max_length:
        raise _refuse(field, f"must have at most {max_length} characters")
    if _CONTROL.search(text):
        raise _refuse(field, "must not contain control characters")
    return text


def optional_text(value: object, *, field: str, max_length: int) -> str | None:
    """Like :func:`required_text`, but absent or blank is ``None``."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return required_text(value, field=field, max_length=max_length)


def region_code(value: object, *, field: str = "region") -> str | None:
    """An optional administrative division code: 6 digits (GB/T 2260 style), or ``None``
    when absent or blank. Only the shape is checked, not that the division exists."""
    if type(value) is str and _REGION.fullmatch(value):  # the common case: sent as it is kept
        return value
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, str) and _REGION.fullmatch(value.strip()):
        return value.strip()
    raise _refuse(field, "must be an administrative division code of 6 digits (GB/T 2260)")


def code(value: object, *, field: str, max_length: int) -> str | None:
    """An optional classification code of the bank (ASCII letters, digits, ``-`` and ``_``,
    at most ``max_length`` characters), or ``None`` when absent or blank."""
    if type(value) is str and len(value) <= max_length and _CODE.fullmatch(value):
        return value  # the common case: sent as it is kept
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str):
        raise _refuse(field, "must be a string code")
    text = value.strip()
    if len(text) > max_length:
        raise _refuse(field, f"must have at most {max_length} characters")
    if not _CODE.fullmatch(text):
        raise _refuse(field, "must be a code of letters, digits, - and _ only")
    return text


def one_of(value: object, allowed: Iterable[str], *, field: str) -> str:
    """One of ``allowed`` (codes such as a repayment history)."""
    if isinstance(allowed, (type, frozenset, tuple)):  # immutable: listed once, then kept
        known, listing = _fixed_options(allowed)
    else:
        known, listing = _options_of(allowed)
    if not isinstance(value, str) or value not in known:
        raise _refuse(field, f"must be one of {listing}")
    return value


def _options_of(allowed: Iterable[str]) -> tuple[frozenset[str], str]:
    options = sorted(allowed)
    return frozenset(options), ", ".join(options)


@lru_cache(maxsize=64)
def _fixed_options(allowed: type | frozenset[str] | tuple[str, ...]) -> tuple[frozenset[str], str]:
    return _options_of(cast(Iterable[str], allowed))
