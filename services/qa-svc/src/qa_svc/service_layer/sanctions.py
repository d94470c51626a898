"""Violations, the sanction ladder and reinstatement (QA-SANCTION), in one unit of work.

Decisions for one agent are serialised by a transaction-scoped advisory lock on the
agent id, so two violations recorded at once cannot both read the same history.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, func, select

from collect_common.db import UnitOfWork
from collect_common.events.qa import QaSanctionApplied
from collect_common.events.types import AgentReinstated, AgentSuspended
from qa_svc.adapters.tables import exams, sanctions, violations
from qa_svc.domain.policy import QaPolicy
from qa_svc.domain.sanctions import (
    MONETARY,
    RULE,
    History,
    SanctionKind,
    Severity,
    next_step,
)


class ReinstatementRefused(Exception):
    """Why the agent may not work again yet (QA-SANCTION); ``code`` names the reason."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code


@dataclass(frozen=True, slots=True)
class Recorded:
    violation: Any
    sanction: Any | None  # none when the agent was already suspended


async def _lock_agent(uow: UnitOfWork, agent_id: str) -> None:
    await uow.session.execute(
        select(func.pg_advisory_xact_lock(func.hashtext("qa-sanction:" + agent_id)))
    )


async def open_suspension(uow: UnitOfWork, agent_id: str) -> Any | None:
    return (
        await uow.session.execute(
            select(sanctions).where(
                sanctions.c.agent_id == agent_id,
                sanctions.c.kind == SanctionKind.SUSPENSION.value,
                sanctions.c.reinstated_at.is_(None),
            )
        )
    ).first()


async def _history(uow: UnitOfWork, agent_id: str, since: datetime) -> History:
    severities: dict[str, int] = dict(
        (
            await uow.session.execute(
                select(violations.c.severity, func.count())
                .where(violations.c.agent_id == agent_id, violations.c.recorded_at > since)
                .group_by(violations.c.severity)
            )
        ).all()
    )
    fines = (
        await uow.session.execute(
            select(func.count())
            .select_from(sanctions)
            .where(
                sanctions.c.agent_id == agent_id,
                sanctions.c.applied_at > since,
                sanctions.c.kind.in_([k.value for k in MONETARY]),
            )
        )
    ).scalar_one()
    return History(
        minor=int(severities.get(Severity.MINOR.value, 0)),
        serious=int(severities.get(Severity.SERIOUS.value, 0)),
        fines=int(fines),
    )


async def record_violation(
    uow: UnitOfWork,
    policy: QaPolicy,
    *,
    agent_id: str,
    severity: Severity,
    rule_id: str,
    evidence: str,
    note: str | None,
    by: str,
    now: datetime,
    alert_id: str | None = None,
) -> Recorded:
    """Keep the violation and apply the ladder's next step (a row and its events)."""
    await _lock_agent(uow, agent_id)
    history = await _history(uow, agent_id, now - policy.sanction_window)
    violation_id = str(uuid.uuid4())
    await uow.session.execute(
        violations.insert().values(
            id=violation_id,
            agent_id=agent_id,
            severity=severity.value,
            rule_id=rule_id,
            evidence=evidence,
            alert_id=alert_id,
            note=note,
            recorded_by=by,
            recorded_at=now,
        )
    )
    violation = (
        await uow.session.execute(select(violations).where(violations.c.id == violation_id))
    ).one()
    if await open_suspension(uow, agent_id) is not None:
        return Recorded(violation, None)
    step = next_step(policy, severity, history)
    sanction_id = str(uuid.uuid4())
    until = now + policy.retraining if step.kind is SanctionKind.SUSPENSION else None
    await uow.session.execute(
        sanctions.insert().values(
            id=sanction_id,
            agent_id=agent_id,
            violation_id=violation_id,
            kind=step.kind.value,
            reason=step.reason,
            amount=step.amount,
            applied_at=now,
            retraining_until=until,
        )
    )
    uow.emit(
        QaSanctionApplied(
            agent_id=agent_id,
            sanction_id=sanction_id,
            violation_id=violation_id,
            rule_id=RULE,
            sanction=step.kind.value,
            severity=severity.value,
            amount=step.amount,
            retraining_until=until,
            applied_at=now,
        )
    )
    if step.kind is SanctionKind.SUSPENSION:
        uow.emit(
            AgentSuspended(agent_id=agent_id, suspended_at=now, rule_id=RULE, reason=step.reason)
        )
    sanction = (
        await uow.session.execute(select(sanctions).where(sanctions.c.id == sanction_id))
    ).one()
    return Recorded(violation, sanction)


async def record_exam(
    uow: UnitOfWork,
    *,
    agent_id: str,
    exam_ref: str,
    passed: bool,
    score: Decimal | None,
    by: str,
    now: datetime,
) -> Any:
    exam_id = str(uuid.uuid4())
    await uow.session.execute(
        exams.insert().values(
            id=exam_id,
            agent_id=agent_id,
            exam_ref=exam_ref,
            passed=passed,
            score=score,
            recorded_by=by,
            recorded_at=now,
        )
    )
    return (await uow.session.execute(select(exams).where(exams.c.id == exam_id))).one()


async def reinstate(uow: UnitOfWork, *, agent_id: str, by: str, now: datetime) -> Any:
    """End the open suspension; ``ReinstatementRefused`` unless its retraining period is
    over and a passed exam was recorded after it began."""
    await _lock_agent(uow, agent_id)
    suspension = await open_suspension(uow, agent_id)
    if suspension is None:
        raise ReinstatementRefused("not-suspended", f"agent {agent_id} is not suspended")
    if now < suspension.retraining_until:
        raise ReinstatementRefused(
            "retraining-not-over",
            f"retraining of agent {agent_id} lasts until {suspension.retraining_until.isoformat()}",
        )
    exam = (
        await uow.session.execute(
            select(exams)
            .where(
                and_(
                    exams.c.agent_id == agent_id,
                    exams.c.passed.is_(True),
                    exams.c.recorded_at > suspension.applied_at,
                )
            )
            .order_by(exams.c.recorded_at.desc(), exams.c.id)
            .limit(1)
        )
    ).first()
    if exam is None:
        raise ReinstatementRefused(
            "no-passed-exam",
            f"agent {agent_id} has no passed exam recorded since the suspension",
        )
    await uow.session.execute(
        sanctions.update()
        .where(sanctions.c.id == suspension.id)
        .values(reinstated_at=now, reinstated_by=by, exam_ref=exam.exam_ref)
    )
    uow.emit(AgentReinstated(agent_id=agent_id, reinstated_at=now, exam_ref=exam.exam_ref))
    query = select(sanctions).where(sanctions.c.id == suspension.id)
    return (await uow.session.execute(query)).one()
