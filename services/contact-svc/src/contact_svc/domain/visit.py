"""Field visits (VISIT-TEAM): the team, the states, the completion's evidence.

Pure functions. A visit is planned with a purpose, a time, a place and its staff: at least
``visit_min_staff`` distinct people (the contract's policy; 2 by default), none of them
suspended by QA (QA-SANCTION: a suspended agent does no collection work). It is completed
with its outcome and the references of its audio/video recordings (fully recorded), or
cancelled. ``planned -> completed | cancelled``; nothing leaves a final state.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Final, Literal

from contact_svc.domain.policy import ContactPolicy

VISIT_TEAM = "VISIT-TEAM"
QA_SANCTION = "QA-SANCTION"

VisitStatus = Literal["planned", "completed", "cancelled"]
VisitOutcome = Literal[
    "debtor_met", "promise_made", "debtor_absent", "access_refused", "address_invalid"
]

TRANSITIONS: Final[dict[str, tuple[frozenset[str], VisitStatus]]] = {
    "complete": (frozenset({"planned"}), "completed"),
    "cancel": (frozenset({"planned"}), "cancelled"),
}


class VisitInvalid(ValueError):
    """A visit breaks VISIT-TEAM (or QA-SANCTION for a suspended member); ``field`` names
    what, ``rule`` the rule."""

    def __init__(self, field: str, detail: str, rule: str = VISIT_TEAM) -> None:
        super().__init__(detail)
        self.field = field
        self.detail = detail
        self.rule = rule


class VisitStateError(Exception):
    def __init__(self, current: str, action: str) -> None:
        super().__init__(f"{VISIT_TEAM}: the visit is {current}; it cannot {action}")
        self.current = current
        self.action = action


def move(current: str, action: str) -> VisitStatus:
    sources, after = TRANSITIONS[action]
    if current not in sources:
        raise VisitStateError(current, action)
    return after


def team(staff: Sequence[str], policy: ContactPolicy) -> list[str]:
    """The visit's staff, stripped, in the order given; at least ``visit_min_staff``
    distinct people and at most ``visit_max_staff`` (VISIT-TEAM)."""
    members = [s.strip() for s in staff]
    if any(not m for m in members):
        raise VisitInvalid("staff", f"{VISIT_TEAM}: a staff id must not be blank")
    if len(set(members)) != len(members):
        raise VisitInvalid("staff", f"{VISIT_TEAM}: the same person is named twice")
    if len(members) < policy.visit_min_staff:
        raise VisitInvalid(
            "staff",
            f"{VISIT_TEAM}: a field visit is done by at least {policy.visit_min_staff} "
            f"trained staff; {len(members)} named",
        )
    if len(members) > policy.visit_max_staff:
        raise VisitInvalid(
            "staff",
            f"{VISIT_TEAM}: at most {policy.visit_max_staff} staff on one visit; "
            f"{len(members)} named",
        )
    return members


def refuse_suspended(suspended: Iterable[str]) -> None:
    """QA-SANCTION: a member suspended by QA may not go on a visit."""
    names = sorted(suspended)
    if names:
        raise VisitInvalid(
            "staff",
            f"{QA_SANCTION}: {', '.join(names)} suspended by QA; "
            f"{VISIT_TEAM} needs trained staff in good standing",
            rule=QA_SANCTION,
        )


def recordings(refs: Sequence[str], policy: ContactPolicy) -> list[str]:
    """The recordings of a completed visit: at least ``visit_min_recordings`` distinct
    references (VISIT-TEAM: fully audio/video recorded)."""
    cleaned = list(dict.fromkeys(r.strip() for r in refs if r.strip()))
    if len(cleaned) < policy.visit_min_recordings:
        raise VisitInvalid(
            "recording_refs",
            f"{VISIT_TEAM}: a field visit is fully recorded; at least "
            f"{policy.visit_min_recordings} recording reference(s) required",
        )
    return cleaned
