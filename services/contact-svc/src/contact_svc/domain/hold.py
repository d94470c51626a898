"""Contact holds (CONTACT-CONDUCT): a debtor on do-not-contact, or under a complaint hold
while a complaint about the agency's contact is investigated.

While a hold is active (not lifted, and ``until`` not reached) the contact-policy engine
denies every channel with the hold's rule (``domain.decision``); the contact is next
allowed at the hold's end when it has one. Holds are placed and lifted by people (ops,
complaint handling) or placed from complaint-svc's ``complaint.opened.v1``; who did
what, when and why is kept.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final, Literal

CONTACT_CONDUCT = "CONTACT-CONDUCT"

HoldKind = Literal["do_not_contact", "complaint"]

# rule: CONTACT-CONDUCT (respect for the debtor's dignity: a do-not-contact request, or a
# complaint about the contact itself, stops all contact until resolved)
HOLD_RULES: Final[dict[str, str]] = {
    "do_not_contact": CONTACT_CONDUCT,
    "complaint": CONTACT_CONDUCT,
}


class HoldInvalid(ValueError):
    def __init__(self, field: str, detail: str) -> None:
        super().__init__(detail)
        self.field = field
        self.detail = detail


class HoldStateError(Exception):
    def __init__(self, hold_id: str, current: str) -> None:
        super().__init__(f"{CONTACT_CONDUCT}: hold {hold_id} is {current}; it cannot be lifted")
        self.current = current


def hold_state(lifted_at: datetime | None, until: datetime | None, now: datetime) -> str:
    """``active``, ``lifted`` (by someone) or ``expired`` (its ``until`` passed)."""
    if lifted_at is not None:
        return "lifted"
    if until is not None and until <= now:
        return "expired"
    return "active"


def check_until(until: datetime | None, now: datetime) -> None:
    if until is not None and until <= now:
        raise HoldInvalid("until", f"{CONTACT_CONDUCT}: until must be in the future")
