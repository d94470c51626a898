"""Evaluate the live rules (QA-REALTIME, QA-QUIET) on contact events, in the caller's unit of work.

The window state is the ``contact_events`` table: each attempt is written with its
event time, then the debtor's calls around it are read back, so the evaluation is
the same after a restart, on another replica after a rebalance, and for a late
event (counted where it belongs; it may raise an alert late). An alert is raised
once per breach: a frequency breach that overlaps an alert already raised for the
debtor only adds its evidence to that alert; the unique (check, debtor, window
start) key makes a replay a no-op. Nothing here commits.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter
from sqlalchemy import select

from collect_common.db import UnitOfWork, dialect_insert
from collect_common.events.qa import QaAlertRaised
from qa_svc.adapters.tables import alerts, contact_events
from qa_svc.domain.alerts import AlertStatus
from qa_svc.domain.policy import QaPolicy
from qa_svc.domain.rules import (
    FREQUENCY,
    Breach,
    Call,
    duration_breach,
    frequency_breach,
    quiet_breach,
)

# Channels that reach the debtor at a moment of the day (a letter does not).
TIMED_CHANNELS = frozenset({"call", "sms", "visit"})


class AlertMetrics:
    """``alerts_raised_total{rule}`` on the runtime's registry."""

    def __init__(self, registry: CollectorRegistry | None) -> None:
        self.raised = Counter(
            "alerts_raised_total",
            "Live-rule alerts raised, by rule ID",
            ["rule"],
            registry=registry,
        )


@dataclass
class LiveRules:
    policy: QaPolicy
    metrics: AlertMetrics | None = None


@dataclass(frozen=True)
class Contact:
    """The facts of one contact event the rules look at."""

    event_id: str
    debtor_id: str
    case_id: str
    contact_id: str
    agent_id: str | None
    channel: str
    at: datetime
    timezone: str | None = None
    bucket: str | None = None  # QA-SAMPLE stratum, when the event carries one


async def contact_attempted(
    uow: UnitOfWork, live: LiveRules, contact: Contact, now: datetime
) -> list[str]:
    """Record the attempt (window state) and evaluate frequency and quiet hours.

    Returns the ids of alerts raised (new ones only).
    """
    session = uow.session
    inserted = await session.execute(
        dialect_insert(session, contact_events)
        .values(
            event_id=contact.event_id,
            debtor_id=contact.debtor_id,
            case_id=contact.case_id,
            contact_id=contact.contact_id,
            agent_id=contact.agent_id,
            channel=contact.channel,
            at=contact.at,
            bucket=contact.bucket,
        )
        .on_conflict_do_nothing()
        .returning(contact_events.c.event_id)
    )
    if inserted.first() is None:
        return []  # seen before: already evaluated
    raised: list[str] = []
    if contact.channel == "call":
        window = live.policy.call_window
        rows = await session.execute(
            select(contact_events.c.event_id, contact_events.c.at, contact_events.c.agent_id)
            .where(
                contact_events.c.debtor_id == contact.debtor_id,
                contact_events.c.channel == "call",
                contact_events.c.at > contact.at - window,
                contact_events.c.at < contact.at + window,
            )
            .order_by(contact_events.c.at, contact_events.c.event_id)
        )
        calls = [Call(r.event_id, r.at, r.agent_id) for r in rows]
        new = Call(contact.event_id, contact.at, contact.agent_id)
        breach = frequency_breach(calls, new, live.policy)
        if breach is not None:
            raised += await raise_alert(uow, live, breach, contact, now)
    if contact.channel in TIMED_CHANNELS:
        breach = quiet_breach(contact.event_id, contact.at, contact.timezone, live.policy)
        if breach is not None:
            raised += await raise_alert(uow, live, breach, contact, now)
    return raised


async def call_completed(
    uow: UnitOfWork, live: LiveRules, contact: Contact, seconds: int, now: datetime
) -> list[str]:
    """Evaluate the call's duration (QA-REALTIME)."""
    breach = duration_breach(contact.event_id, contact.at, seconds, live.policy)
    if breach is None:
        return []
    return await raise_alert(uow, live, breach, contact, now)


async def raise_alert(
    uow: UnitOfWork, live: LiveRules, breach: Breach, contact: Contact, now: datetime
) -> list[str]:
    """One alert per breach: merge into an overlapping frequency alert, else insert once."""
    session = uow.session
    if breach.check == FREQUENCY:
        existing = (
            await session.execute(
                select(alerts.c.id, alerts.c.evidence, alerts.c.window_end)
                .where(
                    alerts.c.kind == FREQUENCY,
                    alerts.c.debtor_id == contact.debtor_id,
                    alerts.c.window_start < breach.window_end,
                    alerts.c.window_end > breach.window_start,
                )
                .order_by(alerts.c.window_start)
                .limit(1)
                .with_for_update()
            )
        ).first()
        if existing is not None:
            evidence = list(json.loads(existing.evidence))
            evidence += [e for e in breach.evidence if e not in evidence]
            await session.execute(
                alerts.update()
                .where(alerts.c.id == existing.id)
                .values(
                    evidence=json.dumps(evidence),
                    window_end=max(existing.window_end, breach.window_end),
                    updated_at=now,
                )
            )
            return []
    alert_id = str(uuid.uuid4())
    inserted = await session.execute(
        dialect_insert(session, alerts)
        .values(
            id=alert_id,
            rule_id=breach.rule_id,
            kind=breach.check,
            debtor_id=contact.debtor_id,
            case_id=contact.case_id,
            agent_id=contact.agent_id,
            window_start=breach.window_start,
            window_end=breach.window_end,
            evidence=json.dumps(list(breach.evidence)),
            detail=breach.detail,
            status=AlertStatus.OPEN.value,
            raised_at=now,
            updated_at=now,
        )
        .on_conflict_do_nothing(index_elements=["kind", "debtor_id", "window_start"])
        .returning(alerts.c.id)
    )
    if inserted.first() is None:
        return []
    uow.emit(
        QaAlertRaised(
            alert_id=alert_id,
            debtor_id=contact.debtor_id,
            rule_id=breach.rule_id,
            check=breach.check,  # type: ignore[arg-type]
            case_id=contact.case_id,
            agent_id=contact.agent_id,
            evidence_event_ids=list(breach.evidence),
            window_start=breach.window_start,
            window_end=breach.window_end,
            raised_at=now,
        )
    )
    if live.metrics is not None:
        live.metrics.raised.labels(breach.rule_id).inc()
    return [alert_id]
