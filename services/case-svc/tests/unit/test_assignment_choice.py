"""Which agent gets a case: active, skilled (track or bucket), under capacity; the least
loaded first, ties by agent_id."""

from __future__ import annotations

from datetime import UTC, datetime

from case_svc.service_layer.assignment import Agent, AgentStatus, choose

AT = datetime(2026, 11, 28, tzinfo=UTC)


def agent(
    agent_id: str, skills: str, capacity: int, status: AgentStatus = AgentStatus.ACTIVE
) -> Agent:
    return Agent(agent_id, "team-1", frozenset(skills.split(",")), capacity, status, AT)


def test_least_loaded_first_ties_by_agent_id() -> None:
    team = [agent("b", "gentle", 5), agent("a", "gentle", 5), agent("c", "gentle", 5)]
    assert choose(team, {}, "gentle", "M1") == team[1]
    assert choose(team, {"a": 1}, "gentle", "M1") == team[0]
    assert choose(team, {"a": 1, "b": 1, "c": 0}, "gentle", "M1") == team[2]


def test_capacity_skill_and_status_exclude() -> None:
    team = [
        agent("a", "gentle", 1),
        agent("b", "firm", 9),
        agent("c", "gentle", 9, AgentStatus.SUSPENDED),
        agent("d", "gentle", 9, AgentStatus.INACTIVE),
        agent("e", "gentle", 0),
    ]
    assert choose(team, {}, "gentle", "M1") == team[0]
    assert choose(team, {"a": 1}, "gentle", "M1") is None


def test_a_bucket_skill_covers_any_track_of_that_bucket() -> None:
    team = [agent("a", "M3+", 2)]
    assert choose(team, {}, "legal", "M3+") == team[0]
    assert choose(team, {}, "legal", "M3") is None
