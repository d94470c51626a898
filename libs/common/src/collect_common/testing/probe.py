"""Test support: per-test event types and an ``effects`` table that records what handlers did.

Each test gets its own catalogued event type on its own topic, so tests sharing a
broker never see each other's messages. The ``effects`` table has no unique key
on purpose: an event applied twice shows up as two rows.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar

from sqlalchemy import Column, Integer, MetaData, String, Table, func, select

from collect_common.bus.consumer import Handler, HandlerContext
from collect_common.clock import Clock, SystemClock
from collect_common.db import BigId, UnitOfWork, create_engine, new_metadata, session_factory
from collect_common.events.catalogue import Event


class ProbeEvent(Event):
    key_field: ClassVar[str] = "stream"
    stream: str
    seq: int
    fail: bool = False


def probe_event_class(topic: str, name: str | None = None) -> type[ProbeEvent]:
    """A catalogued event type ``test.<name>.v1`` travelling on ``topic``."""
    name = name or "probe_" + uuid.uuid4().hex[:10]
    return type(  # type: ignore[return-value]
        f"Probe_{name}",
        (ProbeEvent,),
        {"type_name": f"test.{name}.v1", "topic": topic, "__module__": __name__},
    )


def probe_metadata() -> tuple[MetaData, Table]:
    metadata = new_metadata()
    effects = Table(
        "effects",
        metadata,
        Column("id", BigId, primary_key=True, autoincrement=True),
        Column("event_key", String(200), nullable=False),
        Column("seq", Integer, nullable=False),
        Column("event_id", String(64), nullable=False),
    )
    return metadata, effects


class HandlerFailed(RuntimeError):
    pass


def recording_handler(effects: Table) -> Handler:
    """Insert one effects row per event; raise for events marked ``fail``."""

    async def handle(event: Event, ctx: HandlerContext) -> None:
        assert isinstance(event, ProbeEvent)
        if event.fail:
            raise HandlerFailed(f"probe event {event.seq} is set to fail")
        await ctx.session.execute(
            effects.insert().values(event_key=event.stream, seq=event.seq, event_id=ctx.envelope.id)
        )

    return handle


async def wait_until(
    condition: Callable[[], Awaitable[bool]], *, timeout: float = 60.0, what: str = "condition"
) -> None:
    """Poll ``condition`` until it holds; fail after ``timeout`` seconds.

    For waiting on another process or the broker (deliveries, a consumer catching
    up), never for ordering inside the test itself.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await condition():
        if loop.time() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.05)


class ProbeDatabase:
    """A database with the platform tables and ``effects``, and units of work on it."""

    def __init__(self, url: str, clock: Clock | None = None) -> None:
        self.metadata, self.effects = probe_metadata()
        self.outbox = self.metadata.tables["outbox"]
        self.processed = self.metadata.tables["processed_events"]
        self.engine = create_engine(url)
        self.sessions = session_factory(self.engine)
        self.clock: Clock = clock or SystemClock()

    async def create(self) -> ProbeDatabase:
        async with self.engine.begin() as conn:
            await conn.run_sync(self.metadata.create_all)
        return self

    def uow(self) -> UnitOfWork:
        return UnitOfWork(self.sessions, source="/test", clock=self.clock, outbox=self.outbox)

    async def count(self, table: Table | None = None, *where: Any) -> int:
        query = select(func.count()).select_from(table if table is not None else self.effects)
        for condition in where:
            query = query.where(condition)
        async with self.sessions() as session:
            return int(await session.scalar(query) or 0)

    async def dispose(self) -> None:
        await self.engine.dispose()
