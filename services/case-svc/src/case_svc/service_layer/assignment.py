"""Assigning cases to agents and teams, by capacity and skill; moving them off a
suspended agent (QA-SANCTION); skip tracing and legal escalation (CASE-SKIP).

An agent may be handed a case when they are ``active`` (not suspended by QA, not
made inactive by ops), one of their skills covers the case (its strategy track
or its delinquency bucket) and their load (open cases assigned to them) is below
their capacity. Among those, the least loaded wins, ties broken by ``agent_id``,
so a run over the same data always gives the same answer.

Locking: every command that hands out cases first locks the agents' rows in
``agent_id`` order, so two assignment runs (or a run and a suspension) take turns
on the loads they read and never push an agent over capacity; the cases a run
takes are locked ``FOR UPDATE SKIP LOCKED``, so a case another transaction holds
is left to it and never assigned twice. Each assignment goes through
``Case.assign`` (CaseAssigned) and ``CaseRepository.save`` (change feed), and the
unit of work tracks the case (outbox).

Taking a case from its agent (ops, or a QA suspension with nobody to take it)
goes through ``domain.assignment.unassign`` (CaseUnassigned). Every hand-over,
either way, also appends a row to ``case_assignment_log`` (who acted, why, under
which rule) in the same transaction: the audit trail ops and auditors read.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from case_svc.adapters.assignment_tables import agents, case_assignment_log
from case_svc.adapters.repository import CaseRepository
from case_svc.adapters.tables import cases
from case_svc.domain.assignment import UnassignReason, unassign
from case_svc.domain.buckets import Bucket
from case_svc.domain.lifecycle import OPEN
from case_svc.domain.model import Case
from case_svc.domain.strategy import StrategyTable, Track
from case_svc.service_layer.intake import CaseNotFound
from collect_common.db import UnitOfWork
from collect_common.security.crypto import FieldCipher

SANCTION_RULE = "QA-SANCTION"
SKIP_RULE = "CASE-SKIP"
# What an agent's skills may name: the strategy tracks and the delinquency buckets.
SKILLS: frozenset[str] = frozenset(str(t) for t in Track) | frozenset(str(b) for b in Bucket)
OPEN_STATUSES: tuple[str, ...] = tuple(sorted(str(s) for s in OPEN))
# Who acted, in the audit trail, when it was not a person.
RUN_ACTOR = "assignment-run"
QA_ACTOR = "qa-svc"


class HandOver(StrEnum):
    """Why a case changed hands (``case_assignment_log.reason``)."""

    OPS = "ops"  # ops named the agent, or took the case back
    RUN = "run"  # the assignment run chose the agent
    AGENT_SUSPENDED = "agent_suspended"  # rule: QA-SANCTION


class AgentStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"  # by QA (QA-SANCTION): only a reinstatement ends it
    INACTIVE = "inactive"  # by ops


@dataclass(frozen=True)
class Agent:
    agent_id: str
    team_id: str | None
    skills: frozenset[str]
    capacity: int
    status: AgentStatus
    updated_at: datetime

    def covers(self, track: str, bucket: str) -> bool:
        return track in self.skills or bucket in self.skills

    @classmethod
    def of(cls, row: Any) -> Agent:
        return cls(
            agent_id=row.agent_id,
            team_id=row.team_id,
            skills=frozenset(s for s in row.skills.split(",") if s),
            capacity=row.capacity,
            status=AgentStatus(row.status),
            updated_at=row.updated_at,
        )


class AgentNotFound(LookupError):
    def __init__(self, agent_id: str) -> None:
        super().__init__(f"no agent {agent_id}")
        self.agent_id = agent_id


class AgentUnavailable(Exception):
    """The agent may not be handed cases; ``rule`` says why (QA-SANCTION when suspended)."""

    def __init__(self, agent: Agent) -> None:
        reason = (
            "is suspended from collection until reinstated"
            if agent.status == AgentStatus.SUSPENDED
            else "is inactive"
        )
        super().__init__(f"agent {agent.agent_id} {reason}")
        self.agent = agent
        self.rule = SANCTION_RULE if agent.status == AgentStatus.SUSPENDED else None


class InvalidSkill(ValueError):
    pass


@dataclass(frozen=True)
class RunResult:
    assigned: int
    unassigned_remaining: int


@dataclass(frozen=True)
class ReassignResult:
    moved: int  # handed to another agent (CaseAssigned with previous_agent_id)
    unassigned: int  # nobody eligible: left without an agent for the next run


# -- agents ------------------------------------------------------------------------------


def _skills(skills: Iterable[str]) -> str:
    chosen = sorted(set(skills))
    unknown = [s for s in chosen if s not in SKILLS]
    if unknown:
        raise InvalidSkill(f"unknown skills {unknown}; known: {sorted(SKILLS)}")
    return ",".join(chosen)


async def upsert_agent(
    session: AsyncSession,
    agent_id: str,
    *,
    team_id: str,
    skills: Sequence[str],
    capacity: int,
    active: bool,
    now: datetime,
) -> Agent:
    """Create or update an agent. ``active`` switches between active and inactive; it
    never lifts a QA suspension, which only a reinstatement does (QA-SANCTION)."""
    if capacity < 0:
        raise ValueError("capacity must be >= 0")
    wanted = AgentStatus.ACTIVE if active else AgentStatus.INACTIVE
    values: dict[str, Any] = {
        "team_id": team_id,
        "skills": _skills(skills),
        "capacity": capacity,
        "updated_at": now,
    }
    current = (
        await session.execute(
            select(agents.c.status).where(agents.c.agent_id == agent_id).with_for_update()
        )
    ).scalar_one_or_none()
    if current is None:
        await session.execute(
            agents.insert().values(agent_id=agent_id, status=str(wanted), **values)
        )
    else:
        if current != AgentStatus.SUSPENDED:  # rule: QA-SANCTION. Only QA lifts it.
            values["status"] = str(wanted)
        await session.execute(agents.update().where(agents.c.agent_id == agent_id).values(**values))
    row = (await session.execute(select(agents).where(agents.c.agent_id == agent_id))).one()
    return Agent.of(row)


async def loads_of(session: AsyncSession, agent_ids: Sequence[str] | None = None) -> dict[str, int]:
    """Open cases assigned per agent (only ``agent_ids`` if given); absent: 0."""
    query = (
        select(cases.c.agent_id, func.count())
        .where(cases.c.agent_id.is_not(None), cases.c.status.in_(OPEN_STATUSES))
        .group_by(cases.c.agent_id)
    )
    if agent_ids is not None:
        if not agent_ids:
            return {}
        query = query.where(cases.c.agent_id.in_(list(agent_ids)))
    return {agent_id: count for agent_id, count in (await session.execute(query)).all()}


async def _lock_agents(session: AsyncSession) -> list[Agent]:
    """Every agent, locked in ``agent_id`` order (one lock order: no deadlocks)."""
    rows = (
        await session.execute(select(agents).order_by(agents.c.agent_id).with_for_update())
    ).all()
    return [Agent.of(r) for r in rows]


def choose(
    candidates: Iterable[Agent], loads: Mapping[str, int], track: str, bucket: str
) -> Agent | None:
    """The eligible agent for a case of ``track`` and ``bucket``: active, skilled, under
    capacity; the least loaded, ties by ``agent_id``. None: nobody fits."""
    eligible = [
        a
        for a in candidates
        if a.status == AgentStatus.ACTIVE
        and a.covers(track, bucket)
        and loads.get(a.agent_id, 0) < a.capacity
    ]
    if not eligible:
        return None
    return min(eligible, key=lambda a: (loads.get(a.agent_id, 0), a.agent_id))


# -- assignment ----------------------------------------------------------------------------


async def run_assignment(uow: UnitOfWork, cipher: FieldCipher, *, now: datetime) -> RunResult:
    """Assign every open, unassigned case this transaction can lock to an eligible agent.

    Cases are taken oldest first (``opened_at``, then id). Cases nobody fits stay
    unassigned and are counted in ``unassigned_remaining``. The caller commits.
    """
    session = uow.session
    team = await _lock_agents(session)
    loads = await loads_of(session)
    waiting = (
        await session.execute(
            select(cases.c.id, cases.c.track, cases.c.bucket)
            .where(cases.c.agent_id.is_(None), cases.c.status.in_(OPEN_STATUSES))
            .order_by(cases.c.opened_at, cases.c.id)
            .with_for_update(skip_locked=True)
        )
    ).all()
    repo = CaseRepository(session, cipher)
    assigned = remaining = 0
    for row in waiting:
        agent = choose(team, loads, row.track, row.bucket)
        if agent is None:
            remaining += 1
            continue
        case = await repo.get(row.id, for_update=True)
        assert case is not None  # locked above
        await _hand_over(uow, repo, case, agent, now, reason=HandOver.RUN, actor=RUN_ACTOR)
        loads[agent.agent_id] = loads.get(agent.agent_id, 0) + 1
        assigned += 1
    return RunResult(assigned=assigned, unassigned_remaining=remaining)


async def assign_case(
    uow: UnitOfWork,
    cipher: FieldCipher,
    case_id: str,
    agent_id: str,
    *,
    now: datetime,
    actor: str = "ops",
) -> Case:
    """Ops hand a case to a named agent. A suspended agent is refused (QA-SANCTION), an
    inactive one too; capacity and skills are the run's concern, not ops' override.
    A case out of collection is refused naming its state (ActionNotAllowed)."""
    session = uow.session
    row = (
        await session.execute(select(agents).where(agents.c.agent_id == agent_id).with_for_update())
    ).one_or_none()
    if row is None:
        raise AgentNotFound(agent_id)
    agent = Agent.of(row)
    if agent.status != AgentStatus.ACTIVE:
        raise AgentUnavailable(agent)  # rule: QA-SANCTION (suspended)
    repo = CaseRepository(session, cipher)
    case = await repo.get(case_id, for_update=True)
    if case is None:
        raise CaseNotFound(case_id)
    await _hand_over(uow, repo, case, agent, now, reason=HandOver.OPS, actor=actor)
    return case


async def unassign_case(
    uow: UnitOfWork,
    cipher: FieldCipher,
    case_id: str,
    *,
    now: datetime,
    actor: str,
) -> Case:
    """Ops take the case from its agent (CaseUnassigned); nothing when it has none. A
    case out of collection is refused naming its state (ActionNotAllowed)."""
    repo = CaseRepository(uow.session, cipher)
    case = await repo.get(case_id, for_update=True)
    if case is None:
        raise CaseNotFound(case_id)
    await _take_back(uow, repo, case, now, reason=HandOver.OPS, actor=actor)
    return case


async def _hand_over(
    uow: UnitOfWork,
    repo: CaseRepository,
    case: Case,
    agent: Agent,
    now: datetime,
    *,
    reason: HandOver,
    actor: str,
    rule_id: str | None = None,
) -> None:
    version, previous = case.version, case.agent_id
    if case.assign(agent.agent_id, agent.team_id, now):
        await repo.save(case, now, expected_version=version)
        uow.track(case)
        await _log(
            uow.session,
            case.id,
            "assigned",
            agent=agent,
            previous=previous,
            reason=reason,
            rule_id=rule_id,
            actor=actor,
            at=now,
        )


async def _take_back(
    uow: UnitOfWork,
    repo: CaseRepository,
    case: Case,
    now: datetime,
    *,
    reason: HandOver,
    actor: str,
    rule_id: str | None = None,
) -> bool:
    version, previous = case.version, case.agent_id
    why = UnassignReason.AGENT_SUSPENDED if reason == HandOver.AGENT_SUSPENDED else None
    if not unassign(case, why or UnassignReason.OPS, now, rule_id=rule_id):
        return False
    await repo.save(case, now, expected_version=version)
    uow.track(case)
    await _log(
        uow.session,
        case.id,
        "unassigned",
        agent=None,
        previous=previous,
        reason=reason,
        rule_id=rule_id,
        actor=actor,
        at=now,
    )
    return True


async def _log(
    session: AsyncSession,
    case_id: str,
    action: str,
    *,
    agent: Agent | None,
    previous: str | None,
    reason: HandOver,
    rule_id: str | None,
    actor: str,
    at: datetime,
) -> None:
    await session.execute(
        case_assignment_log.insert().values(
            case_id=case_id,
            action=action,
            agent_id=None if agent is None else agent.agent_id,
            team_id=None if agent is None else agent.team_id,
            previous_agent_id=previous,
            reason=reason.value,
            rule_id=rule_id,
            actor=actor[:64],
            at=at,
        )
    )


# -- QA sanctions ------------------------------------------------------------------------


async def suspend_agent(
    uow: UnitOfWork, cipher: FieldCipher, agent_id: str, *, at: datetime
) -> ReassignResult:
    """QA suspended the agent (QA-SANCTION): mark them suspended, then move each of
    their open cases to another eligible agent, or leave it without an agent.

    An agent case-svc has not heard of is recorded as suspended (no team, no skills,
    capacity 0), so ops cannot hand them cases before they are reinstated.

    A moved case records CaseAssigned (``previous_agent_id`` the suspended agent); a case
    left without an agent records CaseUnassigned (reason ``agent_suspended``, rule
    QA-SANCTION); the next assignment run picks it up. Both go to the audit trail.
    """
    session = uow.session
    team = await _lock_agents(session)
    if not any(a.agent_id == agent_id for a in team):
        await session.execute(
            agents.insert().values(
                agent_id=agent_id,
                team_id=None,
                skills="",
                capacity=0,
                status=str(AgentStatus.SUSPENDED),
                updated_at=at,
            )
        )
    else:
        await session.execute(
            agents.update()
            .where(agents.c.agent_id == agent_id)
            .values(status=str(AgentStatus.SUSPENDED), updated_at=at)
        )
    others = [a for a in team if a.agent_id != agent_id]
    loads = await loads_of(session)
    held = (
        await session.execute(
            select(cases.c.id)
            .where(cases.c.agent_id == agent_id, cases.c.status.in_(OPEN_STATUSES))
            .order_by(cases.c.opened_at, cases.c.id)
            .with_for_update()
        )
    ).all()
    repo = CaseRepository(session, cipher)
    moved = unassigned = 0
    for (case_id,) in held:
        case = await repo.get(case_id, for_update=True)
        if case is None or case.agent_id != agent_id or not case.is_open:
            continue
        agent = choose(others, loads, str(case.strategy.track), str(case.bucket))
        if agent is not None:
            await _hand_over(  # CaseAssigned(previous_agent_id)
                uow,
                repo,
                case,
                agent,
                at,
                reason=HandOver.AGENT_SUSPENDED,
                actor=QA_ACTOR,
                rule_id=SANCTION_RULE,
            )
            loads[agent.agent_id] = loads.get(agent.agent_id, 0) + 1
            moved += 1
        elif await _take_back(  # CaseUnassigned
            uow,
            repo,
            case,
            at,
            reason=HandOver.AGENT_SUSPENDED,
            actor=QA_ACTOR,
            rule_id=SANCTION_RULE,
        ):
            unassigned += 1
    return ReassignResult(moved=moved, unassigned=unassigned)


async def reinstate_agent(session: AsyncSession, agent_id: str, *, at: datetime) -> bool:
    """QA reinstated the agent (retraining and exam passed): active again. Their former
    cases are not moved back. Returns whether a suspended agent was reinstated."""
    result = await session.execute(
        agents.update()
        .where(agents.c.agent_id == agent_id, agents.c.status == str(AgentStatus.SUSPENDED))
        .values(status=str(AgentStatus.ACTIVE), updated_at=at)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


# -- skip tracing and legal (CASE-SKIP) ------------------------------------------------


class CaseAction(StrEnum):
    SKIP_TRACING = "skip-tracing"
    CONTACT_REGAINED = "contact-regained"
    LEGAL = "legal"


async def act_on_case(
    uow: UnitOfWork,
    cipher: FieldCipher,
    table: StrategyTable,
    case_id: str,
    action: CaseAction,
    *,
    now: datetime,
    agent_id: str | None = None,
) -> Case:
    """Move the case (CASE-SKIP); ``IllegalTransition`` names its current state.

    ``agent_id`` given (an agent, not ops, is calling): only their own cases; another's
    case is not even acknowledged (CaseNotFound).
    """
    repo = CaseRepository(uow.session, cipher)
    case = await repo.get(case_id, for_update=True)
    if case is None or (agent_id is not None and case.agent_id != agent_id):
        raise CaseNotFound(case_id)
    version = case.version
    if action == CaseAction.SKIP_TRACING:
        case.start_skip_tracing(now)  # rule: CASE-SKIP
    elif action == CaseAction.CONTACT_REGAINED:
        case.contact_regained(now)  # rule: CASE-SKIP
    else:
        case.escalate_to_legal(now, table)  # rule: CASE-SKIP
    await repo.save(case, now, expected_version=version)
    uow.track(case)
    return case


__all__ = [
    "SKILLS",
    "Agent",
    "AgentNotFound",
    "AgentStatus",
    "AgentUnavailable",
    "CaseAction",
    "HandOver",
    "InvalidSkill",
    "ReassignResult",
    "RunResult",
    "act_on_case",
    "assign_case",
    "choose",
    "loads_of",
    "reinstate_agent",
    "run_assignment",
    "suspend_agent",
    "unassign_case",
    "upsert_agent",
]
