"""Field visits (VISIT-TEAM): the team, the recordings, the states."""

from __future__ import annotations

import pytest

from contact_svc.domain.policy import ContactPolicy
from contact_svc.domain.visit import (
    VisitInvalid,
    VisitStateError,
    move,
    recordings,
    refuse_suspended,
    team,
)

POLICY = ContactPolicy()


def test_a_visit_needs_at_least_two_distinct_staff() -> None:
    assert team([" a-1", "a-2 "], POLICY) == ["a-1", "a-2"]
    for staff in (["a-1"], ["a-1", "a-1"], ["a-1", " "]):
        with pytest.raises(VisitInvalid) as exc:
            team(staff, POLICY)
        assert exc.value.rule == "VISIT-TEAM" and exc.value.field == "staff"
    with pytest.raises(VisitInvalid, match="at most 4"):
        team(["a-1", "a-2", "a-3", "a-4", "a-5"], POLICY)


def test_a_contract_may_ask_for_a_larger_team() -> None:
    three = ContactPolicy(visit_min_staff=3)
    with pytest.raises(VisitInvalid, match="at least 3"):
        team(["a-1", "a-2"], three)
    assert team(["a-1", "a-2", "a-3"], three) == ["a-1", "a-2", "a-3"]


def test_a_member_suspended_by_qa_is_refused_by_name() -> None:
    refuse_suspended([])
    with pytest.raises(VisitInvalid) as exc:
        refuse_suspended(["a-2", "a-1"])
    assert exc.value.rule == "QA-SANCTION"
    assert "a-1, a-2 suspended by QA" in exc.value.detail


def test_a_completed_visit_carries_its_recordings() -> None:
    assert recordings(["rec-1", " rec-1 ", "rec-2"], POLICY) == ["rec-1", "rec-2"]
    with pytest.raises(VisitInvalid) as exc:
        recordings(["  "], POLICY)
    assert exc.value.field == "recording_refs" and exc.value.rule == "VISIT-TEAM"
    with pytest.raises(VisitInvalid):
        recordings(["rec-1"], ContactPolicy(visit_min_recordings=2))


def test_only_a_planned_visit_completes_or_is_cancelled() -> None:
    assert move("planned", "complete") == "completed"
    assert move("planned", "cancel") == "cancelled"
    for current, action in [("completed", "cancel"), ("cancelled", "complete")]:
        with pytest.raises(VisitStateError) as exc:
            move(current, action)
        assert exc.value.current == current
