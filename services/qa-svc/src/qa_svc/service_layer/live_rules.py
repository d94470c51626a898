"""Evaluate the live rules (QA-REALTIME, QA-QUIET, SMS-WEEKLY-CAP) on contact events, a
batch at a time, in the caller's unit of work.

The window state lives in the database, so the evaluation is the same after a restart,
on another replica after a rebalance, and for a late event (counted where it belongs,
by event time; it may raise an alert late): ``contact_events`` holds every attempt
(calls make the frequency window), ``sms_sent`` every SMS sent (the weekly cap), and
``alerts`` the breaches already raised.

A batch of contact events costs a fixed number of statements, however many events:

1. one query reads the debtors' calls around the batch's calls and their SMS in the
   weeks of the batch's SMS (the state before the batch);
2. the batch's attempts and SMS are written in one insert each (``ON CONFLICT DO
   NOTHING RETURNING``): those returned are new, an event already there was evaluated
   before;
3. the new events are evaluated in memory, in order, exactly as one at a time: each
   sees the state the events before it left;
4. only when some event breached the frequency or SMS-cap rule, one query reads (and
   locks) the debtor's alerts those breaches may join;
5. new alerts are written in one insert (``ON CONFLICT DO NOTHING`` on the breach key),
   merged ones in one executemany update.

An alert is raised once per breach: a frequency breach that overlaps an alert already
raised for the debtor, or an SMS-cap breach of a week that already has one, only adds
its evidence to that alert; the unique (check, debtor, window start) key makes a replay
a no-op. The results do not depend on how the events are split into batches. Nothing
here commits.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter
from sqlalchemy import (
    DateTime,
    String,
    Table,
    and_,
    bindparam,
    column,
    func,
    literal,
    or_,
    select,
    text,
    true,
    union_all,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import ColumnElement, Select

from collect_common.db import UnitOfWork, UtcDateTime, dialect_insert
from collect_common.events.qa import QaAlertRaised
from qa_svc.adapters.tables import alerts, contact_events, sms_sent
from qa_svc.domain.alerts import AlertStatus
from qa_svc.domain.policy import QaPolicy
from qa_svc.domain.rules import (
    FREQUENCY,
    SMS_WEEKLY,
    Breach,
    Call,
    Sms,
    debtor_zone,
    duration_breach,
    frequency_breach,
    local_week,
    quiet_breach,
    sms_weekly_breach,
    speech_rate_breach,
    volume_breach,
)

# Channels that reach the debtor at a moment of the day (a letter does not).
TIMED_CHANNELS = frozenset({"call", "sms", "visit"})
# Alerts that grow as more events show the same breach; the others are one event each.
WINDOWED = frozenset({FREQUENCY, SMS_WEEKLY})
_CHUNK = 200  # debtors per range query where there are no arrays (SQLite)


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


@dataclass(frozen=True)
class Attempted:
    """A contact attempt (any channel): window state, frequency, quiet hours."""

    contact: Contact


@dataclass(frozen=True)
class Completed:
    """A completed call (``contact.at`` is its start): duration, speech rate, volume."""

    contact: Contact
    seconds: int
    speech_rate_wpm: float | None = None
    volume_db: float | None = None


@dataclass(frozen=True)
class SmsSent:
    """An SMS sent (``contact.at`` is when): the debtor's weekly cap."""

    contact: Contact


Fact = Attempted | Completed | SmsSent


@dataclass
class _Alert:
    id: str
    check: str
    rule_id: str
    debtor_id: str
    case_id: str
    agent_id: str | None
    window_start: datetime
    window_end: datetime
    evidence: list[str]
    detail: str
    new: bool
    changed: bool = False


@dataclass
class _Batch:
    """The batch's view of the state: what the database held, plus what the batch did."""

    calls: dict[str, dict[str, Call]] = field(default_factory=dict)
    sms: dict[str, dict[str, Sms]] = field(default_factory=dict)
    windowed: dict[str, list[_Alert]] = field(default_factory=dict)  # by debtor
    point_keys: set[tuple[str, str, datetime]] = field(default_factory=set)
    raised: list[tuple[int, _Alert, QaAlertRaised]] = field(default_factory=list)


async def evaluate(
    uow: UnitOfWork, live: LiveRules, facts: Sequence[Fact], now: datetime
) -> list[list[QaAlertRaised]]:
    """Record and evaluate ``facts`` in order; per fact, the alerts it raised (new only).

    The caller emits the returned events (each caused by its fact's event).
    """
    session = uow.session
    policy = live.policy
    new_ids, state = await _load_state(session, facts, policy)
    breaches: list[tuple[int, Breach, Contact]] = []  # in event order
    done: set[str] = set()
    for i, fact in enumerate(facts):
        c = fact.contact
        if isinstance(fact, Completed):
            for point in (
                duration_breach(c.event_id, c.at, fact.seconds, policy),
                speech_rate_breach(c.event_id, c.at, fact.speech_rate_wpm, policy),
                volume_breach(c.event_id, c.at, fact.volume_db, policy),
            ):
                if point is not None:
                    breaches.append((i, point, c))
            continue
        if c.event_id not in new_ids or c.event_id in done:
            continue  # seen before: already evaluated
        done.add(c.event_id)
        if isinstance(fact, SmsSent):
            sent = state.sms.setdefault(c.debtor_id, {})
            sent[c.event_id] = Sms(c.event_id, c.at)
            zone = debtor_zone(c.timezone, policy)
            breach = sms_weekly_breach(list(sent.values()), Sms(c.event_id, c.at), zone, policy)
            if breach is not None:
                breaches.append((i, breach, c))
            continue
        if c.channel == "call":
            calls = state.calls.setdefault(c.debtor_id, {})
            new = Call(c.event_id, c.at, c.agent_id)
            calls[c.event_id] = new
            window = policy.call_window
            around = [k for k in calls.values() if c.at - window < k.at < c.at + window]
            breach = frequency_breach(around, new, policy)
            if breach is not None:
                breaches.append((i, breach, c))
        if c.channel in TIMED_CHANNELS:
            breach = quiet_breach(c.event_id, c.at, c.timezone, policy)
            if breach is not None:
                breaches.append((i, breach, c))
    # Whether an event breaches a rule depends on the window state only; which alert a
    # breach makes or joins depends on the alerts, read now for the debtors that need them.
    await _load_alerts(session, breaches, state)
    for i, breach, c in breaches:
        _raise(state, i, breach, c, now)
    return await _write_alerts(uow, live, state, len(facts), now)


def _raise(state: _Batch, index: int, breach: Breach, contact: Contact, now: datetime) -> None:
    """One alert per breach: merge into the debtor's alert of the same breach, else a new one."""
    debtor = contact.debtor_id
    if breach.check in WINDOWED:
        same = sorted(
            (
                a
                for a in state.windowed.get(debtor, ())
                if a.check == breach.check
                and a.window_start < breach.window_end
                and a.window_end > breach.window_start
            ),
            key=lambda a: a.window_start,
        )
        if same:
            alert = same[0]
            alert.evidence += [e for e in breach.evidence if e not in alert.evidence]
            alert.window_end = max(alert.window_end, breach.window_end)
            alert.changed = True
            return
    else:
        key = (breach.check, debtor, breach.window_start)
        if key in state.point_keys:
            return  # the same breach again in this batch: the key allows one
        state.point_keys.add(key)
    alert = _Alert(
        id=str(uuid.uuid4()),
        check=breach.check,
        rule_id=breach.rule_id,
        debtor_id=debtor,
        case_id=contact.case_id,
        agent_id=contact.agent_id,
        window_start=breach.window_start,
        window_end=breach.window_end,
        evidence=list(breach.evidence),
        detail=breach.detail,
        new=True,
    )
    if breach.check in WINDOWED:
        state.windowed.setdefault(debtor, []).append(alert)
    event = QaAlertRaised(
        alert_id=alert.id,
        debtor_id=debtor,
        rule_id=breach.rule_id,
        check=breach.check,  # type: ignore[arg-type]
        case_id=contact.case_id,
        agent_id=contact.agent_id,
        evidence_event_ids=list(breach.evidence),
        window_start=breach.window_start,
        window_end=breach.window_end,
        raised_at=now,
    )
    state.raised.append((index, alert, event))


# -- state in the database ----------------------------------------------------------------


def _state_rows(facts: Sequence[Fact]) -> list[tuple[Table, list[dict[str, Any]]]]:
    """The window-state rows of the batch's attempts and SMS (once per event id)."""
    attempts: dict[str, dict[str, Any]] = {}
    sent: dict[str, dict[str, Any]] = {}
    for fact in facts:
        c = fact.contact
        if isinstance(fact, Attempted):
            attempts.setdefault(
                c.event_id,
                {
                    "event_id": c.event_id,
                    "debtor_id": c.debtor_id,
                    "case_id": c.case_id,
                    "contact_id": c.contact_id,
                    "agent_id": c.agent_id,
                    "channel": c.channel,
                    "at": c.at,
                    "bucket": c.bucket,
                },
            )
        elif isinstance(fact, SmsSent):
            sent.setdefault(
                c.event_id,
                {
                    "event_id": c.event_id,
                    "debtor_id": c.debtor_id,
                    "case_id": c.case_id,
                    "message_id": c.contact_id,
                    "agent_id": c.agent_id,
                    "sent_at": c.at,
                },
            )
    return [
        (table, list(rows.values()))
        for table, rows in ((contact_events, attempts), (sms_sent, sent))
        if rows
    ]


Ranges = dict[str, tuple[datetime, datetime]]
Condition = Callable[[Any, Any, Any], ColumnElement[bool]]


@dataclass(frozen=True)
class _Read:
    """Rows of ``query`` (event_id, debtor_id, at, agent_id) in per-debtor time ranges."""

    name: str
    query: Select[Any]
    ranges: Ranges
    condition: Condition  # (debtor, lo, hi) -> whether a row is in the debtor's range


def _widen(ranges: Ranges, debtor: str, lo: datetime, hi: datetime) -> None:
    old = ranges.get(debtor)
    ranges[debtor] = (lo, hi) if old is None else (min(old[0], lo), max(old[1], hi))


def _window_reads(facts: Sequence[Fact], policy: QaPolicy) -> list[_Read]:
    """What the batch's calls and SMS are evaluated against: the debtors' calls around
    each call (every frequency breach holding a call lies within (at - W, at + W]) and
    their SMS in the weeks of the SMS."""
    window = policy.call_window
    calls: Ranges = {}
    weeks: Ranges = {}
    for fact in facts:
        c = fact.contact
        if isinstance(fact, Attempted) and c.channel == "call":
            _widen(calls, c.debtor_id, c.at - window, c.at + window)
        elif isinstance(fact, SmsSent):
            _widen(weeks, c.debtor_id, *local_week(c.at, debtor_zone(c.timezone, policy)))
    e, s = contact_events.c, sms_sent.c
    reads = [
        _Read(
            "call",
            select(e.event_id, e.debtor_id, e.at, e.agent_id).where(e.channel == "call"),
            calls,
            lambda debtor, lo, hi: and_(e.debtor_id == debtor, e.at > lo, e.at < hi),
        ),
        _Read(
            "sms",
            select(s.event_id, s.debtor_id, s.sent_at.label("at"), s.agent_id),
            weeks,
            lambda debtor, lo, hi: and_(s.debtor_id == debtor, s.sent_at >= lo, s.sent_at < hi),
        ),
    ]
    return [r for r in reads if r.ranges]


async def _load_state(
    session: AsyncSession, facts: Sequence[Fact], policy: QaPolicy
) -> tuple[set[str], _Batch]:
    """Write the batch's window state; return the ids of the events not seen before and
    the calls and SMS they are evaluated against (what the database held before them)."""
    writes = _state_rows(facts)
    reads = _window_reads(facts, policy)
    if session.get_bind().dialect.name == "postgresql":
        new_ids, rows = await _pg_write_and_read(session, writes, reads)
    else:
        rows = {r.name: await _in_ranges(session, r.query, r.ranges, r.condition) for r in reads}
        new_ids = set()
        for table, values in writes:
            result = await session.execute(
                dialect_insert(session, table).on_conflict_do_nothing().returning(table.c.event_id),
                values,
            )
            new_ids.update(result.scalars().all())
    state = _Batch()
    for row in rows.get("call", ()):
        state.calls.setdefault(row.debtor_id, {})[row.event_id] = Call(
            row.event_id, row.at, row.agent_id
        )
    for row in rows.get("sms", ()):
        state.sms.setdefault(row.debtor_id, {})[row.event_id] = Sms(row.event_id, row.at)
    return new_ids, state


async def _load_alerts(
    session: AsyncSession, breaches: Sequence[tuple[int, Breach, Contact]], state: _Batch
) -> None:
    """The frequency and SMS-cap alerts the batch's breaches may join (those overlapping
    a breach's window), locked; no read when the batch breached neither rule."""
    ranges: Ranges = {}
    for _, breach, contact in breaches:
        if breach.check in WINDOWED:
            _widen(ranges, contact.debtor_id, breach.window_start, breach.window_end)
    a = alerts.c
    query = select(
        a.id,
        a.kind,
        a.rule_id,
        a.debtor_id,
        a.case_id,
        a.agent_id,
        a.window_start,
        a.window_end,
        a.evidence,
        a.detail,
    ).where(a.kind.in_(sorted(WINDOWED)))
    for row in await _in_ranges(
        session,
        query,
        ranges,
        lambda debtor, lo, hi: and_(a.debtor_id == debtor, a.window_start < hi, a.window_end > lo),
        lock=alerts,
    ):
        state.windowed.setdefault(row.debtor_id, []).append(
            _Alert(
                id=row.id,
                check=row.kind,
                rule_id=row.rule_id,
                debtor_id=row.debtor_id,
                case_id=row.case_id,
                agent_id=row.agent_id,
                window_start=row.window_start,
                window_end=row.window_end,
                evidence=list(json.loads(row.evidence)),
                detail=row.detail,
                new=False,
            )
        )


def _array_type(kind: Any) -> Any:
    return DateTime(timezone=True) if isinstance(kind, UtcDateTime) else kind


def _ranges_table(ranges: Ranges, name: str) -> Any:
    """The ranges as a table (debtor_id, lo, hi): three array parameters, unnested."""
    debtors = list(ranges)
    stamps = postgresql.ARRAY(DateTime(timezone=True))
    return (
        func.unnest(
            bindparam(f"{name}_debtor", debtors, type_=postgresql.ARRAY(String)),
            bindparam(f"{name}_lo", [ranges[d][0] for d in debtors], type_=stamps),
            bindparam(f"{name}_hi", [ranges[d][1] for d in debtors], type_=stamps),
        )
        .table_valued(
            column("debtor_id", String),
            column("lo", DateTime(timezone=True)),
            column("hi", DateTime(timezone=True)),
        )
        .render_derived(name=name)
    )


def _lateral(query: Select[Any], ranges: Any, condition: Condition, name: str) -> Any:
    """``query`` per range, as LATERAL: one index range scan per debtor (OFFSET 0 keeps the
    planner from flattening it into a hash join over the whole table)."""
    return (
        query.where(condition(ranges.c.debtor_id, ranges.c.lo, ranges.c.hi)).offset(0).lateral(name)
    )


async def _force_custom_plans(session: AsyncSession) -> None:
    """Plan this transaction's range reads for the batch's own ranges: a generic plan cached
    while the tables were young (a scan of the whole table per debtor) gets slower as
    they grow."""
    await session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))


async def _pg_write_and_read(
    session: AsyncSession,
    writes: list[tuple[Table, list[dict[str, Any]]]],
    reads: list[_Read],
) -> tuple[set[str], dict[str, list[Any]]]:
    """Read the ranges (one statement for all of them), then insert the state rows
    (``ON CONFLICT DO NOTHING RETURNING``, one statement a table). Every column travels
    as one array parameter: no statement's text depends on the number of rows."""
    rows_by: dict[str, list[Any]] = {}
    if reads:
        await _force_custom_plans(session)
        parts = []
        for read in reads:
            w = _ranges_table(read.ranges, f"{read.name}_w")
            x = _lateral(read.query, w, read.condition, f"{read.name}_x")
            parts.append(
                select(
                    literal(read.name, String).label("src"),
                    x.c.event_id,
                    x.c.debtor_id,
                    x.c.at,
                    x.c.agent_id,
                )
                .select_from(w)
                .join(x, true())
            )
        statement: Any = parts[0] if len(parts) == 1 else union_all(*parts)
        found: Any = (await session.execute(statement)).all()
        for row in found:
            rows_by.setdefault(row.src, []).append(row)
    new_ids: set[str] = set()
    for table, rows in writes:
        names = list(rows[0])
        arrays = [
            bindparam(
                f"a_{n}",
                [r[n] for r in rows],
                type_=postgresql.ARRAY(_array_type(table.c[n].type)),
            )
            for n in names
        ]
        each = func.unnest(*arrays).table_valued(*(column(n) for n in names)).render_derived("r")
        inserted = await session.execute(
            postgresql.insert(table)
            .from_select(names, select(*(each.c[n] for n in names)))
            .on_conflict_do_nothing()
            .returning(table.c.event_id)
        )
        new_ids.update(inserted.scalars().all())
    return new_ids, rows_by


async def _in_ranges(
    session: AsyncSession,
    query: Select[Any],
    ranges: Ranges,
    condition: Condition,
    lock: Table | None = None,
) -> list[Any]:
    """The rows of ``query`` matching ``condition(debtor, lo, hi)`` for some debtor's range.

    On PostgreSQL one statement whatever the number of debtors: the ranges travel as
    three array parameters unnested into a table.
    """
    if not ranges:
        return []
    if lock is not None:
        query = query.with_for_update(of=lock)
    if session.get_bind().dialect.name == "postgresql":
        w = _ranges_table(ranges, "w")
        x = _lateral(query, w, condition, "x")
        result = await session.execute(select(x).select_from(w).join(x, true()))
        return list(result.all())
    rows: list[Any] = []
    items = list(ranges.items())
    for n in range(0, len(items), _CHUNK):
        conditions = [
            condition(
                bindparam(None, d, type_=String),
                bindparam(None, lo, type_=UtcDateTime),
                bindparam(None, hi, type_=UtcDateTime),
            )
            for d, (lo, hi) in items[n : n + _CHUNK]
        ]
        rows += (await session.execute(query.where(or_(*conditions)))).all()
    return rows


async def _write_alerts(
    uow: UnitOfWork, live: LiveRules, state: _Batch, n: int, now: datetime
) -> list[list[QaAlertRaised]]:
    """Insert the new alerts and update the merged ones; the events of those inserted."""
    session = uow.session
    raised: list[list[QaAlertRaised]] = [[] for _ in range(n)]
    if state.raised:
        rows = [
            {
                "id": alert.id,
                "rule_id": alert.rule_id,
                "kind": alert.check,
                "debtor_id": alert.debtor_id,
                "case_id": alert.case_id,
                "agent_id": alert.agent_id,
                "window_start": alert.window_start,
                "window_end": alert.window_end,
                "evidence": json.dumps(alert.evidence),
                "detail": alert.detail,
                "status": AlertStatus.OPEN.value,
                "raised_at": now,
                "updated_at": now,
            }
            for _, alert, _ in state.raised
        ]
        result = await session.execute(
            dialect_insert(session, alerts)
            .on_conflict_do_nothing(index_elements=["kind", "debtor_id", "window_start"])
            .returning(alerts.c.id),
            rows,
        )
        inserted = set(result.scalars().all())
        for index, alert, event in state.raised:
            if alert.id in inserted:
                raised[index].append(event)
                if live.metrics is not None:
                    live.metrics.raised.labels(alert.rule_id).inc()
    merged = [
        {"b_id": a.id, "b_evidence": json.dumps(a.evidence), "b_end": a.window_end}
        for debtor_alerts in state.windowed.values()
        for a in debtor_alerts
        if a.changed and not a.new
    ]
    if merged:
        await session.execute(
            alerts.update()
            .where(alerts.c.id == bindparam("b_id"))
            .values(
                evidence=bindparam("b_evidence"),
                window_end=bindparam("b_end", type_=UtcDateTime),
                updated_at=now,
            ),
            merged,
        )
    return raised
