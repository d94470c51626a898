"""Agents and teams, and the assignment run that hands them open cases by capacity and skill."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Path
from pydantic import BaseModel, Field
from sqlalchemy import select

from case_svc.adapters.assignment_tables import agents
from case_svc.entrypoints.api.deps import ContextDep, RuntimeDep
from case_svc.service_layer.assignment import Agent, loads_of, run_assignment, upsert_agent
from case_svc.service_layer.intake import retrying
from collect_common.security.auth import Role
from collect_common.web.auth import require_roles
from collect_common.web.pagination import Page, PageQuery

router = APIRouter(prefix="/v1", tags=["agents"])

# The strategy tracks (CASE-STRATEGY) and delinquency buckets (CASE-BUCKET) an agent works.
Skill = Literal["gentle", "standard", "firm", "legal", "M0", "M1", "M2", "M3", "M3+"]
AgentId = Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:@-]+$")


class AgentIn(BaseModel):
    team_id: str = Field(min_length=1, max_length=64, examples=["team-east-1"])
    skills: list[Skill] = Field(max_length=9, examples=[["gentle", "standard", "M1"]])
    capacity: int = Field(ge=0, le=100_000, description="Open cases the agent may carry")
    active: bool = Field(
        default=True, description="false: inactive. A QA suspension is lifted only by QA."
    )


class AgentOut(BaseModel):
    agent_id: str
    team_id: str | None
    skills: list[str]
    capacity: int
    status: Literal["active", "suspended", "inactive"]
    load: int = Field(description="Open cases assigned to the agent now")
    updated_at: datetime

    @classmethod
    def of(cls, agent: Agent, load: int) -> AgentOut:
        return cls(
            agent_id=agent.agent_id,
            team_id=agent.team_id,
            skills=sorted(agent.skills),
            capacity=agent.capacity,
            status=agent.status.value,
            load=load,
            updated_at=agent.updated_at,
        )


class RunOut(BaseModel):
    assigned: int
    unassigned_remaining: int = Field(
        description="Open cases this run saw that no eligible agent could take"
    )


@router.put(
    "/agents/{agent_id}",
    response_model=AgentOut,
    summary="Create or update an agent: team, skills (tracks and/or buckets), capacity",
    dependencies=[require_roles(Role.OPS)],
)
async def put_agent(body: AgentIn, runtime: RuntimeDep, agent_id: str = AgentId) -> AgentOut:
    """``active: false`` makes the agent inactive (no new cases; theirs stay). A
    suspended agent stays suspended until QA reinstates them (QA-SANCTION)."""

    async def attempt() -> AgentOut:
        async with runtime.uow() as uow:
            agent = await upsert_agent(
                uow.session,
                agent_id,
                team_id=body.team_id,
                skills=body.skills,
                capacity=body.capacity,
                active=body.active,
                now=runtime.clock.now(),
            )
            load = (await loads_of(uow.session, [agent_id])).get(agent_id, 0)
            await uow.commit()
        return AgentOut.of(agent, load)

    result: AgentOut = await retrying(attempt)
    return result


@router.get(
    "/agents",
    response_model=Page[AgentOut],
    summary="Agents by agent_id, each with their current load; pass next_cursor to go on",
    dependencies=[require_roles(Role.OPS, Role.AUDITOR)],
)
async def list_agents(page: PageQuery, runtime: RuntimeDep) -> Page[AgentOut]:
    async with runtime.sessions() as session:
        rows = (await session.execute(page.keyset(select(agents), [agents.c.agent_id]))).all()
        items, next_cursor = page.page_of(rows, lambda r: (r.agent_id,))
        loads = await loads_of(session, [r.agent_id for r in items])
    listed = [Agent.of(r) for r in items]
    return Page[AgentOut](
        items=[AgentOut.of(a, loads.get(a.agent_id, 0)) for a in listed],
        next_cursor=next_cursor,
    )


@router.post(
    "/assignments/run",
    response_model=RunOut,
    summary="Assign every open, unassigned case to an eligible agent",
    dependencies=[require_roles(Role.OPS)],
)
async def post_assignment_run(ctx: ContextDep, runtime: RuntimeDep) -> RunOut:
    """Eligible: active, a skill covering the case's track or bucket, load under
    capacity; the least loaded first, ties by agent_id. Each assignment records
    CaseAssigned (change feed and events). Concurrent runs never assign a case twice."""
    async with runtime.uow() as uow:
        result = await run_assignment(uow, ctx.cipher, now=runtime.clock.now())
        await uow.commit()
    return RunOut(assigned=result.assigned, unassigned_remaining=result.unassigned_remaining)
