"""The dialer's call webhooks (started, answered, ended): record the call, settle the contact
attempt it belongs to, tell others, and flag calls the policy would have denied.

One transaction per delivery, serialised per debtor by the same row lock as the decisions
(``debtors ... FOR UPDATE``). Idempotent: ``dialer_deliveries`` keeps every applied delivery
with the answer it got, unique on the delivery id and on ``(call_id, event)``; a retry of
either kind changes nothing and gets the first answer.

Effects:

- ``calls`` row created on the first event seen of a call, completed by the others (they may
  arrive out of order);
- the call is matched to its contact attempt (``contact_id`` when the dialer passes the
  decision id, else the latest unmatched attempt of that debtor, case and agent before the
  start); a call without an attempt is recorded as one, so it counts (CALL-DAILY-CAP), and
  emitted as ``contact.attempted.v1`` so qa-svc's frequency window counts it (QA-REALTIME);
- answered / ended mark the attempt answered or unanswered (the unanswered-attempt cap);
- at the start, the decision function is run with the state at that instant (attempts made
  before the start, the case and agent as now known); a denial flags the call
  (``flagged``, ``flag_rules``) and emits ``contact.call_flagged.v1``;
- ended emits ``contact.call_completed.v1`` (with the recording) and, for a ``complaint``
  disposition, ``contact.complaint_reported.v1`` (CONTACT-CONDUCT).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import exists, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from collect_common.db import UnitOfWork
from collect_common.events.contact import CallFlagged, ComplaintReported
from collect_common.events.types import CallCompleted, ContactAttempted
from collect_common.policy import PolicyBook
from contact_svc.adapters.tables import (
    calls,
    contact_agents,
    contact_attempts,
    contact_cases,
    debtors,
    dialer_deliveries,
)
from contact_svc.domain.decision import AgentView, CaseView, decide
from contact_svc.domain.policy import ContactPolicy
from contact_svc.service_layer.decisions import UnknownCase, UnknownDebtor, counts_at

CallEventKind = Literal["started", "answered", "ended"]

# Dispositions of an ended call that nobody answered (the unanswered-attempt cap counts them).
UNANSWERED_DISPOSITIONS = frozenset({"no_answer", "busy", "failed", "rejected", "voicemail"})
COMPLAINT_DISPOSITION = "complaint"
# How far before a call's start its pre-dial decision may lie to be matched to it.
ATTEMPT_MATCH_WINDOW = timedelta(hours=1)


@dataclass(frozen=True)
class CallDelivery:
    delivery_id: str
    event: CallEventKind
    call_id: str
    case_id: str
    debtor_id: str
    agent_id: str
    at: datetime
    contact_id: str | None = None
    duration_seconds: int | None = None
    disposition: str | None = None
    recording_uri: str | None = None
    speech_rate_wpm: float | None = None
    volume_db: float | None = None


async def stored_outcome(session: AsyncSession, delivery: CallDelivery) -> dict[str, Any] | None:
    """The answer an earlier delivery of the same delivery id or call event got, if any."""
    d = dialer_deliveries.c
    found = await session.scalar(select(d.outcome).where(d.delivery_id == delivery.delivery_id))
    if found is None:
        found = await session.scalar(
            select(d.outcome).where(d.call_id == delivery.call_id, d.event == delivery.event)
        )
    return None if found is None else dict(json.loads(found))


async def record_call_event(
    uow: UnitOfWork,
    policies: PolicyBook[ContactPolicy],
    delivery: CallDelivery,
    *,
    now: datetime,
) -> tuple[dict[str, Any], bool]:
    """Apply one delivery; the caller commits. Returns the outcome and whether it was new."""
    session = uow.session
    timezone = await session.scalar(
        select(debtors.c.timezone)
        .where(debtors.c.debtor_id == delivery.debtor_id)
        .with_for_update()
    )
    if timezone is None:
        raise UnknownDebtor(delivery.debtor_id)
    previous = await stored_outcome(session, delivery)
    if previous is not None:
        return previous, False
    case_row = (
        (
            await session.execute(
                select(contact_cases).where(
                    contact_cases.c.case_id == delivery.case_id,
                    contact_cases.c.debtor_id == delivery.debtor_id,
                )
            )
        )
        .mappings()
        .one_or_none()
    )
    if case_row is None:
        raise UnknownCase(delivery.case_id)

    c = calls.c
    existing = (
        (await session.execute(select(calls).where(c.call_id == delivery.call_id)))
        .mappings()
        .one_or_none()
    )
    if existing is not None:
        call: dict[str, Any] = dict(existing)
    else:
        call = await _open_call(session, policies, delivery, case_row, timezone, now, uow)

    values: dict[str, Any] = {"updated_at": now}
    answered: bool | None = None
    if delivery.event == "started":
        values["started_at"] = call["started_at"] or delivery.at
    elif delivery.event == "answered":
        values["answered_at"] = delivery.at
        answered = True
    else:
        values.update(
            ended_at=delivery.at,
            duration_seconds=delivery.duration_seconds,
            disposition=delivery.disposition,
            recording_uri=delivery.recording_uri,
            speech_rate_wpm=delivery.speech_rate_wpm,
            volume_db=delivery.volume_db,
        )
        answered = (
            call["answered_at"] is not None or delivery.disposition not in UNANSWERED_DISPOSITIONS
        )
    await session.execute(update(calls).where(c.call_id == delivery.call_id).values(**values))
    if answered is not None and call["contact_id"] is not None:
        # rule: CALL-DAILY-CAP (the unanswered-attempt cap counts answered IS FALSE)
        await session.execute(
            update(contact_attempts)
            .where(contact_attempts.c.id == call["contact_id"])
            .values(answered=answered)
        )

    if delivery.event == "ended":
        started_at = call["started_at"] or delivery.at - timedelta(
            seconds=delivery.duration_seconds or 0
        )
        uow.emit(
            CallCompleted(
                debtor_id=delivery.debtor_id,
                case_id=delivery.case_id,
                contact_id=call["contact_id"] or delivery.call_id,
                agent_id=delivery.agent_id,
                started_at=started_at,
                duration_seconds=delivery.duration_seconds or 0,
                disposition=delivery.disposition or "unknown",
                recording_uri=delivery.recording_uri,
                # rule: QA-REALTIME (qa-svc's speech-rate and volume checks read them)
                speech_rate_wpm=delivery.speech_rate_wpm,
                volume_db=delivery.volume_db,
            )
        )
        if delivery.disposition == COMPLAINT_DISPOSITION:
            # rule: CONTACT-CONDUCT (complaint-svc opens a ticket)
            uow.emit(
                ComplaintReported(
                    debtor_id=delivery.debtor_id,
                    case_id=delivery.case_id,
                    call_id=delivery.call_id,
                    agent_id=delivery.agent_id,
                    recording_uri=delivery.recording_uri,
                    reported_at=delivery.at,
                )
            )

    outcome: dict[str, Any] = {
        "delivery_id": delivery.delivery_id,
        "call_id": delivery.call_id,
        "event": delivery.event,
        "contact_id": call["contact_id"],
        "flagged": bool(call["flagged"]),
        "flag_rules": call["flag_rules"].split(",") if call["flag_rules"] else [],
    }
    await session.execute(
        insert(dialer_deliveries).values(
            delivery_id=delivery.delivery_id,
            call_id=delivery.call_id,
            event=delivery.event,
            outcome=json.dumps(outcome),
            received_at=now,
        )
    )
    return outcome, True


async def _open_call(
    session: AsyncSession,
    policies: PolicyBook[ContactPolicy],
    delivery: CallDelivery,
    case_row: Any,
    timezone: str,
    now: datetime,
    uow: UnitOfWork,
) -> dict[str, Any]:
    """The first event of a call: match its attempt, judge its start, insert the row."""
    started_at = delivery.at if delivery.event == "started" else None
    judged_at = started_at or delivery.at
    if delivery.event == "ended" and delivery.duration_seconds is not None:
        judged_at = delivery.at - timedelta(seconds=delivery.duration_seconds)
    contact_id = await _match_attempt(session, delivery, judged_at)
    if contact_id is None:
        # A call without a pre-dial decision is still a contact: it counts from its start.
        contact_id = str(uuid.uuid4())
        await session.execute(
            insert(contact_attempts).values(
                id=contact_id,
                decision_id=None,
                debtor_id=delivery.debtor_id,
                case_id=delivery.case_id,
                channel="call",
                agent_id=delivery.agent_id,
                answered=None,
                attempted_at=judged_at,
            )
        )
        # rule: QA-REALTIME (qa-svc's call-frequency window counts every attempt)
        uow.emit(
            ContactAttempted(
                debtor_id=delivery.debtor_id,
                case_id=delivery.case_id,
                contact_id=contact_id,
                channel="call",
                agent_id=delivery.agent_id,
                attempted_at=judged_at,
            )
        )

    # The decision function, with the state at the call's start.
    suspended = await session.scalar(
        select(contact_agents.c.suspended).where(contact_agents.c.agent_id == delivery.agent_id)
    )
    case = CaseView(
        case_id=case_row["case_id"],
        debtor_id=delivery.debtor_id,
        status=case_row["status"],
        channels=tuple(case_row["channels"].split(",")) if case_row["channels"] else None,
        timezone=timezone,
    )
    counts = await counts_at(
        session,
        delivery.debtor_id,
        timezone,
        judged_at,
        before_now=True,
        exclude_attempt=contact_id,
    )
    policy = policies.for_contract(case_row["bank_id"], judged_at.date())
    decision = decide(
        case, AgentView(delivery.agent_id, bool(suspended)), "call", counts, judged_at, policy
    )
    rules = list(dict.fromkeys(decision.rules))
    row: dict[str, Any] = {
        "call_id": delivery.call_id,
        "case_id": delivery.case_id,
        "debtor_id": delivery.debtor_id,
        "agent_id": delivery.agent_id,
        "contact_id": contact_id,
        "started_at": started_at,
        "answered_at": None,
        "ended_at": None,
        "flagged": not decision.allowed,
        "flag_rules": ",".join(rules) or None,
        "updated_at": now,
    }
    await session.execute(insert(calls).values(**row))
    if not decision.allowed:
        uow.emit(
            CallFlagged(
                debtor_id=delivery.debtor_id,
                case_id=delivery.case_id,
                call_id=delivery.call_id,
                agent_id=delivery.agent_id,
                rules=rules,
                started_at=judged_at,
                flagged_at=now,
            )
        )
    return row


async def _match_attempt(
    session: AsyncSession, delivery: CallDelivery, started_at: datetime
) -> str | None:
    """The contact attempt (allowed pre-dial decision) this call carries out, if any."""
    a = contact_attempts.c
    # An anti-join probing ix_calls_contact_id: NOT IN (subquery) hashed every call's
    # contact_id on each delivery, so a long webhook stream slowed as calls accumulated.
    taken = exists().where(calls.c.contact_id == a.id)
    if delivery.contact_id is not None:
        return await session.scalar(
            select(a.id).where(
                a.id == delivery.contact_id,
                a.debtor_id == delivery.debtor_id,
                a.channel == "call",
                ~taken,
            )
        )
    return await session.scalar(
        select(a.id)
        .where(
            a.debtor_id == delivery.debtor_id,
            a.case_id == delivery.case_id,
            a.channel == "call",
            (a.agent_id == delivery.agent_id) | a.agent_id.is_(None),
            a.attempted_at <= started_at,
            a.attempted_at > started_at - ATTEMPT_MATCH_WINDOW,
            ~taken,
        )
        .order_by(a.attempted_at.desc(), a.id)
        .limit(1)
    )
