"""Durable timers: promise-to-pay dates, complaint SLA chains, daily recomputation.

A timer is a row in the service's ``timers`` table with a ``due_at``. Callers
schedule, cancel, pause and resume timers inside their own transaction (the
functions here take the open ``AsyncSession``; the caller's unit of work
commits), so a timer appears or disappears together with the state change that
asked for it. ``timer_key`` is chosen by the caller (``"promise:<id>:due"``,
``"complaint:<id>:COMP-SLA-2"``) and is unique, which makes scheduling and
cancelling idempotent: a redelivered event that schedules the same key again
changes nothing.

:class:`TimerScheduler` polls for timers that are due and runs the handler of
their ``kind``:

- **Downtime.** The query has no lower bound (``due_at <= now``), so a timer that
  fell due while every replica was down fires on the first poll after restart.
- **Replicas.** On PostgreSQL due rows are taken with ``FOR UPDATE SKIP LOCKED``:
  each replica locks its own batch and skips rows another replica holds, so a
  timer fires once and nobody waits. The row lock lasts until the batch
  commits, and the ``fired`` state commits in that same transaction. On SQLite
  (``make run``, one process) the batch starts with a write, which takes the
  database's write lock first; run one scheduler there.
- **Atomicity.** One transaction per batch: each handler runs in a savepoint
  with the ``UnitOfWork`` of the batch; its writes, the events it emits and the
  timer's ``fired`` state commit together. A handler that raises rolls back
  only its own savepoint (its writes and its events); the timer is retried
  after ``retry_delay`` and marked ``failed`` after ``max_attempts``.
- **Chains and recurrence.** A handler may ``schedule`` further timers through
  ``uow.session`` (COMP-SLA-1 schedules COMP-SLA-2). If it re-schedules its own
  key to a later instant (a daily job), the timer stays ``scheduled`` at the new
  ``due_at`` instead of becoming ``fired``.

Whose clock. The shared design says to compare with the database clock
(``now()``). The scheduler uses the injected :class:`~collect_common.clock.Clock`
instead, for both the comparison and every instant it writes:

- tests move a :class:`~collect_common.clock.FrozenClock` and fire timers that
  are days away without waiting, and the rest of the platform (SLA
  computations, events' ``time``) already reads that same clock, so a timer and
  the rule that scheduled it agree on what "now" is;
- in production the clock is :class:`~collect_common.clock.SystemClock`, and
  replicas' clocks are NTP-synchronised (milliseconds apart).

The trade-off: a replica whose clock is ahead fires timers early by that much,
one behind fires them late. Exactly-once does not depend on the clock (the row
locks and the state do), only punctuality does. Deadlines here are hours and
days, so skew of a second is harmless; keep NTP monitored.

Instants are timezone-aware UTC; naive datetimes are refused. On SQLite, where
the column holds no zone, values are stored and read as UTC.

Alembic: :func:`collect_common.migrations_ops.create_timers_table` creates the
same table in a service's migration.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Final, cast

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge
from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
    select,
    update,
)
from sqlalchemy.engine import CursorResult, Row
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import conv

from collect_common.clock import Clock, ensure_utc, wait_event
from collect_common.db import (
    BigId,
    EventContext,
    UnitOfWork,
    UtcDateTime,
    dialect_insert,
    reset_event_context,
    set_event_context,
)

log = structlog.get_logger("collect_common.timers")

TIMERS: Final = "timers"


class TimerState(StrEnum):
    SCHEDULED = "scheduled"  # waiting for due_at (also between retries)
    PAUSED = "paused"  # the clock is stopped; remaining_ms holds what was left
    FIRED = "fired"  # the handler ran and committed; final
    CANCELLED = "cancelled"  # final unless scheduled again
    FAILED = "failed"  # the handler failed max_attempts times; final unless scheduled again


STATE_CHECK: Final = "state IN ('scheduled', 'paused', 'fired', 'cancelled', 'failed')"
MAX_ERROR_CHARS: Final = 4000


def add_timers_table(metadata: MetaData) -> Table:
    """The ``timers`` table in ``metadata`` (added once; returned if already present)."""
    existing = metadata.tables.get(TIMERS)
    if existing is not None:
        return existing
    return Table(
        TIMERS,
        metadata,
        Column("id", BigId, primary_key=True, autoincrement=True),
        Column("timer_key", String(200), nullable=False),
        Column("kind", String(100), nullable=False),
        Column("subject", String(200), nullable=False),
        Column("due_at", UtcDateTime, nullable=False),
        Column("state", String(20), nullable=False),
        # What was left of the delay when paused, in whole milliseconds (portable and exact;
        # SQLite has no interval type). NULL unless paused.
        Column("remaining_ms", BigInteger, nullable=True),
        Column("payload", Text, nullable=False),  # a JSON object
        Column("attempts", Integer, nullable=False, server_default="0"),
        Column("last_error", Text, nullable=True),
        Column("created_at", UtcDateTime, nullable=False),
        Column("fired_at", UtcDateTime, nullable=True),
        # Names spelled out (conv: taken as they are), so the table is the same whatever
        # naming convention the service's metadata has, and matches the migration.
        PrimaryKeyConstraint("id", name=conv("pk_timers")),
        UniqueConstraint("timer_key", name=conv("uq_timers_timer_key")),
        CheckConstraint(STATE_CHECK, name=conv("ck_timers_state")),
        Index("ix_timers_state_due_at", "state", "due_at"),
    )


@dataclass(frozen=True)
class Timer:
    """A snapshot of one timer row. ``payload`` is the decoded JSON object."""

    id: int
    key: str
    kind: str
    subject: str
    due_at: datetime
    state: TimerState
    payload: dict[str, Any]
    attempts: int
    last_error: str | None
    created_at: datetime
    fired_at: datetime | None
    remaining: timedelta | None  # only while paused


TimerHandler = Callable[[Timer, UnitOfWork], Awaitable[None]]


# --- operations inside the caller's transaction ---------------------------------------------


# The functions below build their SQL from this definition: every service's ``timers``
# table is made by add_timers_table (or the matching migration), so name and columns agree.
_T: Final = add_timers_table(MetaData())


@dataclass(frozen=True)
class NewTimer:
    """A timer for :func:`schedule_new`: its key must not exist yet."""

    key: str
    kind: str
    subject: str
    due_at: datetime
    payload: Mapping[str, Any] | None = None


async def schedule_new(session: AsyncSession, new: Iterable[NewTimer], now: datetime) -> int:
    """Insert many brand-new timers in one batched statement (e.g. one per imported case).

    Far cheaper than :func:`schedule` per timer on large imports; an existing key is
    an ``IntegrityError`` (use :func:`schedule` to re-schedule).
    """
    created = ensure_utc(now)
    rows = [
        {
            "timer_key": t.key,
            "kind": t.kind,
            "subject": t.subject,
            "due_at": ensure_utc(t.due_at),
            "state": TimerState.SCHEDULED.value,
            "remaining_ms": None,
            "payload": _encode_payload(t.payload),
            "attempts": 0,
            "last_error": None,
            "created_at": created,
            "fired_at": None,
        }
        for t in new
    ]
    if rows:
        await session.execute(_T.insert(), rows)
    return len(rows)


async def schedule(
    session: AsyncSession,
    *,
    key: str,
    kind: str,
    subject: str,
    due_at: datetime,
    payload: Mapping[str, Any] | None = None,
    now: datetime | None = None,
) -> bool:
    """Schedule the timer ``key`` for ``due_at``; idempotent by key.

    A new key inserts a ``scheduled`` timer. An existing key that has not fired
    (scheduled, paused, cancelled or failed) gets the new ``due_at`` and
    ``payload`` and is ``scheduled`` again, with its attempts and error reset;
    its ``kind`` and ``subject`` stay as first scheduled. A key that already fired
    is left alone: returns False then, True otherwise.

    ``now`` (optional) is recorded as ``created_at``; pass the service clock's
    ``now()``. Without it the system time is recorded (informational only: nothing
    reads ``created_at`` to decide anything).
    """
    table = _T
    due = ensure_utc(due_at)
    created = ensure_utc(now) if now is not None else datetime.now(UTC)
    body = _encode_payload(payload)
    insert = dialect_insert(session, table).values(
        timer_key=key,
        kind=kind,
        subject=subject,
        due_at=due,
        state=TimerState.SCHEDULED.value,
        remaining_ms=None,
        payload=body,
        attempts=0,
        last_error=None,
        created_at=created,
        fired_at=None,
    )
    upsert = insert.on_conflict_do_update(
        index_elements=[table.c.timer_key],
        set_={
            "due_at": insert.excluded.due_at,
            "payload": insert.excluded.payload,
            "state": TimerState.SCHEDULED.value,
            "remaining_ms": None,
            "attempts": 0,
            "last_error": None,
        },
        where=table.c.state != TimerState.FIRED.value,
    )
    result = await session.execute(upsert)
    return _rowcount(result) > 0


async def cancel(session: AsyncSession, key: str) -> bool:
    """Cancel the timer ``key`` unless it fired or is already cancelled; True if it changed."""
    table = _T
    result = await session.execute(
        update(table)
        .where(
            table.c.timer_key == key,
            table.c.state.in_(
                [TimerState.SCHEDULED.value, TimerState.PAUSED.value, TimerState.FAILED.value]
            ),
        )
        .values(state=TimerState.CANCELLED.value, remaining_ms=None)
    )
    return _rowcount(result) > 0


async def pause(session: AsyncSession, key: str, now: datetime) -> bool:
    """Stop the clock of a scheduled timer: remember ``due_at - now`` (at least zero).

    Returns False (and changes nothing) unless the timer is ``scheduled``.
    """
    table = _T
    at = ensure_utc(now)
    row = (
        await session.execute(
            select(table.c.id, table.c.due_at)
            .where(table.c.timer_key == key, table.c.state == TimerState.SCHEDULED.value)
            .with_for_update()
        )
    ).one_or_none()
    if row is None:
        return False
    remaining = max(_as_utc(row.due_at) - at, timedelta(0))
    result = await session.execute(
        update(table)
        .where(table.c.id == row.id, table.c.state == TimerState.SCHEDULED.value)
        .values(state=TimerState.PAUSED.value, remaining_ms=_to_ms(remaining))
    )
    return _rowcount(result) > 0


async def resume(session: AsyncSession, key: str, now: datetime) -> bool:
    """Restart a paused timer: due at ``now`` plus what was left when it was paused.

    Returns False (and changes nothing) unless the timer is ``paused``.
    """
    table = _T
    at = ensure_utc(now)
    row = (
        await session.execute(
            select(table.c.id, table.c.remaining_ms)
            .where(table.c.timer_key == key, table.c.state == TimerState.PAUSED.value)
            .with_for_update()
        )
    ).one_or_none()
    if row is None:
        return False
    remaining = timedelta(milliseconds=int(row.remaining_ms or 0))
    result = await session.execute(
        update(table)
        .where(table.c.id == row.id, table.c.state == TimerState.PAUSED.value)
        .values(state=TimerState.SCHEDULED.value, due_at=at + remaining, remaining_ms=None)
    )
    return _rowcount(result) > 0


async def get(session: AsyncSession, key: str) -> Timer | None:
    """The timer ``key`` as it is in this transaction, or None."""
    table = _T
    row = (await session.execute(select(table).where(table.c.timer_key == key))).one_or_none()
    return None if row is None else _to_timer(row)


# --- the scheduler ----------------------------------------------------------------------


class TimerMetrics:
    """The scheduler's Prometheus metrics (names are stable: dashboards query them)."""

    def __init__(self, registry: CollectorRegistry, service: str) -> None:
        self.service = service
        self.fired = Counter(
            "timers_fired_total",
            "Timers whose handler ran and committed",
            ["service", "kind"],
            registry=registry,
        )
        self.retried = Counter(
            "timers_retried_total",
            "Timer handler attempts that failed and will be retried",
            ["service", "kind"],
            registry=registry,
        )
        self.failed = Counter(
            "timers_failed_total",
            "Timers given up after max_attempts failed handler attempts (state 'failed')",
            ["service", "kind"],
            registry=registry,
        )
        self.overdue = Gauge(
            "timers_overdue_seconds",
            "How long the oldest due, not yet fired timer has been waiting (0 when none)",
            ["service"],
            registry=registry,
        ).labels(service=service)


class TimerScheduler:
    """Fires due timers: one transaction per batch, handlers in savepoints.

    ``handlers`` maps a timer ``kind`` to its handler. Only timers of those kinds
    are taken, so replicas running another version (or another entrypoint) leave
    timers they cannot handle to the ones that can; a kind nobody handles stays
    due and shows in ``timers_overdue_seconds``.

    Handlers receive the timer and the batch's open :class:`UnitOfWork`: they
    write through ``uow.session`` and ``uow.emit`` events, and must not commit.
    ``timer.due_at`` is when this attempt was due (a retry moves it); a handler
    that needs the business deadline reads it from the payload or its aggregate.
    """

    def __init__(
        self,
        uow_factory: Callable[[], UnitOfWork],
        table: Table,
        handlers: Mapping[str, TimerHandler],
        clock: Clock,
        *,
        batch_size: int = 100,
        poll_interval: float = 1.0,
        max_attempts: int = 5,
        retry_delay: timedelta = timedelta(seconds=30),
        metrics_registry: CollectorRegistry | None = None,
        service: str = "",
        max_backoff: float = 10.0,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self._uow_factory = uow_factory
        self._table = table
        self._handlers = dict(handlers)
        self._clock = clock
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._max_attempts = max_attempts
        self._retry_delay = retry_delay
        self._max_backoff = max_backoff
        self._service = service
        self._metrics = (
            TimerMetrics(metrics_registry, service) if metrics_registry is not None else None
        )
        self._stopping = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self.last_error: str | None = None

    # -- lifecycle ------------------------------------------------------------------------
    def request_stop(self) -> None:
        """Let ``run`` finish the batch in hand and return."""
        self._stopping.set()

    async def close(self) -> None:
        """Stop ``run`` and wait until the batch in hand has committed or rolled back."""
        self.request_stop()
        await self._idle.wait()

    async def run(self) -> None:
        """Fire due timers until stopped; survive database outages with backoff."""
        self._idle.clear()
        backoff = min(0.2, self._max_backoff)
        try:
            while not self._stopping.is_set():
                try:
                    taken, _fired = await self._fire_batch()
                except Exception as exc:
                    self.last_error = f"{type(exc).__name__}: {exc}"
                    log.warning(
                        "timer scheduler cannot fire timers; will retry",
                        error=self.last_error,
                        retry_in=backoff,
                    )
                    await self._pause(backoff)
                    backoff = min(backoff * 2, self._max_backoff)
                    continue
                if self.last_error is not None:
                    log.info("timer scheduler recovered", previous_error=self.last_error)
                    self.last_error = None
                backoff = min(0.2, self._max_backoff)
                if taken < self._batch_size:  # a full batch: more may be due, go on at once
                    await self._pause(self._poll_interval)
        finally:
            self._idle.set()

    async def _pause(self, seconds: float) -> None:
        await wait_event(self._stopping, seconds)

    # -- work -----------------------------------------------------------------------------
    async def fire_due(self) -> int:
        """Fire one batch of due timers in one transaction; return how many fired.

        Timers whose handler failed are not counted (they are retried later or
        marked ``failed``).
        """
        _taken, fired = await self._fire_batch()
        return fired

    async def _fire_batch(self) -> tuple[int, int]:
        t = self._table
        now = ensure_utc(self._clock.now())
        if not self._handlers:
            return 0, 0
        fired = 0
        async with self._uow_factory() as uow:
            session = uow.session
            dialect = session.get_bind().dialect.name
            if dialect == "sqlite":
                # Open the transaction with a write: pysqlite issues BEGIN only before DML,
                # and a SAVEPOINT outside a transaction would begin (and its RELEASE commit)
                # one of its own. The write also takes the database's write lock up front.
                await session.execute(update(t).where(t.c.id == -1).values(attempts=t.c.attempts))
            rows = (
                await session.execute(
                    select(t)
                    .where(
                        t.c.state == TimerState.SCHEDULED.value,
                        t.c.due_at <= now,
                        t.c.kind.in_(sorted(self._handlers)),
                    )
                    .order_by(t.c.due_at, t.c.id)
                    .limit(self._batch_size)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            for row in rows:
                timer = _to_timer(row)
                if await self._fire_one(uow, timer, now):
                    fired += 1
            overdue = await self._overdue(session, now) if self._metrics is not None else None
            await uow.commit()
        if self._metrics is not None and overdue is not None:
            self._metrics.overdue.set(overdue)
        return len(rows), fired

    async def _fire_one(self, uow: UnitOfWork, timer: Timer, now: datetime) -> bool:
        t = self._table
        session = uow.session
        handler = self._handlers[timer.kind]
        token = set_event_context(EventContext(correlation_id=str(uuid.uuid4())))
        try:
            async with session.begin_nested():
                try:
                    await handler(timer, uow)
                except BaseException:
                    # Drain what the handler emitted into this savepoint, so that
                    # rolling the savepoint back discards its events with its writes.
                    with contextlib.suppress(Exception):
                        await uow.flush_events()
                    raise
                await uow.flush_events()
        except Exception as exc:
            await self._failed(session, timer, now, exc)
            return False
        finally:
            reset_event_context(token)
        # Fired, unless the handler re-scheduled its own key (a recurring timer) or
        # cancelled it: then due_at or state changed and the row is left as it is now.
        await session.execute(
            update(t)
            .where(
                t.c.id == timer.id,
                t.c.state == TimerState.SCHEDULED.value,
                t.c.due_at == timer.due_at,
            )
            .values(state=TimerState.FIRED.value, fired_at=now)
        )
        if self._metrics is not None:
            self._metrics.fired.labels(service=self._service, kind=timer.kind).inc()
        return True

    async def _failed(
        self, session: AsyncSession, timer: Timer, now: datetime, exc: Exception
    ) -> None:
        t = self._table
        attempts = timer.attempts + 1
        error = f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS]
        values: dict[str, Any] = {"attempts": attempts, "last_error": error}
        if attempts >= self._max_attempts:
            values["state"] = TimerState.FAILED.value
            log.error(
                "timer handler failed; giving up",
                timer_key=timer.key,
                kind=timer.kind,
                subject=timer.subject,
                attempts=attempts,
                error=error,
                exc_info=exc,
            )
            if self._metrics is not None:
                self._metrics.failed.labels(service=self._service, kind=timer.kind).inc()
        else:
            values["due_at"] = now + self._retry_delay
            log.warning(
                "timer handler failed; will retry",
                timer_key=timer.key,
                kind=timer.kind,
                subject=timer.subject,
                attempts=attempts,
                retry_at=values["due_at"].isoformat(),
                error=error,
            )
            if self._metrics is not None:
                self._metrics.retried.labels(service=self._service, kind=timer.kind).inc()
        await session.execute(update(t).where(t.c.id == timer.id).values(**values))

    async def _overdue(self, session: AsyncSession, now: datetime) -> float:
        """Seconds the oldest due timer still waiting has been due (any kind; 0 if none)."""
        t = self._table
        oldest = await session.scalar(
            select(func.min(t.c.due_at)).where(
                t.c.state == TimerState.SCHEDULED.value, t.c.due_at <= now
            )
        )
        if oldest is None:
            return 0.0
        return max((now - _as_utc(oldest)).total_seconds(), 0.0)


# --- helpers ----------------------------------------------------------------------------


def _encode_payload(payload: Mapping[str, Any] | None) -> str:
    if payload is None:
        return "{}"
    if not isinstance(payload, Mapping):
        raise TypeError("a timer payload is a JSON object (a mapping)")
    return json.dumps(dict(payload), sort_keys=True, separators=(",", ":"))


def _as_utc(value: datetime) -> datetime:
    """A stored instant as aware UTC (SQLite returns the stored UTC value without zone)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _to_ms(delta: timedelta) -> int:
    """Whole milliseconds, rounded up, so a resumed timer never fires early."""
    return -(-delta // timedelta(milliseconds=1))


def _rowcount(result: Any) -> int:
    return int(cast(CursorResult[Any], result).rowcount)


def _to_timer(row: Row[Any]) -> Timer:
    remaining_ms = row.remaining_ms
    return Timer(
        id=int(row.id),
        key=row.timer_key,
        kind=row.kind,
        subject=row.subject,
        due_at=_as_utc(row.due_at),
        state=TimerState(row.state),
        payload=json.loads(row.payload) if row.payload else {},
        attempts=int(row.attempts or 0),
        last_error=row.last_error,
        created_at=_as_utc(row.created_at),
        fired_at=_as_utc(row.fired_at) if row.fired_at is not None else None,
        remaining=timedelta(milliseconds=int(remaining_ms)) if remaining_ms is not None else None,
    )
