"""Tickets in and out of their two tables (SQLAlchemy Core; personal data encrypted)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from sqlalchemy import case, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from complaint_svc.adapters.tables import evidence, ticket_steps, tickets
from complaint_svc.domain.model import (
    STEPS,
    Channel,
    ComplaintType,
    Evidence,
    StepClock,
    Ticket,
    TicketState,
)

_STEP_FIELDS = (
    "started_at",
    "deadline",
    "completed_at",
    "warned_first_at",
    "warned_second_at",
    "breached_at",
)


class TicketRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, ticket: Ticket) -> None:
        await self.session.execute(tickets.insert().values(**_row(ticket), id=ticket.id))
        await self.session.execute(
            ticket_steps.insert(),
            [
                {"ticket_id": ticket.id, "step": c.step, "rule_id": c.rule_id, **_clock(c)}
                for c in ticket.steps.values()
            ],
        )
        await self.add_evidence(ticket.id, ticket.evidence)

    async def add_evidence(self, ticket_id: str, items: list[Evidence]) -> None:
        if items:
            await self.session.execute(
                evidence.insert(),
                [{"ticket_id": ticket_id, **_evidence_row(e)} for e in items],
            )

    async def id_by_message_id(self, message_id: str) -> str | None:
        """The ticket filed from the e-mail ``message_id`` (COMP-CHANNELS), if any."""
        query = select(tickets.c.id).where(tickets.c.message_id == message_id)
        found: str | None = (await self.session.execute(query)).scalar_one_or_none()
        return found

    async def id_by_call_id(self, call_id: str) -> str | None:
        """The ticket opened from a complaint reported in the call ``call_id``, if any."""
        query = select(tickets.c.id).where(tickets.c.call_id == call_id)
        found: str | None = (await self.session.execute(query)).scalar_one_or_none()
        return found

    async def get(self, ticket_id: str, *, for_update: bool = False) -> Ticket | None:
        query = select(tickets).where(tickets.c.id == ticket_id)
        if for_update:
            query = query.with_for_update()
        row = (await self.session.execute(query)).mappings().one_or_none()
        if row is None:
            return None
        step_rows = (
            (
                await self.session.execute(
                    select(ticket_steps).where(ticket_steps.c.ticket_id == ticket_id)
                )
            )
            .mappings()
            .all()
        )
        steps = {
            r["step"]: StepClock(
                step=r["step"], rule_id=r["rule_id"], **{f: r[f] for f in _STEP_FIELDS}
            )
            for r in step_rows
        }
        evidence_rows = (
            (
                await self.session.execute(
                    select(evidence)
                    .where(evidence.c.ticket_id == ticket_id)
                    .order_by(
                        evidence.c.added_at,
                        case((evidence.c.kind == "email", 0), else_=1),
                        evidence.c.id,
                    )
                )
            )
            .mappings()
            .all()
        )
        return Ticket(
            id=row["id"],
            number=row["number"],
            channel=Channel(row["channel"]),
            type=ComplaintType(row["type"]),
            complainant_name=row["complainant_name"],
            complainant_contact=row["complainant_contact"],
            content=row["content"],
            case_id=row["case_id"],
            agent_id=row["agent_id"],
            state=TicketState(row["state"]),
            accepted_at=row["accepted_at"],
            updated_at=row["updated_at"],
            paused_at=row["paused_at"],
            paused_total=timedelta(milliseconds=int(row["paused_total_ms"])),
            steps={s: steps[s] for s in STEPS if s in steps},
            cycle=int(row["cycle"]),
            escalated_at=row["escalated_at"],
            followup_note=row["followup_note"],
            complainant_phone=row["complainant_phone"],
            message_id=row["message_id"],
            needs_triage=bool(row["needs_triage"]),
            triage_reasons=list(json.loads(row["triage_reasons"] or "[]")),
            debtor_id=row["debtor_id"],
            call_id=row["call_id"],
            evidence=[Evidence(**{k: r[k] for k in _EVIDENCE_FIELDS}) for r in evidence_rows],
        )

    async def save(self, ticket: Ticket) -> None:
        """Write the ticket's state and every step's clock (the row is locked by ``get``)."""
        await self.session.execute(
            update(tickets).where(tickets.c.id == ticket.id).values(**_row(ticket))
        )
        for clock in ticket.steps.values():
            await self.session.execute(
                update(ticket_steps)
                .where(ticket_steps.c.ticket_id == ticket.id, ticket_steps.c.step == clock.step)
                .values(**_clock(clock))
            )


def _row(ticket: Ticket) -> dict[str, Any]:
    return {
        "number": ticket.number,
        "channel": ticket.channel.value,
        "type": ticket.type.value,
        "complainant_name": ticket.complainant_name,
        "complainant_contact": ticket.complainant_contact,
        "content": ticket.content,
        "case_id": ticket.case_id,
        "agent_id": ticket.agent_id,
        "state": ticket.state.value,
        "accepted_at": ticket.accepted_at,
        "updated_at": ticket.updated_at,
        "paused_at": ticket.paused_at,
        "paused_total_ms": ticket.paused_total // timedelta(milliseconds=1),
        "cycle": ticket.cycle,
        "escalated_at": ticket.escalated_at,
        "followup_note": ticket.followup_note,
        "complainant_phone": ticket.complainant_phone,
        "message_id": ticket.message_id,
        "needs_triage": ticket.needs_triage,
        "triage_reasons": json.dumps(ticket.triage_reasons, ensure_ascii=False)
        if ticket.triage_reasons
        else None,
        "debtor_id": ticket.debtor_id,
        "call_id": ticket.call_id,
    }


_EVIDENCE_FIELDS = (
    "id",
    "kind",
    "name",
    "content_type",
    "size_bytes",
    "sha256",
    "added_at",
    "recording_uri",
    "call_id",
)


def _evidence_row(item: Evidence) -> dict[str, Any]:
    return {f: getattr(item, f) for f in _EVIDENCE_FIELDS}


def _clock(clock: StepClock) -> dict[str, Any]:
    return {f: getattr(clock, f) for f in _STEP_FIELDS}
