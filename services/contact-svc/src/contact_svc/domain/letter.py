"""Formal letters (LETTER): template placeholders, the required content, rendering and the
delivery states.

Pure functions. A letter template is text with ``{placeholder}`` fields, approved by the
bank. A formal letter states the debt (amount owed, creditor), the demand (the deadline)
and the legal consequences, and says how to reach the agency; it is addressed to the
debtor by name and address. Each of those is a required placeholder, no other is
accepted, and the rendered text is checked to carry every value.

Delivery: ``generated`` (rendered, not yet posted) -> ``dispatched`` (handed to the
carrier, tracking number known) -> ``in_transit`` -> ``delivered`` (signed receipt kept)
or ``returned`` (the return slip kept). Any other move is refused naming the current state.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Final, Literal

from contact_svc.domain.sms import TemplateInvalid, fill, required_placeholders, required_values

LETTER = "LETTER"

# rule: LETTER (states debt, demand and legal consequences; addressed; agency contact)
REQUIRED_PLACEHOLDERS: tuple[str, ...] = (
    "recipient_name",
    "address",
    "overdue_amount",
    "creditor",
    "deadline",
    "legal_consequences",
    "agency_contact",
)
ALLOWED_PLACEHOLDERS: frozenset[str] = frozenset(REQUIRED_PLACEHOLDERS)
MAX_VALUE_CHARS: Final = 300
MAX_LEGAL_CHARS: Final = 2000
MAX_RENDERED_CHARS: Final = 20_000
MAX_AMOUNT: Final = Decimal("1000000000")

LetterStatus = Literal["generated", "dispatched", "in_transit", "delivered", "returned"]
DeliveryUpdate = Literal["in_transit", "delivered", "returned"]
ReturnReason = Literal["refused", "unknown_address", "moved", "unclaimed", "other"]

# action -> (states it may start from, state it leads to)
TRANSITIONS: Final[dict[str, tuple[frozenset[str], LetterStatus]]] = {
    "dispatched": (frozenset({"generated"}), "dispatched"),
    "in_transit": (frozenset({"dispatched"}), "in_transit"),
    "delivered": (frozenset({"in_transit"}), "delivered"),
    "returned": (frozenset({"in_transit"}), "returned"),
}


class LetterInvalid(TemplateInvalid):
    """A letter's dispatch or delivery update breaks LETTER; ``field`` names what."""


class LetterStateError(Exception):
    """A delivery status move the letter's current state does not allow."""

    def __init__(self, current: str, target: str) -> None:
        allowed = sorted(a for a, (sources, _) in TRANSITIONS.items() if current in sources)
        nxt = ", ".join(allowed) if allowed else "nothing (final state)"
        super().__init__(
            f"{LETTER}: the letter is {current}; it cannot become {target} (next: {nxt})"
        )
        self.current = current
        self.target = target


def move(current: str, target: str) -> LetterStatus:
    """The state after ``target`` from ``current``; ``LetterStateError`` if not allowed."""
    sources, after = TRANSITIONS[target]
    if current not in sources:
        raise LetterStateError(current, target)
    return after


def validate_body(body: str) -> list[str]:
    """Every required placeholder present, no unknown one; returns the placeholders."""
    return required_placeholders(body, LETTER, REQUIRED_PLACEHOLDERS, "a formal letter")


def format_amount(raw: str) -> str:
    """The amount owed as written in a letter (``5,000.00``): a positive number of yuan with
    at most two decimals; thousands separators in the input are accepted."""
    try:
        amount = Decimal(raw.replace(",", "").strip())
    except InvalidOperation:
        raise TemplateInvalid(
            "values.overdue_amount", f"{LETTER}: overdue_amount must be an amount, e.g. 5000.00"
        ) from None
    if not amount.is_finite() or amount <= 0 or amount >= MAX_AMOUNT:
        raise TemplateInvalid(
            "values.overdue_amount", f"{LETTER}: overdue_amount must be a positive amount"
        )
    if amount != amount.quantize(Decimal("0.01")):
        raise TemplateInvalid(
            "values.overdue_amount", f"{LETTER}: overdue_amount has at most two decimals"
        )
    return f"{amount:,.2f}"


def render(body: str, values: Mapping[str, str]) -> str:
    """The text of one letter; every required value given and non-blank, no unknown value,
    and the rendered text checked to carry each required value (LETTER)."""
    validate_body(body)
    clean = required_values(
        values,
        LETTER,
        REQUIRED_PLACEHOLDERS,
        "a formal letter",
        lambda name: MAX_LEGAL_CHARS if name == "legal_consequences" else MAX_VALUE_CHARS,
    )
    clean["overdue_amount"] = format_amount(clean["overdue_amount"])
    return fill(body, clean, LETTER, MAX_RENDERED_CHARS, "letter")
