"""Tickets in and out of their tables (SQLAlchemy Core; personal data encrypted).

Findings, outcomes and past cycles' steps are append-only: ``save`` inserts those the
ticket gained (an existing row is left as it is)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from sqlalchemy import Table, case, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from collect_common.db import dialect_insert
from complaint_svc.adapters.tables import (
    evidence,
    findings,
    outcomes,
    step_history,
    ticket_steps,
    tickets,
)
from complaint_svc.domain.handling import (
    Department,
    Finding,
    Outcome,
    Remedy,
    SanctionSeverity,
    StepRecord,
)
from complaint_svc.domain.model import (
    FINAL_STATES,
    STEPS,
    Channel,
    ComplaintType,
    Evidence,
    StepClock,
    Ticket,
    TicketState,
)

_FINAL = sorted(s.value for s in FINAL_STATES)
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
        await self._append(ticket)

    async def add_evidence(self, ticket_id: str, items: list[Evidence]) -> None:
        """Insert the evidence; a contact record the ticket holds already is left as it is
        (kind and reference unique per ticket)."""
        if items:
            await self._insert_new(
                evidence,
                ["ticket_id", "kind", "reference"],
                [{"ticket_id": ticket_id, **_evidence_row(e)} for e in items],
            )

    async def open_ids_of_debtor(self, debtor_id: str) -> list[str]:
        """The debtor's tickets not closed, oldest first."""
        query = (
            select(tickets.c.id)
            .where(tickets.c.debtor_id == debtor_id, tickets.c.state.not_in(_FINAL))
            .order_by(tickets.c.accepted_at, tickets.c.id)
        )
        return list((await self.session.execute(query)).scalars().all())

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
                        func.coalesce(evidence.c.occurred_at, evidence.c.added_at),
                        evidence.c.kind,
                        evidence.c.reference,
                        evidence.c.id,
                    )
                )
            )
            .mappings()
            .all()
        )
        finding_rows = (
            (
                await self.session.execute(
                    select(findings)
                    .where(findings.c.ticket_id == ticket_id)
                    .order_by(findings.c.cycle, findings.c.added_at, findings.c.id)
                )
            )
            .mappings()
            .all()
        )
        outcome_rows = (
            (await self.session.execute(select(outcomes).where(outcomes.c.ticket_id == ticket_id)))
            .mappings()
            .all()
        )
        history_rows = (
            (
                await self.session.execute(
                    select(step_history).where(step_history.c.ticket_id == ticket_id)
                )
            )
            .mappings()
            .all()
        )
        order = {s: i for i, s in enumerate(STEPS)}
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
            findings=[_finding(r) for r in finding_rows],
            outcomes={int(r["cycle"]): _outcome(r) for r in outcome_rows},
            history=sorted(
                (
                    StepRecord(
                        cycle=int(r["cycle"]),
                        step=r["step"],
                        rule_id=r["rule_id"],
                        **{f: r[f] for f in _STEP_FIELDS},
                    )
                    for r in history_rows
                ),
                key=lambda h: (h.cycle, order.get(h.step, len(order))),
            ),
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
        await self._append(ticket)

    async def _append(self, ticket: Ticket) -> None:
        """Insert the ticket's findings, outcomes and past steps not yet stored."""
        await self._insert_new(
            findings,
            ["id"],
            [
                {
                    "id": f.id,
                    "ticket_id": ticket.id,
                    "cycle": f.cycle,
                    "department": f.department.value,
                    "author": f.author,
                    "text": f.text,
                    "added_at": f.added_at,
                }
                for f in ticket.findings
            ],
        )
        await self._insert_new(
            outcomes,
            ["ticket_id", "cycle"],
            [
                {
                    "ticket_id": ticket.id,
                    "cycle": o.cycle,
                    "substantiated": o.substantiated,
                    "remedies": json.dumps([r.value for r in o.remedies]),
                    "fee_waiver_amount": o.fee_waiver_amount,
                    "sanction_severity": None
                    if o.sanction_severity is None
                    else o.sanction_severity.value,
                    "apology_recorded": o.apology_recorded,
                    "decided_by": o.decided_by,
                    "decided_at": o.decided_at,
                }
                for o in ticket.outcomes.values()
            ],
        )
        await self._insert_new(
            step_history,
            ["ticket_id", "cycle", "step"],
            [
                {
                    "ticket_id": ticket.id,
                    "cycle": h.cycle,
                    "step": h.step,
                    "rule_id": h.rule_id,
                    **{f: getattr(h, f) for f in _STEP_FIELDS},
                }
                for h in ticket.history
            ],
        )

    async def _insert_new(self, table: Table, key: list[str], rows: list[dict[str, Any]]) -> None:
        if rows:
            stmt = dialect_insert(self.session, table).on_conflict_do_nothing(index_elements=key)
            await self.session.execute(stmt, rows)


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
    "reference",
    "occurred_at",
    "proof_ref",
)


def _evidence_row(item: Evidence) -> dict[str, Any]:
    return {f: getattr(item, f) for f in _EVIDENCE_FIELDS}


def _clock(clock: StepClock) -> dict[str, Any]:
    return {f: getattr(clock, f) for f in _STEP_FIELDS}


def _finding(r: Any) -> Finding:
    return Finding(
        id=r["id"],
        cycle=int(r["cycle"]),
        department=Department(r["department"]),
        author=r["author"],
        text=r["text"],
        added_at=r["added_at"],
    )


def _outcome(r: Any) -> Outcome:
    severity = r["sanction_severity"]
    return Outcome(
        cycle=int(r["cycle"]),
        substantiated=bool(r["substantiated"]),
        remedies=tuple(Remedy(x) for x in json.loads(r["remedies"])),
        fee_waiver_amount=r["fee_waiver_amount"],
        sanction_severity=None if severity is None else SanctionSeverity(severity),
        apology_recorded=bool(r["apology_recorded"]),
        decided_by=r["decided_by"],
        decided_at=r["decided_at"],
    )
