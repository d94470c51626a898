"""Which team each agent is in, from case-svc's assignments (for QA-SCORE reports per team).

qa-svc keeps no agent records of its own: ``case.assigned.v1`` names the agent and the
team case-svc assigned the case to. The latest assignment wins, judged by its
``assigned_at`` and not by the order of delivery: case.events is keyed by case, so two
cases' assignments of one agent may arrive in either order, and an older one arriving
late must not bring back a team the agent has left. A redelivery changes nothing.
"""

from __future__ import annotations

from collect_common.db import UnitOfWork, dialect_insert
from collect_common.events.types import CaseAssigned
from qa_svc.adapters.agent_tables import qa_agents


async def case_assigned(uow: UnitOfWork, event: CaseAssigned) -> bool:
    """Record the agent's team from the assignment unless a newer one is known; whether
    the row changed."""
    stmt = dialect_insert(uow.session, qa_agents).values(
        agent_id=event.agent_id, team_id=event.team_id, updated_at=event.assigned_at
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["agent_id"],
        set_={"team_id": stmt.excluded.team_id, "updated_at": stmt.excluded.updated_at},
        where=qa_agents.c.updated_at < stmt.excluded.updated_at,
    ).returning(qa_agents.c.agent_id)
    return (await uow.session.execute(stmt)).first() is not None
