"""Deciding a contact before it happens (CALL-QUIET, CALL-DAILY-CAP, SMS-WEEKLY-CAP,
CASE-STRATEGY, CASE-LIFECYCLE, QA-SANCTION), recording it and telling others.

One transaction per decision. It first locks the debtor's row (``SELECT ... FOR
UPDATE``), so decisions about one debtor are serialised: two agents asking at
the same instant for the last allowed call of the day see each other's attempt,
and exactly one is allowed. An allowed call is recorded as an attempt (it counts
towards the daily cap) and emitted as ``contact.attempted.v1``; every denial is
recorded (``contact_denials``) and emitted as ``contact.denied.v1``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, insert, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from collect_common.db import UnitOfWork
from collect_common.events.contact import ContactDenied
from collect_common.events.types import ContactAttempted
from collect_common.policy import PolicyBook
from contact_svc.adapters.tables import (
    contact_agents,
    contact_attempts,
    contact_cases,
    contact_denials,
    debtors,
)
from contact_svc.domain.decision import (
    AgentView,
    CaseView,
    Counts,
    Decision,
    decide,
    local_day_bounds,
    local_week_bounds,
)
from contact_svc.domain.policy import ContactChannel, ContactPolicy


class UnknownCase(LookupError):
    pass


class UnknownDebtor(LookupError):
    pass


@dataclass(frozen=True)
class DecisionOutcome:
    decision_id: str
    debtor_id: str
    case_id: str | None
    decision: Decision


@dataclass(frozen=True)
class ContactContext:
    """The decisions' dependencies: units of work and the per-contract policy versions."""

    uow_factory: Callable[[], UnitOfWork]
    policies: PolicyBook[ContactPolicy]


async def decide_contact(
    uow: UnitOfWork,
    policies: PolicyBook[ContactPolicy],
    *,
    now: datetime,
    channel: ContactChannel,
    case_id: str | None = None,
    debtor_id: str | None = None,
    agent_id: str | None = None,
    record_attempt: bool | None = None,
) -> DecisionOutcome:
    """Decide, record and emit; the caller commits.

    An allowed contact is recorded as an attempt when ``record_attempt`` (default: for
    calls; an SMS counts once it is sent, which ``service_layer.sms`` does).
    """
    session = uow.session
    if case_id is not None:
        found = await session.scalar(
            select(contact_cases.c.debtor_id).where(contact_cases.c.case_id == case_id)
        )
        if found is None:
            raise UnknownCase(case_id)
        debtor_id = found
    if debtor_id is None:
        raise ValueError("a decision needs a case_id or a debtor_id")
    # The per-debtor lock: every decision about this debtor waits here for the previous one.
    timezone = await session.scalar(
        select(debtors.c.timezone).where(debtors.c.debtor_id == debtor_id).with_for_update()
    )
    if timezone is None:
        raise UnknownDebtor(debtor_id)
    query = select(contact_cases).where(contact_cases.c.debtor_id == debtor_id)
    if case_id is not None:
        query = query.where(contact_cases.c.case_id == case_id)
    rows = (await session.execute(query.order_by(contact_cases.c.case_id))).mappings().all()
    agent = None
    if agent_id is not None:
        suspended = await session.scalar(
            select(contact_agents.c.suspended).where(contact_agents.c.agent_id == agent_id)
        )
        agent = AgentView(agent_id, bool(suspended))
    counts = await counts_at(session, debtor_id, timezone, now)

    chosen: tuple[CaseView, ContactPolicy, Decision] | None = None
    for row in rows:
        case = CaseView(
            case_id=row["case_id"],
            debtor_id=debtor_id,
            status=row["status"],
            channels=tuple(row["channels"].split(",")) if row["channels"] else None,
            timezone=timezone,
        )
        policy = policies.for_contract(row["bank_id"], now.date())
        decision = decide(case, agent, channel, counts, now, policy)
        if chosen is None or (decision.allowed and not chosen[2].allowed):
            chosen = (case, policy, decision)
        if decision.allowed:
            break
    if chosen is None:  # a debtor row without cases cannot be built from the events
        raise UnknownDebtor(debtor_id)
    case, policy, decision = chosen
    decision_id = str(uuid.uuid4())
    if record_attempt is None:
        record_attempt = channel == "call"
    if decision.allowed and record_attempt:
        # rule: CALL-DAILY-CAP, SMS-WEEKLY-CAP. The allowed contact is an attempt from now on.
        await session.execute(
            insert(contact_attempts).values(
                id=decision_id,
                decision_id=decision_id,
                debtor_id=debtor_id,
                case_id=case.case_id,
                channel=channel,
                agent_id=agent_id,
                answered=None,
                attempted_at=now,
            )
        )
        uow.emit(
            ContactAttempted(
                debtor_id=debtor_id,
                case_id=case.case_id,
                contact_id=decision_id,
                channel=channel,
                agent_id=agent_id,
                attempted_at=now,
            )
        )
    elif not decision.allowed:
        await session.execute(
            insert(contact_denials).values(
                decision_id=decision_id,
                debtor_id=debtor_id,
                case_id=case.case_id,
                channel=channel,
                agent_id=agent_id,
                rules=",".join(decision.rules),
                reasons=json.dumps(
                    [{"rule": d.rule, "reason": d.reason} for d in decision.denials],
                    ensure_ascii=False,
                ),
                policy_version=f"{policy.contract}/{policy.version}",
                next_allowed_at=decision.next_allowed_at,
                denied_at=now,
            )
        )
        uow.emit(
            ContactDenied(
                debtor_id=debtor_id,
                decision_id=decision_id,
                case_id=case.case_id,
                channel=channel,
                agent_id=agent_id,
                rules=decision.rules,
                denied_at=now,
                next_allowed_at=decision.next_allowed_at,
            )
        )
    return DecisionOutcome(decision_id, debtor_id, case.case_id, decision)


async def counts_at(
    session: AsyncSession,
    debtor_id: str,
    timezone: str,
    now: datetime,
    *,
    before_now: bool = False,
    exclude_attempt: str | None = None,
) -> Counts:
    """Calls in the debtor's local day, unanswered ones among them (the dialer's webhooks
    mark attempts answered or not), SMS in the local ISO week.

    ``before_now`` counts only what happened before ``now`` and ``exclude_attempt`` leaves
    one attempt out: the state at a past instant, as a call's own start saw it.
    """
    a = contact_attempts.c
    day_start, day_end = local_day_bounds(now, timezone)
    week_start, week_end = local_week_bounds(now, timezone)
    if before_now:
        day_end, week_end = now, now
    others = a.id != exclude_attempt if exclude_attempt is not None else true()
    calls = (
        await session.execute(
            select(
                func.count(),
                func.count().filter(a.answered.is_(False)),
            ).where(
                a.debtor_id == debtor_id,
                a.channel == "call",
                a.attempted_at >= day_start,
                a.attempted_at < day_end,
                others,
            )
        )
    ).one()
    sms = await session.scalar(
        select(func.count()).where(
            a.debtor_id == debtor_id,
            a.channel == "sms",
            a.attempted_at >= week_start,
            a.attempted_at < week_end,
            others,
        )
    )
    return Counts(calls_today=calls[0], unanswered_today=calls[1], sms_this_week=sms or 0)
