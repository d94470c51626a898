"""SQLAlchemy 2 async: engines, the platform's own tables, and the unit of work.

Every service owns one database. Besides its own tables it carries the
platform tables defined here: ``outbox`` (events waiting to be published, written
in the same transaction as the state change) and ``processed_events`` (which
events a consumer has already applied, so a redelivery changes nothing).

The same code runs on PostgreSQL (production, integration and e2e tests, through
asyncpg) and SQLite (``make run``, through aiosqlite).
"""

from __future__ import annotations

import contextvars
import itertools
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Protocol

from pydantic_core import to_json
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    TypeDecorator,
    any_,
    bindparam,
    event,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError, IntegrityError, ProgrammingError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.ext.asyncio import create_async_engine as _create_async_engine
from sqlalchemy.pool import StaticPool

from collect_common.clock import Clock
from collect_common.events.catalogue import Event
from collect_common.events.codec import wrap

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

BigId = BigInteger().with_variant(Integer, "sqlite")  # SQLite autoincrements INTEGER keys only


class UtcDateTime(TypeDecorator[datetime]):
    """An instant: written as UTC, always read back timezone-aware UTC.

    PostgreSQL keeps the offset (``timestamptz``); SQLite keeps none, so without
    this a value would come back naive there. Naive values are refused on the way in.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("naive datetime: every instant must carry its time zone")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    def process_bind_many(self, values: Sequence[datetime | None]) -> list[datetime | None]:
        """``process_bind_param`` of a whole column of a bulk write (``insert_many``); a
        value repeated row after row (the batch's ``now``) is converted once."""
        out: list[datetime | None] = []
        last: datetime | None = None
        converted: datetime | None = None
        for value in values:
            if value is None or value is not last:
                last, converted = value, self.process_bind_param(value, _NO_DIALECT)
            out.append(converted)
        return out


_NO_DIALECT: Any = None  # UtcDateTime's bind processing does not depend on the dialect


def new_metadata() -> MetaData:
    """A MetaData with the naming convention and the platform tables already on it."""
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    add_platform_tables(metadata)
    return metadata


def add_platform_tables(metadata: MetaData) -> None:
    Table(
        "outbox",
        metadata,
        Column("id", BigId, primary_key=True, autoincrement=True),
        Column("event_id", String(64), nullable=False, unique=True),
        Column("topic", String(200), nullable=False),
        Column("key", String(200), nullable=False),
        Column("event_type", String(200), nullable=False),
        Column("payload", LargeBinary, nullable=False),
        Column("created_at", UtcDateTime, nullable=False),
        Column("published_at", UtcDateTime, nullable=True),
        Index(
            "ix_outbox_unpublished",
            "id",
            postgresql_where=text("published_at IS NULL"),
            sqlite_where=text("published_at IS NULL"),
        ),
    )
    Table(
        "processed_events",
        metadata,
        Column("consumer", String(200), primary_key=True),
        Column("event_id", String(64), primary_key=True),
        Column("processed_at", UtcDateTime, nullable=False),
        Column("outcome", String(20), nullable=False, server_default="applied"),
        Column("error", Text, nullable=True),
    )


def create_engine(
    url: str,
    *,
    echo: bool = False,
    pool_size: int = 10,
    timeouts: DatabaseTimeouts | None = None,
) -> AsyncEngine:
    """An async engine for PostgreSQL (asyncpg) or SQLite (aiosqlite). Connects lazily.
    ``timeouts`` bound the waits on PostgreSQL (default: :class:`DatabaseTimeouts`)."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        url = "postgresql+asyncpg://" + url.split("://", 1)[1]
    if url.startswith("sqlite"):
        kwargs: dict[str, Any] = {"connect_args": {"timeout": 30}}
        if ":memory:" in url or url.rstrip("/").endswith("sqlite+aiosqlite:"):
            kwargs["poolclass"] = StaticPool
        engine = _create_async_engine(url, echo=echo, **kwargs)

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    timeouts = timeouts or DatabaseTimeouts()
    return _create_async_engine(
        url,
        echo=echo,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        pool_timeout=timeouts.pool,
        connect_args={"timeout": timeouts.connect, "command_timeout": timeouts.command},
    )


@dataclass(frozen=True)
class DatabaseTimeouts:
    """How long a request may wait on PostgreSQL before it fails (and answers 503).

    ``connect``: establishing a connection (asyncpg ``timeout``; its default is 60 s);
    ``command``: any one statement, client side, so it also bounds a server that accepts
    but never answers (asyncpg ``command_timeout``; none by default); ``pool``: waiting for
    a free pooled connection. A service takes them from its settings
    (``DB_CONNECT_TIMEOUT_SECONDS``, ``DB_COMMAND_TIMEOUT_SECONDS``,
    ``DB_POOL_TIMEOUT_SECONDS``).
    """

    connect: float = 5.0
    command: float = 60.0
    pool: float = 10.0


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


def dialect_insert(session: AsyncSession, table: Table) -> Any:
    """``INSERT`` of the session's dialect, so ``on_conflict_do_nothing`` is at hand."""
    name = session.get_bind().dialect.name
    if name == "postgresql":
        return postgresql.insert(table)
    if name == "sqlite":
        return sqlite.insert(table)
    raise RuntimeError(f"unsupported database dialect {name}")


def in_ids(
    dialect: str,
    column: Any,
    ids: Sequence[Any],
    *,
    element_type: Any = BigInteger,
    name: str = "ids",
) -> Any:
    """``column IN ids``; on PostgreSQL one array parameter (``= ANY``), not one per id, so
    the statement is the same whatever the number of ids (one prepared statement).

    ``element_type`` is the SQL type of the ids (``String`` for text keys); ``name`` names
    the parameter, distinct for each use within one statement."""
    if dialect == "postgresql":
        return column == any_(bindparam(name, list(ids), type_=postgresql.ARRAY(element_type)))
    return column.in_(list(ids))


# --- event context: which request or event caused the events we record -------------


@dataclass(frozen=True)
class EventContext:
    correlation_id: str | None = None
    causation_id: str | None = None


_event_context: contextvars.ContextVar[EventContext] = contextvars.ContextVar(
    "collect_event_context",
    default=EventContext(),  # noqa: B039 (frozen, immutable)
)


def current_event_context() -> EventContext:
    return _event_context.get()


def set_event_context(ctx: EventContext) -> contextvars.Token[EventContext]:
    return _event_context.set(ctx)


def reset_event_context(token: contextvars.Token[EventContext]) -> None:
    _event_context.reset(token)


# --- unit of work ----------------------------------------------------------------------


class HasEvents(Protocol):
    """An aggregate that records domain events (``events`` is drained at commit)."""

    events: list[Event]


class UnitOfWork:
    """One transaction: state changes and their outbox rows commit together or not at all.

    ``async with uow:`` opens a session; leaving without ``commit()`` rolls back.
    ``emit(event)`` or ``track(aggregate)`` queue events; ``commit()`` writes them
    to the outbox in the same transaction, then commits.
    """

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        source: str,
        clock: Clock,
        outbox: Table,
    ) -> None:
        self._sessions = sessions
        self._source = source
        self._clock = clock
        self._outbox = outbox
        self._session: AsyncSession | None = None
        self._pending: list[Event] = []
        self._contexts: dict[int, EventContext] = {}  # id(event) -> its cause, if not current
        self._tracked: list[HasEvents] = []
        self.committed_events: list[str] = []

    @property
    def session(self) -> AsyncSession:
        if self._session is None:
            raise RuntimeError("unit of work used outside 'async with'")
        return self._session

    async def __aenter__(self) -> UnitOfWork:
        self._session = self._sessions()
        self._pending = []
        self._contexts = {}
        self._tracked = []
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        session = self.session
        try:
            await session.rollback()  # a no-op after commit(); undoes anything uncommitted
        finally:
            await session.close()
            self._session = None

    def emit(self, *events: Event) -> None:
        self._pending.extend(events)

    def emit_caused_by(self, context: EventContext, *events: Event) -> None:
        """Queue ``events`` as caused by ``context`` rather than by the context current at
        commit: one transaction recording the work of several requests (a batch) keeps
        each request's correlation and causation on its own events."""
        for ev in events:
            self._contexts[id(ev)] = context
        self._pending.extend(events)

    def track(self, *aggregates: HasEvents) -> None:
        self._tracked.extend(aggregates)

    async def flush_events(self) -> list[str]:
        """Write queued events to the outbox (inside the open transaction)."""
        for aggregate in self._tracked:
            self._pending.extend(aggregate.events)
            aggregate.events.clear()
        events, self._pending = self._pending, []
        contexts, self._contexts = self._contexts, {}
        if not events:
            return []
        now = self._clock.now()
        rows: list[dict[str, Any]] = []
        for context, run in itertools.groupby(events, key=lambda ev: contexts.get(id(ev))):
            rows += outbox_rows(run, source=self._source, time=now, context=context)
        await insert_many(self.session, self._outbox, rows)
        return [str(r["event_id"]) for r in rows]

    async def commit(self) -> None:
        ids = await self.flush_events()
        await self.session.commit()
        self.committed_events.extend(ids)

    async def rollback(self) -> None:
        self._pending = []
        self._contexts = {}
        await self.session.rollback()


def outbox_rows(
    events: Iterable[Event],
    *,
    source: str,
    time: datetime,
    context: EventContext | None = None,
) -> list[dict[str, Any]]:
    """The outbox rows of ``events``: each one's envelope (``EventEnvelope.to_bytes``),
    caused by ``context`` (default: the current event context).

    The envelope JSON is assembled from the event's own JSON and the envelope's
    attributes serialized once per call; it is byte for byte what
    ``wrap(...).to_bytes()`` gives. An event whose envelope would not pass the
    envelope's checks (``_fast_envelope_ok``) goes through ``wrap``, which raises.
    """
    events = list(events)
    ctx = context if context is not None else current_event_context()
    causation = ctx.causation_id
    fixed = _EnvelopeParts(source, time, causation)
    ids = iter(uuid4_strings(len(events) * (1 if ctx.correlation_id else 2)))
    rows = []
    for ev in events:
        event_id = next(ids)
        correlation = ctx.correlation_id or next(ids)
        subject = ev.partition_key
        if fixed.ok and _fast_envelope_ok(ev.type_name, subject):
            payload = fixed.payload(ev, event_id, subject, correlation)
        else:
            payload = wrap(
                ev,
                source=source,
                time=time,
                correlation_id=correlation,
                causation_id=causation,
                event_id=event_id,
            ).to_bytes()
        rows.append(
            {
                "event_id": event_id,
                "topic": ev.topic,
                "key": subject,
                "event_type": ev.type_name,
                "payload": payload,
                "created_at": time,
                "published_at": None,
            }
        )
    return rows


def uuid4_strings(n: int) -> list[str]:
    """``n`` random (version 4) UUIDs as ``str(uuid.uuid4())`` spells them, drawn from the
    OS in one read instead of one read each."""
    raw = bytearray(os.urandom(16 * n))
    out = []
    for i in range(0, 16 * n, 16):
        raw[i + 6] = (raw[i + 6] & 0x0F) | 0x40  # version 4
        raw[i + 8] = (raw[i + 8] & 0x3F) | 0x80  # RFC 4122 variant
        h = raw[i : i + 16].hex()
        out.append(f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}")
    return out


# The checks EventEnvelope makes on what varies per event (its field constraints).
_ENVELOPE_TYPE = re.compile(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+\.v[0-9]+")
_SUBJECT_MAX = 200


def _fast_envelope_ok(type_name: str, subject: str) -> bool:
    return 0 < len(subject) <= _SUBJECT_MAX and _envelope_type_ok(type_name)


_type_checked: dict[str, bool] = {}


def _envelope_type_ok(type_name: str) -> bool:
    ok = _type_checked.get(type_name)
    if ok is None:
        ok = _ENVELOPE_TYPE.fullmatch(type_name) is not None
        if len(_type_checked) < 4096:
            _type_checked[type_name] = ok
    return ok


class _EnvelopeParts:
    """The envelope attributes shared by one batch of events, serialized once."""

    __slots__ = ("causation", "ok", "source", "time")

    def __init__(self, source: str, time: datetime, causation: str | None) -> None:
        # the envelope refuses an empty source and a naive time: leave those to wrap()
        self.ok = bool(source) and time.tzinfo is not None and time.utcoffset() is not None
        self.source = to_json(source)
        self.time = to_json(time) if self.ok else b""
        self.causation = to_json(causation)

    def payload(self, ev: Event, event_id: str, subject: str, correlation: str) -> bytes:
        # field order and spelling of EventEnvelope (specversion ... data)
        return b"".join(
            (
                b'{"specversion":"1.0","id":',
                to_json(event_id),
                b',"source":',
                self.source,
                b',"type":',
                to_json(ev.type_name),
                b',"time":',
                self.time,
                b',"subject":',
                to_json(subject),
                b',"datacontenttype":"application/json","correlationid":',
                to_json(correlation),
                b',"causationid":',
                self.causation,
                b',"data":',
                ev.__pydantic_serializer__.to_json(ev),
                b"}",
            )
        )


# --- bulk inserts -------------------------------------------------------------------

COPY_MIN_ROWS = 64
"""From this many rows on, ``insert_many`` writes with COPY on PostgreSQL."""

_COPY_TYPES = (String, Text, Integer, BigInteger, Numeric, Date, DateTime, LargeBinary, Boolean)


async def insert_many(
    session: AsyncSession, table: Table, rows: Sequence[Mapping[str, Any]]
) -> None:
    """``session.execute(table.insert(), rows)``, faster for large batches on PostgreSQL.

    Every row names the same columns. From ``COPY_MIN_ROWS`` rows on PostgreSQL, the
    values go through each column type's bind processing (``EncryptedText`` encrypts
    the whole column at once) and are written with ``COPY`` inside the session's
    transaction; a constraint violation is raised as SQLAlchemy's ``IntegrityError``,
    as the plain insert would. Tables whose omitted columns have Python-side defaults,
    or with column types COPY cannot take as they are, use the plain insert.
    """
    if not rows:
        return
    columns = list(rows[0])
    if len(rows) < COPY_MIN_ROWS or session.get_bind().dialect.name != "postgresql":
        await session.execute(table.insert(), list(rows))
        return
    plan = _copy_plan(table, tuple(columns))
    if plan is None:
        await session.execute(table.insert(), list(rows))
        return
    conn = await session.connection()
    dialect = conn.dialect
    values: list[list[Any]] = []
    for name, kind in zip(columns, plan, strict=True):
        column = [row[name] for row in rows]
        if isinstance(kind, TypeDecorator):
            many = getattr(kind, "process_bind_many", None)
            if many is not None:
                column = many(column)
            else:
                column = [kind.process_bind_param(v, dialect) for v in column]
        values.append(column)
    records = list(zip(*values, strict=True))
    raw = await conn.get_raw_connection()
    driver = raw.driver_connection
    assert driver is not None
    if not driver.is_in_transaction():
        await conn.execute(text("SELECT 1"))  # opens the session's transaction first
    try:
        await driver.copy_records_to_table(
            table.name, records=records, columns=columns, schema_name=table.schema
        )
    except Exception as exc:
        # as SQLAlchemy reports a failed INSERT: by the SQLSTATE class of the error
        kind = _ERROR_CLASSES.get(str(getattr(exc, "sqlstate", "") or "")[:2], DBAPIError)
        raise kind(f"COPY {table.name}", None, exc) from exc


# As SQLAlchemy's asyncpg dialect translates errors, by SQLSTATE class: 23 integrity
# constraint violation (unique, foreign key, not null), 42 syntax error or access rule
# violation; anything else (a value too long...) is a plain DBAPIError.
_ERROR_CLASSES: dict[str, type[DBAPIError]] = {"23": IntegrityError, "42": ProgrammingError}


_copy_plans: dict[tuple[Table, tuple[str, ...]], list[Any] | None] = {}


def _copy_plan(table: Table, columns: tuple[str, ...]) -> list[Any] | None:
    """The type of each column for COPY, or None when COPY would not do what INSERT does."""
    key = (table, columns)
    if key in _copy_plans:
        return _copy_plans[key]
    plan: list[Any] | None = []
    named = set(columns)
    for column in table.columns:
        if column.name not in named and (column.default is not None or column.onupdate):
            plan = None  # a Python-side default only INSERT through SQLAlchemy applies
            break
    if plan is not None:
        for name in columns:
            if name not in table.c:
                plan = None
                break
            kind = table.c[name].type
            base = kind.impl_instance if isinstance(kind, TypeDecorator) else kind
            if not isinstance(base, _COPY_TYPES):
                plan = None
                break
            plan.append(kind)
    if len(_copy_plans) < 1024:
        _copy_plans[key] = plan
    return plan
