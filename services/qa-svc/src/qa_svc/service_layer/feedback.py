"""Complaints feed QA (QA-FEEDBACK): what a joint investigation's outcome does here.

One ``complaint.outcome_recorded.v1`` per ticket and cycle counts once: the outcome is
kept in ``complaint_outcomes`` (primary key ticket and cycle), and a repeat of it (a
redelivery, or the same outcome emitted again) changes nothing. For an outcome naming
an agent:

- **substantiated** opens a re-check review task on the agent, linked to the ticket, and
  makes the agent a risk agent of the next weekly sample drawn (``claim_risk_agents``,
  called by the draw: the outcome is then marked with that week and feeds no other);
- **sanction_requested** records a violation (rule ``QA-FEEDBACK``, the ticket as
  evidence, severity as requested, minor when none is given) on the agent's sanction
  ladder through :func:`qa_svc.service_layer.sanctions.record_violation`.

An outcome that names no agent is kept and does nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from collect_common.db import UnitOfWork, dialect_insert
from collect_common.events.complaint import ComplaintOutcomeRecorded
from qa_svc.adapters.scoring_tables import complaint_outcomes
from qa_svc.domain.policy import QaPolicy
from qa_svc.domain.sanctions import Severity
from qa_svc.domain.scoring import FEEDBACK_RULE
from qa_svc.service_layer.reviews import open_recheck
from qa_svc.service_layer.sanctions import record_violation

BY = "complaint-svc"


@dataclass(frozen=True, slots=True)
class Applied:
    new: bool  # false: this ticket and cycle was applied before
    task_id: str | None = None
    violation_id: str | None = None


async def outcome_recorded(
    uow: UnitOfWork, policy: QaPolicy, event: ComplaintOutcomeRecorded, now: datetime
) -> Applied:
    session = uow.session
    claimed = await session.execute(
        dialect_insert(session, complaint_outcomes)
        .values(
            ticket_id=event.ticket_id,
            cycle=event.cycle,
            agent_id=event.agent_id,
            case_id=event.case_id,
            substantiated=event.substantiated,
            sanction_requested=event.sanction_requested,
            decided_at=event.decided_at,
            received_at=now,
        )
        .on_conflict_do_nothing(index_elements=["ticket_id", "cycle"])
        .returning(complaint_outcomes.c.ticket_id)
    )
    if claimed.first() is None:
        return Applied(new=False)
    if event.agent_id is None:
        return Applied(new=True)
    task_id: str | None = None
    violation_id: str | None = None
    if event.substantiated:
        task_id = await open_recheck(
            uow,
            agent_id=event.agent_id,
            case_id=event.case_id,
            ticket_id=event.ticket_id,
            cycle=event.cycle,
            now=now,
        )
    if event.sanction_requested:
        done = await record_violation(
            uow,
            policy,
            agent_id=event.agent_id,
            severity=Severity(event.sanction_severity or Severity.MINOR.value),
            rule_id=FEEDBACK_RULE,
            evidence=event.ticket_id,
            note=f"complaint {event.ticket_id}, investigation cycle {event.cycle}",
            by=BY,
            now=now,
        )
        violation_id = done.violation.id
    await session.execute(
        complaint_outcomes.update()
        .where(
            complaint_outcomes.c.ticket_id == event.ticket_id,
            complaint_outcomes.c.cycle == event.cycle,
        )
        .values(task_id=task_id, violation_id=violation_id)
    )
    return Applied(new=True, task_id=task_id, violation_id=violation_id)


async def claim_risk_agents(session: AsyncSession, week: str) -> set[str]:
    """Agents of substantiated complaints no sample has used yet; marked as used by
    ``week`` (the caller's transaction, so a refused draw claims nothing)."""
    claimed = await session.execute(
        complaint_outcomes.update()
        .where(
            complaint_outcomes.c.sample_week.is_(None),
            complaint_outcomes.c.substantiated.is_(True),
            complaint_outcomes.c.agent_id.is_not(None),
        )
        .values(sample_week=week)
        .returning(complaint_outcomes.c.agent_id)
    )
    return {agent for agent in claimed.scalars().all() if agent is not None}
