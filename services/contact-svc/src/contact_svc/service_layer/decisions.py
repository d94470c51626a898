"""Deciding a contact before it happens (CALL-QUIET, CALL-DAILY-CAP, SMS-WEEKLY-CAP,
CASE-STRATEGY, CASE-LIFECYCLE, QA-SANCTION, CONTACT-CONDUCT), recording it and telling
others.

Decisions are taken in batches, one transaction a batch (:func:`decide_many`; one
decision is a batch of one, :func:`decide_contact`). The batch first locks the rows of
every debtor it is about, in debtor-id order (``SELECT ... FOR UPDATE``), so decisions
about one debtor are serialised across transactions and replicas: two agents asking at
the same instant for the last allowed call of the day see each other's attempt, and
exactly one is allowed. Within a batch the decisions are taken in order, each one seeing
the attempts the earlier ones recorded. The same statement that locks the debtors reads
their contact holds (CONTACT-CONDUCT) through the index on ``contact_holds.debtor_id``.

An allowed call is recorded as an attempt (it counts towards the daily cap) and emitted as
``contact.attempted.v1``; every denial is recorded (``contact_denials``) and emitted as
``contact.denied.v1``. A batch costs a fixed number of round trips whatever its size: the
dialer's pre-dial checks, many at once, share them (``service_layer.batching``).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from sqlalchemy import Boolean, String, and_, insert, literal, null, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from collect_common.db import EventContext, UnitOfWork, UtcDateTime, in_ids
from collect_common.events.contact import ContactDenied
from collect_common.events.types import ContactAttempted
from collect_common.policy import PolicyBook
from contact_svc.adapters.tables import (
    contact_agents,
    contact_attempts,
    contact_cases,
    contact_denials,
    contact_holds,
    debtors,
)
from contact_svc.domain.decision import (
    AgentView,
    CaseView,
    Counts,
    Decision,
    HoldView,
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


class DecisionMetrics:
    """Contact decisions by channel and outcome, and denials by rule (dashboards query these
    names; a decision denied by two rules counts once in each of their series)."""

    def __init__(self, registry: CollectorRegistry, service: str) -> None:
        self.service = service
        self.decisions = Counter(
            "contact_decisions_total",
            "Contact decisions taken by the contact-policy engine, by channel and outcome",
            ["service", "channel", "outcome"],
            registry=registry,
        )
        self.denials = Counter(
            "contact_decision_denials_total",
            "Denied contact decisions, by channel and the rule that denied",
            ["service", "channel", "rule"],
            registry=registry,
        )

        self.batch_sizes = Histogram(
            "contact_decision_batch_size",
            "Pre-dial decisions taken in one transaction (group commit)",
            ["service"],
            registry=registry,
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
        ).labels(service)

    def record(self, channel: str, decision: Decision) -> None:
        outcome = "allowed" if decision.allowed else "denied"
        self.decisions.labels(self.service, channel, outcome).inc()
        for rule in decision.rules:
            self.denials.labels(self.service, channel, rule).inc()


@dataclass(frozen=True)
class ContactContext:
    """The decisions' dependencies: units of work, the per-contract policy versions and the
    decision metrics (none in tests that build a context by hand)."""

    uow_factory: Callable[[], UnitOfWork]
    policies: PolicyBook[ContactPolicy]
    metrics: DecisionMetrics | None = None


@dataclass(frozen=True, slots=True)
class DecisionAsk:
    """One contact to decide: on a case or a debtor, by an agent or not, now or at ``at``
    (a planned visit: the rules are asked about that instant; it is recorded at ``now``).

    An allowed contact is recorded as an attempt when ``record_attempt`` (default: for calls;
    an SMS counts once it is sent, which ``service_layer.sms`` does)."""

    now: datetime
    channel: ContactChannel
    case_id: str | None = None
    debtor_id: str | None = None
    agent_id: str | None = None
    record_attempt: bool | None = None
    at: datetime | None = None
    cause: EventContext | None = None  # the request that asked, when decided in a batch

    def __post_init__(self) -> None:
        if (self.case_id is None) and (self.debtor_id is None):
            raise ValueError("a decision needs a case_id or a debtor_id")

    @property
    def when(self) -> datetime:
        return self.now if self.at is None else self.at

    @property
    def records_attempt(self) -> bool:
        return self.channel == "call" if self.record_attempt is None else self.record_attempt


@dataclass(frozen=True, slots=True)
class AttemptRow:
    """One recorded contact attempt, as the caps count it."""

    id: str
    channel: str
    answered: bool | None
    attempted_at: datetime


@dataclass
class _Debtor:
    timezone: str
    holds: list[tuple[HoldView, datetime | None]] = field(default_factory=list)
    cases: list[dict[str, object]] = field(default_factory=list)
    attempts: list[AttemptRow] = field(default_factory=list)


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
    at: datetime | None = None,
) -> DecisionOutcome:
    """Decide, record and emit one contact; the caller commits. Raises :class:`UnknownCase`
    or :class:`UnknownDebtor` when the read model does not know the target."""
    ask = DecisionAsk(now, channel, case_id, debtor_id, agent_id, record_attempt, at)
    (outcome,) = await decide_many(uow, policies, [ask])
    if isinstance(outcome, LookupError):
        raise outcome
    return outcome


async def decide_many(
    uow: UnitOfWork,
    policies: PolicyBook[ContactPolicy],
    asks: Sequence[DecisionAsk],
) -> list[DecisionOutcome | LookupError]:
    """Decide, record and emit ``asks`` in order, in the caller's transaction (the caller
    commits). Each answer is an outcome, or the :class:`UnknownCase` /
    :class:`UnknownDebtor` error of that ask alone."""
    session = uow.session
    dialect = session.get_bind().dialect.name
    targets, known, agents = await _read_state(session, dialect, asks)

    answers: list[DecisionOutcome | LookupError] = []
    attempts: list[dict[str, object]] = []
    denials: list[dict[str, object]] = []
    for ask, target in zip(asks, targets, strict=True):
        if isinstance(target, LookupError):
            answers.append(target)
            continue
        debtor = known.get(target)
        if debtor is None or not debtor.cases:  # no row, or a row without cases: unknown
            answers.append(UnknownDebtor(target))
            continue
        agent = None if ask.agent_id is None else AgentView(ask.agent_id, agents[ask.agent_id])
        chosen = _decide_one(ask, target, debtor, agent, policies)
        if chosen is None:
            answers.append(UnknownCase(ask.case_id))
            continue
        case, policy, decision = chosen
        decision_id = str(uuid.uuid4())
        answers.append(DecisionOutcome(decision_id, target, case.case_id, decision))
        if decision.allowed and ask.records_attempt:
            # rule: CALL-DAILY-CAP, SMS-WEEKLY-CAP. The allowed contact is an attempt from now on.
            debtor.attempts.append(AttemptRow(decision_id, ask.channel, None, ask.now))
            attempts.append(
                {
                    "id": decision_id,
                    "decision_id": decision_id,
                    "debtor_id": target,
                    "case_id": case.case_id,
                    "channel": ask.channel,
                    "agent_id": ask.agent_id,
                    "answered": None,
                    "attempted_at": ask.now,
                }
            )
            _emit(
                uow,
                ask,
                ContactAttempted(
                    debtor_id=target,
                    case_id=case.case_id,
                    contact_id=decision_id,
                    channel=ask.channel,
                    agent_id=ask.agent_id,
                    attempted_at=ask.now,
                ),
            )
        elif not decision.allowed:
            denials.append(
                {
                    "decision_id": decision_id,
                    "debtor_id": target,
                    "case_id": case.case_id,
                    "channel": ask.channel,
                    "agent_id": ask.agent_id,
                    "rules": ",".join(decision.rules),
                    "reasons": json.dumps(
                        [{"rule": d.rule, "reason": d.reason} for d in decision.denials],
                        ensure_ascii=False,
                    ),
                    "policy_version": f"{policy.contract}/{policy.version}",
                    "next_allowed_at": decision.next_allowed_at,
                    "denied_at": ask.now,
                }
            )
            _emit(
                uow,
                ask,
                ContactDenied(
                    debtor_id=target,
                    decision_id=decision_id,
                    case_id=case.case_id,
                    channel=ask.channel,
                    agent_id=ask.agent_id,
                    rules=decision.rules,
                    denied_at=ask.now,
                    next_allowed_at=decision.next_allowed_at,
                ),
            )
    if attempts:
        await session.execute(insert(contact_attempts), attempts)
    if denials:
        await session.execute(insert(contact_denials), denials)
    return answers


def _emit(uow: UnitOfWork, ask: DecisionAsk, event: ContactAttempted | ContactDenied) -> None:
    if ask.cause is None:
        uow.emit(event)
    else:
        uow.emit_caused_by(ask.cause, event)


def _decide_one(
    ask: DecisionAsk,
    debtor_id: str,
    debtor: _Debtor,
    agent: AgentView | None,
    policies: PolicyBook[ContactPolicy],
) -> tuple[CaseView, ContactPolicy, Decision] | None:
    """The decision on the asked case, or on the first of the debtor's cases that allows
    the contact (else the first case's denial); none when the asked case is not the
    debtor's."""
    when = ask.when
    holds = [h for h, until in debtor.holds if until is None or until > when]
    counts = count_attempts(debtor.attempts, debtor.timezone, when)
    chosen: tuple[CaseView, ContactPolicy, Decision] | None = None
    for row in debtor.cases:
        if ask.case_id is not None and row["case_id"] != ask.case_id:
            continue
        channels = row["channels"]
        case = CaseView(
            case_id=str(row["case_id"]),
            debtor_id=debtor_id,
            status=str(row["status"]),
            channels=tuple(str(channels).split(",")) if channels else None,
            timezone=debtor.timezone,
        )
        policy = policies.for_contract(str(row["bank_id"]), when.date())
        decision = decide(case, agent, ask.channel, counts, when, policy, holds)
        if chosen is None or (decision.allowed and not chosen[2].allowed):
            chosen = (case, policy, decision)
        if decision.allowed:
            break
    return chosen


# Every local day and ISO week that contains an instant lies within this much of it (a
# week is 7 days; zone offsets span UTC-12 to UTC+14): the attempts read for a batch.
_WINDOW_MARGIN = timedelta(days=8)


async def _read_state(
    session: AsyncSession, dialect: str, asks: Sequence[DecisionAsk]
) -> tuple[list[str | LookupError], dict[str, _Debtor], dict[str, bool]]:
    """Lock the asks' debtors and read what their decisions need, in two statements: the
    debtor of each ask, the debtors' state (:class:`_Debtor`) and whether each asking agent
    is suspended (an agent QA never spoke of is not)."""
    case_ids = sorted({a.case_id for a in asks if a.case_id is not None})
    debtor_ids = sorted({a.debtor_id for a in asks if a.case_id is None and a.debtor_id})
    known = await _lock_debtors(session, dialect, case_ids, debtor_ids)
    agent_ids = sorted({a.agent_id for a in asks if a.agent_id is not None})
    suspended: dict[str, bool] = {}
    of_case: dict[str, str] = {}
    if known or agent_ids:
        whens = [a.when for a in asks]
        since, until = min(whens) - _WINDOW_MARGIN, max(whens) + _WINDOW_MARGIN
        state = _state_statement(dialect, list(known), agent_ids, since, until)
        rows = await session.execute(state)
        for r in rows:
            if r.kind == "case":
                of_case[r.key] = r.debtor_id
                known[r.debtor_id].cases.append(
                    {
                        "case_id": r.key,
                        "debtor_id": r.debtor_id,
                        "bank_id": r.text1,
                        "status": r.text2,
                        "channels": r.text3,
                    }
                )
            elif r.kind == "attempt":
                known[r.debtor_id].attempts.append(AttemptRow(r.key, r.text1, r.flag, r.at))
            else:
                suspended[r.key] = bool(r.flag)
    targets: list[str | LookupError] = []
    for a in asks:
        if a.case_id is None:
            targets.append(str(a.debtor_id))
        else:
            found = of_case.get(a.case_id)
            targets.append(found if found is not None else UnknownCase(a.case_id))
    return targets, known, {i: suspended.get(i, False) for i in agent_ids}


async def _lock_debtors(
    session: AsyncSession, dialect: str, case_ids: list[str], debtor_ids: list[str]
) -> dict[str, _Debtor]:
    """Lock the rows of the debtors asked about (by id, or as the debtor of an asked case) in
    id order (every batch takes them in the same order: no deadlock between batches) and
    read their unlifted holds in the same statement."""
    if not case_ids and not debtor_ids:
        return {}
    d, h, c = debtors.c, contact_holds.c, contact_cases.c
    asked: Any = select(c.debtor_id).where(
        in_ids(dialect, c.case_id, case_ids, element_type=String, name="case_ids")
    )
    if debtor_ids:
        asked = asked.union_all(
            select(d.debtor_id).where(
                in_ids(dialect, d.debtor_id, debtor_ids, element_type=String, name="debtor_ids")
            )
        )
    rows = await session.execute(
        select(d.debtor_id, d.timezone, h.hold_id, h.kind, h.rule, h.until)
        .select_from(
            debtors.outerjoin(
                contact_holds, and_(h.debtor_id == d.debtor_id, h.lifted_at.is_(None))
            )
        )
        .where(d.debtor_id.in_(asked))
        .order_by(d.debtor_id, h.hold_id)
        .with_for_update(of=debtors)
    )
    known: dict[str, _Debtor] = {}
    for r in rows:
        debtor = known.setdefault(r.debtor_id, _Debtor(r.timezone))
        if r.hold_id is not None:
            debtor.holds.append((HoldView(r.hold_id, r.kind, r.rule, r.until), r.until))
    return known


def _state_statement(
    dialect: str, debtor_ids: list[str], agent_ids: list[str], since: datetime, until: datetime
) -> Any:
    """One statement, read after the lock (so it sees what the batches before committed):
    the locked debtors' cases (``case``), their attempts in ``[since, until)``
    (``attempt``) and the asking agents (``agent``), as rows of one shape."""
    c, a, g = contact_cases.c, contact_attempts.c, contact_agents.c
    no_text = null().cast(String)
    no_flag = null().cast(Boolean)
    no_at = null().cast(UtcDateTime)
    parts = [
        select(
            literal("case").label("kind"),
            c.case_id.label("key"),
            c.debtor_id.label("debtor_id"),
            c.bank_id.label("text1"),
            c.status.label("text2"),
            c.channels.label("text3"),
            no_flag.label("flag"),
            no_at.label("at"),
        ).where(in_ids(dialect, c.debtor_id, debtor_ids, element_type=String, name="c_debtors")),
        select(
            literal("attempt"),
            a.id,
            a.debtor_id,
            a.channel,
            no_text,
            no_text,
            a.answered,
            a.attempted_at,
        ).where(
            in_ids(dialect, a.debtor_id, debtor_ids, element_type=String, name="a_debtors"),
            a.attempted_at >= since,
            a.attempted_at < until,
        ),
        select(
            literal("agent"), g.agent_id, no_text, no_text, no_text, no_text, g.suspended, no_at
        ).where(in_ids(dialect, g.agent_id, agent_ids, element_type=String, name="agent_ids")),
    ]
    # Cases in (debtor, case) order: a debtor-level ask takes the first case that allows it.
    return union_all(*parts).order_by("kind", "debtor_id", "key")


async def load_attempts(
    session: AsyncSession, dialect: str, debtor_ids: list[str], since: datetime, until: datetime
) -> list[tuple[str, AttemptRow]]:
    """The debtors' recorded attempts in [since, until), as (debtor id, attempt)."""
    a = contact_attempts.c
    rows = await session.execute(
        select(a.debtor_id, a.id, a.channel, a.answered, a.attempted_at).where(
            in_ids(dialect, a.debtor_id, debtor_ids, element_type=String, name="debtor_ids"),
            a.attempted_at >= since,
            a.attempted_at < until,
        )
    )
    return [(r.debtor_id, AttemptRow(r.id, r.channel, r.answered, r.attempted_at)) for r in rows]


def count_attempts(
    attempts: Sequence[AttemptRow],
    timezone: str,
    now: datetime,
    *,
    before_now: bool = False,
    exclude_attempt: str | None = None,
) -> Counts:
    """Calls in the debtor's local day, unanswered ones among them (the dialer's webhooks
    mark attempts answered or not), SMS in the local ISO week.

    ``before_now`` counts only what happened before ``now`` and ``exclude_attempt`` leaves
    one attempt out: the state at a past instant, as a call's own start saw it."""
    day_start, day_end = local_day_bounds(now, timezone)
    week_start, week_end = local_week_bounds(now, timezone)
    if before_now:
        day_end, week_end = now, now
    calls = unanswered = sms = 0
    for a in attempts:
        if a.id == exclude_attempt:
            continue
        if a.channel == "call" and day_start <= a.attempted_at < day_end:
            calls += 1
            unanswered += a.answered is False
        elif a.channel == "sms" and week_start <= a.attempted_at < week_end:
            sms += 1
    return Counts(calls_today=calls, unanswered_today=unanswered, sms_this_week=sms)


async def counts_at(
    session: AsyncSession,
    debtor_id: str,
    timezone: str,
    now: datetime,
    *,
    before_now: bool = False,
    exclude_attempt: str | None = None,
) -> Counts:
    """:func:`count_attempts` over the debtor's attempts read from the database."""
    week_start, week_end = local_week_bounds(now, timezone)
    day_start, day_end = local_day_bounds(now, timezone)
    rows = await load_attempts(
        session,
        session.get_bind().dialect.name,
        [debtor_id],
        min(week_start, day_start),
        max(week_end, day_end),
    )
    return count_attempts(
        [r for _, r in rows],
        timezone,
        now,
        before_now=before_now,
        exclude_attempt=exclude_attempt,
    )
