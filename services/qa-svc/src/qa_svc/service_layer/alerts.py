"""QA's work list of alerts: move one along its life (acknowledge, dismiss, escalate)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select

from collect_common.db import UnitOfWork
from qa_svc.adapters.tables import alerts
from qa_svc.domain.alerts import Action, AlertStatus, transition


class AlertNotFound(LookupError):
    pass


async def change_status(
    uow: UnitOfWork,
    alert_id: str,
    action: Action,
    *,
    by: str,
    reason: str | None,
    now: datetime,
) -> Any:
    """Apply ``action``; ``IllegalTransition`` names the current status if refused."""
    row = (
        await uow.session.execute(select(alerts).where(alerts.c.id == alert_id).with_for_update())
    ).first()
    if row is None:
        raise AlertNotFound(alert_id)
    status = transition(AlertStatus(row.status), action)
    await uow.session.execute(
        alerts.update()
        .where(alerts.c.id == alert_id)
        .values(status=status.value, status_reason=reason, status_by=by, updated_at=now)
    )
    return (await uow.session.execute(select(alerts).where(alerts.c.id == alert_id))).one()
