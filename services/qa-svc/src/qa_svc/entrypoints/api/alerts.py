"""Alerts of the live rules: QA's work list (QA-REALTIME, QA-QUIET)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from collect_common.runtime import ServiceRuntime
from collect_common.security.auth import Principal, Role
from collect_common.web.auth import require_roles
from collect_common.web.pagination import Page, PageQuery
from collect_common.web.problems import ProblemError
from qa_svc.adapters.tables import alerts
from qa_svc.domain.alerts import Action, AlertStatus, IllegalTransition
from qa_svc.service_layer.alerts import AlertNotFound, change_status

router = APIRouter(prefix="/v1", tags=["alerts"])
AlertId = Path(min_length=1, max_length=36)
RULE = "QA-REALTIME"


def _runtime(request: Request) -> ServiceRuntime:
    runtime: ServiceRuntime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[ServiceRuntime, Depends(_runtime)]


class AlertOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "alert_id": "5b0f7c1e-8a47-4a43-9d3c-0c0f4f3f2a10",
                    "rule_id": "QA-REALTIME",
                    "check": "call_frequency",
                    "debtor_id": "D-1001",
                    "case_id": "C-1001",
                    "agent_id": "agent-7",
                    "window_start": "2026-11-28T01:00:00Z",
                    "window_end": "2026-11-29T01:00:00Z",
                    "evidence_event_ids": ["e1", "e2", "e3", "e4"],
                    "detail": "more than 3 calls within 24 h",
                    "status": "open",
                    "status_reason": None,
                    "raised_at": "2026-11-28T09:00:00Z",
                    "updated_at": "2026-11-28T09:00:00Z",
                }
            ]
        }
    )

    alert_id: str
    rule_id: str
    check: str = Field(description="call_frequency, call_duration or quiet_hours")
    debtor_id: str
    case_id: str
    agent_id: str | None
    window_start: datetime
    window_end: datetime
    evidence_event_ids: list[str]
    detail: str
    status: AlertStatus
    status_reason: str | None
    raised_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: Any) -> AlertOut:
        return cls(
            alert_id=row.id,
            rule_id=row.rule_id,
            check=row.kind,
            debtor_id=row.debtor_id,
            case_id=row.case_id,
            agent_id=row.agent_id,
            window_start=row.window_start,
            window_end=row.window_end,
            evidence_event_ids=json.loads(row.evidence),
            detail=row.detail,
            status=AlertStatus(row.status),
            status_reason=row.status_reason,
            raised_at=row.raised_at,
            updated_at=row.updated_at,
        )


class ReasonIn(BaseModel):
    reason: str = Field(min_length=1, max_length=2000, examples=["the debtor asked for a callback"])


class NoteIn(BaseModel):
    reason: str | None = Field(default=None, max_length=2000, examples=["repeat offender"])


@router.get(
    "/alerts",
    response_model=Page[AlertOut],
    summary="Alerts by time raised; filter by rule and status; pass next_cursor to go on",
    dependencies=[require_roles(Role.QA, Role.OPS, Role.AUDITOR)],
)
async def list_alerts(
    page: PageQuery,
    runtime: RuntimeDep,
    rule: Annotated[str | None, Query(max_length=32, examples=["QA-QUIET"])] = None,
    status: Annotated[AlertStatus | None, Query()] = None,
) -> Page[AlertOut]:
    query = select(alerts)
    if rule is not None:
        query = query.where(alerts.c.rule_id == rule)
    if status is not None:
        query = query.where(alerts.c.status == status.value)
    async with runtime.sessions() as session:
        rows = (await session.execute(page.keyset(query, [alerts.c.raised_at, alerts.c.id]))).all()
    items, next_cursor = page.page_of(rows, lambda r: (r.raised_at, r.id))
    return Page[AlertOut](items=[AlertOut.of(r) for r in items], next_cursor=next_cursor)


async def _act(
    runtime: ServiceRuntime, alert_id: str, action: Action, who: Principal, reason: str | None
) -> AlertOut:
    try:
        async with runtime.uow() as uow:
            row = await change_status(
                uow, alert_id, action, by=who.subject, reason=reason, now=runtime.clock.now()
            )
            await uow.commit()
    except AlertNotFound:
        raise ProblemError(404, f"no alert {alert_id}", field="alert_id") from None
    except IllegalTransition as exc:
        raise ProblemError(
            409, str(exc), slug="illegal-transition", rule=RULE, current_status=exc.current.value
        ) from None
    return AlertOut.of(row)


QaOnly = Annotated[Principal, require_roles(Role.QA)]


@router.post(
    "/alerts/{alert_id}/acknowledge",
    response_model=AlertOut,
    summary="Take an open alert in hand",
)
async def acknowledge(runtime: RuntimeDep, who: QaOnly, alert_id: str = AlertId) -> AlertOut:
    """Only an open alert; else 409 naming its current status."""
    return await _act(runtime, alert_id, Action.ACKNOWLEDGE, who, None)


@router.post(
    "/alerts/{alert_id}/dismiss",
    response_model=AlertOut,
    summary="Close an alert as no violation; a reason is required",
)
async def dismiss(
    body: ReasonIn, runtime: RuntimeDep, who: QaOnly, alert_id: str = AlertId
) -> AlertOut:
    return await _act(runtime, alert_id, Action.DISMISS, who, body.reason)


@router.post(
    "/alerts/{alert_id}/escalate",
    response_model=AlertOut,
    summary="Close an alert as a violation to act on (sanctions, QA-SANCTION)",
)
async def escalate(
    runtime: RuntimeDep, who: QaOnly, alert_id: str = AlertId, body: NoteIn | None = None
) -> AlertOut:
    return await _act(runtime, alert_id, Action.ESCALATE, who, body.reason if body else None)
