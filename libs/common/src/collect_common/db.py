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
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Protocol

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
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


def create_engine(url: str, *, echo: bool = False, pool_size: int = 10) -> AsyncEngine:
    """An async engine for PostgreSQL (asyncpg) or SQLite (aiosqlite). Connects lazily."""
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
    return _create_async_engine(
        url, echo=echo, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True
    )


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


def in_ids(dialect: str, column: Any, ids: list[int]) -> Any:
    """``column IN ids``; on PostgreSQL one array parameter (``= ANY``), not one per id."""
    if dialect == "postgresql":
        return column == any_(bindparam("ids", ids, type_=postgresql.ARRAY(BigInteger)))
    return column.in_(ids)


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

    def track(self, *aggregates: HasEvents) -> None:
        self._tracked.extend(aggregates)

    async def flush_events(self) -> list[str]:
        """Write queued events to the outbox (inside the open transaction)."""
        for aggregate in self._tracked:
            self._pending.extend(aggregate.events)
            aggregate.events.clear()
        events, self._pending = self._pending, []
        if not events:
            return []
        rows = outbox_rows(events, source=self._source, time=self._clock.now())
        await self.session.execute(self._outbox.insert(), rows)
        return [str(r["event_id"]) for r in rows]

    async def commit(self) -> None:
        ids = await self.flush_events()
        await self.session.commit()
        self.committed_events.extend(ids)

    async def rollback(self) -> None:
        self._pending = []
        await self.session.rollback()


def outbox_rows(events: Iterable[Event], *, source: str, time: datetime) -> list[dict[str, Any]]:
    ctx = current_event_context()
    rows = []
    for ev in events:
        envelope = wrap(
            ev,
            source=source,
            time=time,
            correlation_id=ctx.correlation_id or str(uuid.uuid4()),
            causation_id=ctx.causation_id,
        )
        rows.append(
            {
                "event_id": envelope.id,
                "topic": ev.topic,
                "key": envelope.subject,
                "event_type": envelope.type,
                "payload": envelope.to_bytes(),
                "created_at": time,
                "published_at": None,
            }
        )
    return rows
