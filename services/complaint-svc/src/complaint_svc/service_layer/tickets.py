"""Complaint commands and the SLA timers (COMP-RECORD, COMP-SLA-*).

Timers are scheduled, cancelled, paused and resumed in the caller's unit of
work, with the ticket change that asks for it (``collect_common.timers``,
idempotent by key). One timer per step and level:

==========================================  ================  ==========================
key                                         kind              due
==========================================  ================  ==========================
``complaint:<ticket>:<step>:warn_first``    ``complaint.sla``  50 % of the step's time
``complaint:<ticket>:<step>:warn_second``   ``complaint.sla``  75 % of the step's time
``complaint:<ticket>:<step>:breach``        ``complaint.sla``  the step's deadline
==========================================  ================  ==========================

After an escalation (COMP-ESCALATE) the restarted steps of cycle ``n`` run on keys
``complaint:<ticket>:c<n>:<step>:<level>``; the previous cycle's are cancelled, and a
timer whose payload names another cycle than the ticket's is moot.

Each warning and breach is an event and a count on
``complaint_sla_alerts_total{service, step, level}``.

A step counted in business hours (COMP-SLA-*) has its timers due at working-time
instants; when the ticket resumes, they are scheduled again at the step's new warning
and breach instants (a paused timer would only move by the wall-clock pause).

The joint investigation (COMP-JOINT): each department's findings for the cycle under
way, then the cycle's outcome (``complaint.outcome_recorded.v1``).
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from prometheus_client import CollectorRegistry, Counter
from sqlalchemy.ext.asyncio import AsyncSession

from collect_common import timers
from collect_common.clock import Clock, SystemClock
from collect_common.db import UnitOfWork
from collect_common.timers import Timer
from complaint_svc.adapters.read_model import ReadModel
from complaint_svc.adapters.repository import TicketRepository
from complaint_svc.domain.evidence import (
    ContactRecord,
    evidence_to_attach,
    window_start,
)
from complaint_svc.domain.handling import Department, Remedy, SanctionSeverity
from complaint_svc.domain.model import (
    RESTARTED,
    STEPS,
    Alert,
    Channel,
    ComplaintType,
    Evidence,
    Level,
    Ticket,
    alerts_for,
)
from complaint_svc.domain.policy import ComplaintPolicy

SLA_KIND = "complaint.sla"


class TicketNotFound(LookupError):
    pass


class SlaMetrics:
    """SLA warnings and breaches, per step and level (dashboards query this name)."""

    def __init__(self, registry: CollectorRegistry, service: str) -> None:
        self.service = service
        self.alerts = Counter(
            "complaint_sla_alerts_total",
            "Complaint SLA warnings and breaches (COMP-SLA-*), by step and level",
            ["service", "step", "level"],
            registry=registry,
        )

    def count(self, step: str, level: Level) -> None:
        self.alerts.labels(service=self.service, step=step, level=level.value).inc()


@dataclass(frozen=True)
class ComplaintContext:
    uow_factory: Callable[[], UnitOfWork]
    policy: ComplaintPolicy
    metrics: SlaMetrics
    clock: Clock = field(default_factory=SystemClock)


@dataclass(frozen=True)
class Intake:
    """COMP-RECORD: what a complaint carries, whatever the channel."""

    channel: Channel
    type: ComplaintType
    complainant_name: str
    complainant_contact: str
    content: str
    case_id: str | None = None
    agent_id: str | None = None
    complainant_phone: str | None = None
    message_id: str | None = None  # e-mail: one ticket per message (unique)
    triage_reasons: tuple[str, ...] = ()  # e-mail that could not be read: filed for triage
    evidence: tuple[Evidence, ...] = ()
    debtor_id: str | None = None
    call_id: str | None = None  # contact channel: one ticket per call (unique)


def recording_evidence(
    uri: str, call_id: str | None, now: datetime, recorded_at: datetime | None = None
) -> Evidence:
    """A call recording as evidence: referenced by its URI (the dialer keeps the audio)."""
    return Evidence(
        id=str(uuid.uuid4()),
        kind="recording",
        name=None,
        content_type=None,
        size_bytes=None,
        sha256=None,
        added_at=now,
        recording_uri=uri,
        call_id=call_id,
        occurred_at=recorded_at,
    )


def new_number(now: datetime) -> str:
    """The complaint number the complainant is given, e.g. ``CP-20261128-3F9A1C2B``."""
    return f"CP-{now:%Y%m%d}-{secrets.token_hex(4).upper()}"


# -- scheduling (inside the caller's unit of work) -------------------------------------


async def schedule_alerts(
    session: AsyncSession, ticket: Ticket, alerts: Iterable[Alert], now: datetime
) -> None:
    for a in alerts:
        await timers.schedule(
            session,
            key=ticket.timer_key(a.step, a.level),
            kind=SLA_KIND,
            subject=ticket.id,
            due_at=a.due_at,
            payload={
                "ticket_id": ticket.id,
                "step": a.step,
                "level": a.level.value,
                "percent": a.percent,
                "cycle": ticket.cycle_of(a.step),
            },
            now=now,
        )


def _keys(ticket: Ticket, steps: Iterable[str]) -> list[str]:
    return [ticket.timer_key(s, level) for s in steps for level in Level]


# -- commands --------------------------------------------------------------------------


async def open_ticket(
    ctx: ComplaintContext, uow: UnitOfWork, intake: Intake, now: datetime
) -> Ticket:
    """Accept a complaint: the ticket, and every step's warning and breach timers.

    The read model links it: a known case gives the debtor (and the agent, when the
    intake names none); the debtor's recordings of the last
    ``evidence_recording_days`` and SMS and letters of the last ``evidence_contact_days``
    are attached as evidence (COMP-SLA-EVIDENCE, ``domain.evidence``)."""
    read_model = ReadModel(uow.session)
    debtor_id, agent_id = intake.debtor_id, intake.agent_id
    if intake.case_id is not None and (debtor_id is None or agent_id is None):
        known = await read_model.case(intake.case_id)
        if known is not None:
            debtor_id = debtor_id or known.debtor_id
            agent_id = agent_id or known.agent_id
    evidence = list(intake.evidence)
    if debtor_id is not None:
        await read_model.lock_debtor(debtor_id)  # a record arriving meanwhile sees the ticket
        since = now - timedelta(days=ctx.policy.evidence_recording_days)
        attached = {e.recording_uri for e in evidence if e.recording_uri}
        for rec in await read_model.recordings_of(debtor_id, since):
            if rec.recording_uri not in attached:
                attached.add(rec.recording_uri)
                evidence.append(
                    recording_evidence(rec.recording_uri, rec.call_id, now, rec.recorded_at)
                )
    ticket = Ticket.accept(
        id=str(uuid.uuid4()),
        number=new_number(now),
        channel=intake.channel,
        type=intake.type,
        complainant_name=intake.complainant_name,
        complainant_contact=intake.complainant_contact,
        content=intake.content,
        case_id=intake.case_id,
        agent_id=agent_id,
        now=now,
        policy=ctx.policy,
    )
    ticket.complainant_phone = intake.complainant_phone
    ticket.message_id = intake.message_id
    ticket.triage_reasons = list(intake.triage_reasons)
    ticket.needs_triage = bool(intake.triage_reasons)
    ticket.debtor_id = debtor_id
    ticket.call_id = intake.call_id
    ticket.evidence = evidence
    if debtor_id is not None:
        days = ctx.policy.evidence_contact_days
        records = await read_model.records_of(debtor_id, window_start(now, days))
        evidence_to_attach(ticket, records, days, now)
    await TicketRepository(uow.session).add(ticket)
    alerts = [a for c in ticket.running_steps() for a in alerts_for(c, ctx.policy)]
    await schedule_alerts(uow.session, ticket, alerts, now)
    uow.track(ticket)
    return ticket


async def _load(uow: UnitOfWork, ticket_id: str) -> tuple[TicketRepository, Ticket]:
    repo = TicketRepository(uow.session)
    ticket = await repo.get(ticket_id, for_update=True)
    if ticket is None:
        raise TicketNotFound(ticket_id)
    return repo, ticket


async def complete_step(
    ctx: ComplaintContext, uow: UnitOfWork, ticket_id: str, step: str, now: datetime
) -> Ticket:
    """Complete ``step``: its remaining timers stop; the result starts the follow-up's."""
    repo, ticket = await _load(uow, ticket_id)
    started = ticket.complete(step, now, ctx.policy)
    for key in _keys(ticket, [step]):
        await timers.cancel(uow.session, key)
    await schedule_alerts(uow.session, ticket, started, now)
    await repo.save(ticket)
    uow.track(ticket)
    return ticket


async def pause_ticket(
    ctx: ComplaintContext, uow: UnitOfWork, ticket_id: str, now: datetime
) -> Ticket:
    repo, ticket = await _load(uow, ticket_id)
    ticket.pause(now)
    for key in _keys(ticket, STEPS):
        await timers.pause(uow.session, key, now)
    await repo.save(ticket)
    uow.track(ticket)
    return ticket


async def resume_ticket(
    ctx: ComplaintContext, uow: UnitOfWork, ticket_id: str, now: datetime
) -> Ticket:
    repo, ticket = await _load(uow, ticket_id)
    ticket.resume(now, ctx.policy)
    for key in _keys(ticket, STEPS):
        await timers.resume(uow.session, key, now)
    in_hours = [c for c in ticket.running_steps() if ctx.policy.calendar(c.step) is not None]
    # a step in business hours: its pending timers go to its new working-time instants
    await schedule_alerts(
        uow.session, ticket, [a for c in in_hours for a in alerts_for(c, ctx.policy)], now
    )
    await repo.save(ticket)
    uow.track(ticket)
    return ticket


async def follow_up(
    ctx: ComplaintContext,
    uow: UnitOfWork,
    ticket_id: str,
    satisfied: bool,
    note: str | None,
    now: datetime,
) -> Ticket:
    """COMP-SLA-FOLLOWUP, COMP-ESCALATE: satisfied closes the ticket; dissatisfied escalates
    it to senior management and starts a new cycle: the old cycle's timers are cancelled,
    the new cycle's investigate and resolve timers run from now."""
    repo, ticket = await _load(uow, ticket_id)
    old = list(_keys(ticket, RESTARTED))
    started = ticket.follow_up(satisfied, note, now, ctx.policy)
    for key in old:
        await timers.cancel(uow.session, key)
    await schedule_alerts(uow.session, ticket, started, now)
    await repo.save(ticket)
    uow.track(ticket)
    return ticket


@dataclass(frozen=True)
class OutcomeDecision:
    """COMP-JOINT, COMP-SANCTION: what the departments decided for the cycle."""

    substantiated: bool
    remedies: tuple[Remedy, ...] = ()
    fee_waiver_amount: Decimal | None = None
    sanction_severity: SanctionSeverity | None = None
    apology_recorded: bool = False


async def add_finding(
    ctx: ComplaintContext,
    uow: UnitOfWork,
    ticket_id: str,
    department: Department,
    author: str,
    text: str,
    now: datetime,
) -> Ticket:
    """A department's findings for the cycle under way (COMP-JOINT)."""
    repo, ticket = await _load(uow, ticket_id)
    ticket.add_finding(
        id=str(uuid.uuid4()), department=department, author=author, text=text, now=now
    )
    await repo.save(ticket)
    uow.track(ticket)
    return ticket


async def record_outcome(
    ctx: ComplaintContext,
    uow: UnitOfWork,
    ticket_id: str,
    decision: OutcomeDecision,
    decided_by: str,
    now: datetime,
) -> Ticket:
    """The cycle's outcome, once every department's findings are in (COMP-JOINT); the
    event tells qa-svc of a substantiated complaint and a sanction request."""
    repo, ticket = await _load(uow, ticket_id)
    ticket.record_outcome(
        substantiated=decision.substantiated,
        remedies=decision.remedies,
        fee_waiver_amount=decision.fee_waiver_amount,
        sanction_severity=decision.sanction_severity,
        apology_recorded=decision.apology_recorded,
        decided_by=decided_by,
        now=now,
        policy=ctx.policy,
    )
    await repo.save(ticket)
    uow.track(ticket)
    return ticket


async def contact_recorded(
    ctx: ComplaintContext, uow: UnitOfWork, record: ContactRecord, now: datetime
) -> list[str]:
    """An SMS or a letter event of the debtor (COMP-SLA-EVIDENCE): kept in the read model,
    for the debtor's later tickets, and attached to each of the debtor's tickets not closed
    whose window it falls in. Returns the tickets it was attached to (none when every one
    holds it already: a redelivered event attaches nothing twice)."""
    read_model = ReadModel(uow.session)
    await read_model.lock_debtor(record.debtor_id)  # a ticket opening meanwhile sees it
    await read_model.add_record(record)
    repo = TicketRepository(uow.session)
    attached_to: list[str] = []
    for ticket_id in await repo.open_ids_of_debtor(record.debtor_id):
        ticket = await repo.get(ticket_id, for_update=True)
        if ticket is None:
            continue
        new = evidence_to_attach(ticket, [record], ctx.policy.evidence_contact_days, now)
        if new:
            await repo.add_evidence(ticket.id, new)
            attached_to.append(ticket.id)
    return attached_to


async def get_ticket(uow: UnitOfWork, ticket_id: str) -> Ticket:
    ticket = await TicketRepository(uow.session).get(ticket_id)
    if ticket is None:
        raise TicketNotFound(ticket_id)
    return ticket


# -- the timer handler (run by the TimerScheduler) -------------------------------------


async def on_sla_timer(ctx: ComplaintContext, timer: Timer, uow: UnitOfWork, now: datetime) -> None:
    """rule: COMP-SLA-*. A step reached a warning or its deadline: an event and a metric,
    unless the step was completed (or the ticket finished) in the meantime."""
    repo = TicketRepository(uow.session)
    ticket = await repo.get(str(timer.payload["ticket_id"]), for_update=True)
    if ticket is None:
        return
    step = str(timer.payload["step"])
    level = Level(str(timer.payload["level"]))
    if int(timer.payload.get("cycle", 1)) != ticket.cycle_of(step):
        return  # a previous investigation cycle's timer (COMP-ESCALATE)
    if ticket.alert(step, level, int(timer.payload.get("percent", 100)), now):
        await repo.save(ticket)
        uow.track(ticket)
        await uow.flush_events()  # its events are written before it is counted
        ctx.metrics.count(step, level)
