"""The sanction ladder (QA-SANCTION): violations, sanctions, exams, reinstatement.

Writes are QA's (role ``qa``); reads also ``ops`` and ``auditor``.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Path
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from collect_common.runtime import ServiceRuntime
from collect_common.security.auth import Principal, Role
from collect_common.web.auth import require_roles
from collect_common.web.problems import ProblemError
from qa_svc.adapters.tables import alerts, sanctions
from qa_svc.domain.sanctions import RULE, SanctionKind, Severity
from qa_svc.entrypoints.api.common import RuntimeDep, policy_of
from qa_svc.service_layer.sanctions import (
    ReinstatementRefused,
    record_exam,
    record_violation,
    reinstate,
)

router = APIRouter(prefix="/v1", tags=["sanctions"])
AgentId = Path(min_length=1, max_length=64)
AlertId = Path(min_length=1, max_length=36)


QaOnly = Annotated[Principal, require_roles(Role.QA)]


class ViolationIn(BaseModel):
    severity: Severity
    rule_id: str = Field(min_length=1, max_length=32, examples=["QA-QUIET"])
    evidence: str = Field(
        min_length=1, max_length=64, description="An alert id or a contact record id"
    )
    note: str | None = Field(default=None, max_length=2000)


class AlertViolationIn(BaseModel):
    severity: Severity
    note: str | None = Field(default=None, max_length=2000)


class SanctionOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "sanction_id": "0f1c7a52-3b7e-4f37-9f55-52e3c1d0a001",
                    "agent_id": "agent-7",
                    "violation_id": "a3d0e1a4-7f7e-4d0b-8f8c-6a8ad8b4c002",
                    "sanction": "fine",
                    "reason": "repeated_minor",
                    "amount": "200.00",
                    "applied_at": "2026-11-28T06:00:00Z",
                    "retraining_until": None,
                    "reinstated_at": None,
                    "exam_ref": None,
                }
            ]
        }
    )

    sanction_id: str
    agent_id: str
    violation_id: str
    sanction: SanctionKind
    reason: str = Field(description="first_minor, repeated_minor, serious, repeated_serious, …")
    amount: Decimal | None
    applied_at: datetime
    retraining_until: datetime | None
    reinstated_at: datetime | None
    exam_ref: str | None

    @classmethod
    def of(cls, row: Any) -> SanctionOut:
        return cls(
            sanction_id=row.id,
            agent_id=row.agent_id,
            violation_id=row.violation_id,
            sanction=SanctionKind(row.kind),
            reason=row.reason,
            amount=row.amount,
            applied_at=row.applied_at,
            retraining_until=row.retraining_until,
            reinstated_at=row.reinstated_at,
            exam_ref=row.exam_ref,
        )


class ViolationOut(BaseModel):
    violation_id: str
    agent_id: str
    severity: Severity
    rule_id: str
    evidence: str
    alert_id: str | None
    note: str | None
    recorded_at: datetime
    sanction: SanctionOut | None = Field(
        description="The ladder's step; none when the agent was already suspended"
    )


class ExamIn(BaseModel):
    passed: bool
    score: Decimal | None = Field(default=None, ge=0, le=100, max_digits=5, decimal_places=2)
    exam_ref: str = Field(min_length=1, max_length=64, examples=["EXAM-2026-11-042"])


class ExamOut(BaseModel):
    exam_id: str
    agent_id: str
    exam_ref: str
    passed: bool
    score: Decimal | None
    recorded_at: datetime


class SanctionHistory(BaseModel):
    agent_id: str
    suspended: bool
    items: list[SanctionOut] = Field(description="Oldest first")


async def _record(
    runtime: ServiceRuntime,
    who: Principal,
    agent_id: str,
    severity: Severity,
    rule_id: str,
    evidence: str,
    note: str | None,
    alert_id: str | None = None,
) -> ViolationOut:
    async with runtime.uow() as uow:
        done = await record_violation(
            uow,
            policy_of(runtime),
            agent_id=agent_id,
            severity=severity,
            rule_id=rule_id,
            evidence=evidence,
            note=note,
            by=who.subject,
            now=runtime.clock.now(),
            alert_id=alert_id,
        )
        await uow.commit()
    v = done.violation
    return ViolationOut(
        violation_id=v.id,
        agent_id=v.agent_id,
        severity=Severity(v.severity),
        rule_id=v.rule_id,
        evidence=v.evidence,
        alert_id=v.alert_id,
        note=v.note,
        recorded_at=v.recorded_at,
        sanction=SanctionOut.of(done.sanction) if done.sanction is not None else None,
    )


@router.post(
    "/agents/{agent_id}/violations",
    response_model=ViolationOut,
    status_code=201,
    summary="Record a violation; the sanction ladder applies its next step (QA-SANCTION)",
)
async def add_violation(
    body: ViolationIn, runtime: RuntimeDep, who: QaOnly, agent_id: str = AgentId
) -> ViolationOut:
    return await _record(
        runtime, who, agent_id, body.severity, body.rule_id, body.evidence, body.note
    )


@router.post(
    "/alerts/{alert_id}/violation",
    response_model=ViolationOut,
    status_code=201,
    summary="Record a violation against the agent of an alert, the alert as evidence",
)
async def violation_from_alert(
    body: AlertViolationIn, runtime: RuntimeDep, who: QaOnly, alert_id: str = AlertId
) -> ViolationOut:
    async with runtime.sessions() as session:
        alert = (await session.execute(select(alerts).where(alerts.c.id == alert_id))).first()
    if alert is None:
        raise ProblemError(404, f"no alert {alert_id}", field="alert_id")
    if alert.agent_id is None:
        raise ProblemError(
            409, f"alert {alert_id} names no agent", slug="no-agent", rule=RULE, field="alert_id"
        )
    return await _record(
        runtime,
        who,
        alert.agent_id,
        body.severity,
        alert.rule_id,
        alert.id,
        body.note,
        alert_id=alert.id,
    )


@router.get(
    "/agents/{agent_id}/sanctions",
    response_model=SanctionHistory,
    summary="The agent's sanctions, oldest first, and whether a suspension is in force",
    dependencies=[require_roles(Role.QA, Role.OPS, Role.AUDITOR)],
)
async def sanction_history(runtime: RuntimeDep, agent_id: str = AgentId) -> SanctionHistory:
    async with runtime.sessions() as session:
        rows = (
            await session.execute(
                select(sanctions)
                .where(sanctions.c.agent_id == agent_id)
                .order_by(sanctions.c.applied_at, sanctions.c.id)
            )
        ).all()
    items = [SanctionOut.of(r) for r in rows]
    suspended = any(
        s.sanction is SanctionKind.SUSPENSION and s.reinstated_at is None for s in items
    )
    return SanctionHistory(agent_id=agent_id, suspended=suspended, items=items)


@router.post(
    "/agents/{agent_id}/exams",
    response_model=ExamOut,
    status_code=201,
    summary="Record a retraining exam's result",
)
async def add_exam(
    body: ExamIn, runtime: RuntimeDep, who: QaOnly, agent_id: str = AgentId
) -> ExamOut:
    async with runtime.uow() as uow:
        row = await record_exam(
            uow,
            agent_id=agent_id,
            exam_ref=body.exam_ref,
            passed=body.passed,
            score=body.score,
            by=who.subject,
            now=runtime.clock.now(),
        )
        await uow.commit()
    return ExamOut(
        exam_id=row.id,
        agent_id=row.agent_id,
        exam_ref=row.exam_ref,
        passed=row.passed,
        score=row.score,
        recorded_at=row.recorded_at,
    )


@router.post(
    "/agents/{agent_id}/reinstate",
    response_model=SanctionOut,
    summary="End a suspension: only after the retraining period and a passed exam",
    responses={409: {"description": "Not suspended, retraining not over, or no passed exam"}},
)
async def reinstate_agent(runtime: RuntimeDep, who: QaOnly, agent_id: str = AgentId) -> SanctionOut:
    try:
        async with runtime.uow() as uow:
            row = await reinstate(uow, agent_id=agent_id, by=who.subject, now=runtime.clock.now())
            await uow.commit()
    except ReinstatementRefused as exc:
        raise ProblemError(409, str(exc), slug=exc.code, rule=RULE, reason=exc.code) from None
    return SanctionOut.of(row)
