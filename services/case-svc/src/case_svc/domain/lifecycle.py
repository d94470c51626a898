"""The case lifecycle as an explicit state machine.

=================  =============================================================
from               may move to
=================  =============================================================
``active``         skip_tracing, legal, plan, settled, recalled, closed
``skip_tracing``   active (contact regained), legal, settled, recalled, closed
``legal``          plan, settled, recalled, closed
``plan``           active (plan broken or ended), settled, recalled, closed
``settled``        closed
``recalled``       closed
``closed``         nothing: final
=================  =============================================================

- ``active``: in collection, worked on its strategy track.
- ``skip_tracing``: contact lost; lawful skip tracing (CASE-SKIP).
- ``legal``: still unreachable, or escalated: lawyer's letter, summons (CASE-SKIP).
- ``plan``: a signed hardship repayment plan is running (CASE-HARDSHIP).
- ``settled``: paid in full. ``recalled``: the bank withdrew it; contact stops.
- ``closed``: nothing more happens.

A case is opened ``active``. Any move not in :data:`TRANSITIONS` is refused
with :class:`IllegalTransition`, whose message names the current state.
"""

from __future__ import annotations

from enum import StrEnum


class CaseStatus(StrEnum):
    ACTIVE = "active"
    SKIP_TRACING = "skip_tracing"
    LEGAL = "legal"
    PLAN = "plan"
    SETTLED = "settled"
    RECALLED = "recalled"
    CLOSED = "closed"


S = CaseStatus
_ENDINGS = frozenset({S.SETTLED, S.RECALLED, S.CLOSED})

TRANSITIONS: dict[CaseStatus, frozenset[CaseStatus]] = {
    S.ACTIVE: frozenset({S.SKIP_TRACING, S.LEGAL, S.PLAN}) | _ENDINGS,
    S.SKIP_TRACING: frozenset({S.ACTIVE, S.LEGAL}) | _ENDINGS,
    S.LEGAL: frozenset({S.PLAN}) | _ENDINGS,
    S.PLAN: frozenset({S.ACTIVE}) | _ENDINGS,
    S.SETTLED: frozenset({S.CLOSED}),
    S.RECALLED: frozenset({S.CLOSED}),
    S.CLOSED: frozenset(),
}

INITIAL = CaseStatus.ACTIVE
# Collection goes on (payments, strategy, buckets) only in these states.
OPEN: frozenset[CaseStatus] = frozenset({S.ACTIVE, S.SKIP_TRACING, S.LEGAL, S.PLAN})


class CaseStateError(Exception):
    """Something the case's current state does not allow; ``current`` names the state."""

    def __init__(self, current: CaseStatus, message: str) -> None:
        super().__init__(message)
        self.current = current


class IllegalTransition(CaseStateError):
    def __init__(self, current: CaseStatus, target: CaseStatus) -> None:
        allowed = ", ".join(sorted(TRANSITIONS[current])) or "nothing"
        super().__init__(
            current,
            f"case is {current}: cannot move to {target} (from {current} only: {allowed})",
        )
        self.target = target


class ActionNotAllowed(CaseStateError):
    def __init__(self, current: CaseStatus, action: str) -> None:
        super().__init__(current, f"case is {current}: cannot {action}")
        self.action = action


def can_transition(current: CaseStatus, target: CaseStatus) -> bool:
    return target in TRANSITIONS[current]


def transition(current: CaseStatus, target: CaseStatus) -> CaseStatus:
    """``target`` when the move is allowed; else :class:`IllegalTransition`."""
    if target not in TRANSITIONS[CaseStatus(current)]:
        raise IllegalTransition(CaseStatus(current), CaseStatus(target))
    return CaseStatus(target)


def require_open(current: CaseStatus, action: str) -> None:
    """Refuse ``action`` (e.g. "record a payment") unless the case is still in collection."""
    if current not in OPEN:
        raise ActionNotAllowed(current, action)
