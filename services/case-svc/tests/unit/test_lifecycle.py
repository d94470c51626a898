"""The case lifecycle: the whole transition table, pair by pair."""

from __future__ import annotations

import itertools

import pytest

from case_svc.domain.lifecycle import (
    INITIAL,
    OPEN,
    TRANSITIONS,
    ActionNotAllowed,
    CaseStateError,
    CaseStatus,
    IllegalTransition,
    can_transition,
    require_open,
    transition,
)

S = CaseStatus
# Written out independently of the module: the design this test holds it to.
EXPECTED: dict[CaseStatus, set[CaseStatus]] = {
    S.ACTIVE: {S.SKIP_TRACING, S.LEGAL, S.PLAN, S.SETTLED, S.RECALLED, S.CLOSED},
    S.SKIP_TRACING: {S.ACTIVE, S.LEGAL, S.SETTLED, S.RECALLED, S.CLOSED},
    S.LEGAL: {S.PLAN, S.SETTLED, S.RECALLED, S.CLOSED},
    S.PLAN: {S.ACTIVE, S.SETTLED, S.RECALLED, S.CLOSED},
    S.SETTLED: {S.CLOSED},
    S.RECALLED: {S.CLOSED},
    S.CLOSED: set(),
}
PAIRS = list(itertools.product(CaseStatus, CaseStatus))


def test_the_states_and_their_codes() -> None:
    assert [str(s) for s in CaseStatus] == [
        "active",
        "skip_tracing",
        "legal",
        "plan",
        "settled",
        "recalled",
        "closed",
    ]
    assert INITIAL is S.ACTIVE


def test_the_table_is_exactly_the_design() -> None:
    assert {k: set(v) for k, v in TRANSITIONS.items()} == EXPECTED


@pytest.mark.parametrize(
    ("current", "target"), [p for p in PAIRS if p[1] in EXPECTED[p[0]]], ids=str
)
def test_every_allowed_move_passes(current: CaseStatus, target: CaseStatus) -> None:
    assert can_transition(current, target)
    assert transition(current, target) is target


@pytest.mark.parametrize(
    ("current", "target"), [p for p in PAIRS if p[1] not in EXPECTED[p[0]]], ids=str
)
def test_every_other_move_is_refused_naming_the_current_state(
    current: CaseStatus, target: CaseStatus
) -> None:
    assert not can_transition(current, target)
    with pytest.raises(IllegalTransition) as exc:
        transition(current, target)
    assert str(exc.value).startswith(f"case is {current}: cannot move to {target}")
    assert (exc.value.current, exc.value.target) == (current, target)
    assert isinstance(exc.value, CaseStateError)


def test_counts_cover_all_49_pairs() -> None:
    allowed = sum(len(v) for v in EXPECTED.values())
    assert allowed == 21
    assert len(PAIRS) - allowed == 28


def test_terminal_states() -> None:
    assert TRANSITIONS[S.SETTLED] == {S.CLOSED}
    assert TRANSITIONS[S.RECALLED] == {S.CLOSED}
    assert TRANSITIONS[S.CLOSED] == frozenset()
    with pytest.raises(IllegalTransition, match=r"^case is closed: .*only: nothing\)$"):
        transition(S.CLOSED, S.ACTIVE)


def test_no_state_moves_to_itself() -> None:
    for s in CaseStatus:
        assert s not in TRANSITIONS[s]


def test_every_state_is_reachable_from_active_and_every_state_can_reach_closed() -> None:
    def reachable(start: CaseStatus) -> set[CaseStatus]:
        seen, todo = {start}, [start]
        while todo:
            for nxt in TRANSITIONS[todo.pop()]:
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    assert reachable(S.ACTIVE) == set(CaseStatus)
    for s in CaseStatus:
        assert S.CLOSED in reachable(s)


def test_open_states_are_those_still_in_collection() -> None:
    assert {S.ACTIVE, S.SKIP_TRACING, S.LEGAL, S.PLAN} == OPEN
    for s in OPEN:
        require_open(s, "record a payment")
    for s in set(CaseStatus) - OPEN:
        with pytest.raises(ActionNotAllowed) as exc:
            require_open(s, "record a payment")
        assert str(exc.value) == f"case is {s}: cannot record a payment"
        assert exc.value.current is s


def test_plain_strings_are_accepted() -> None:
    assert transition("active", "legal") is S.LEGAL  # type: ignore[arg-type]
    with pytest.raises(IllegalTransition, match=r"^case is legal: "):
        transition("legal", "active")  # type: ignore[arg-type]
