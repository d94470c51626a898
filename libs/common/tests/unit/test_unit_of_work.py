from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import Column, MetaData, String, Table, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from collect_common.clock import FrozenClock
from collect_common.db import (
    EventContext,
    UnitOfWork,
    create_engine,
    new_metadata,
    reset_event_context,
    session_factory,
    set_event_context,
)
from collect_common.events import EventEnvelope
from collect_common.events.catalogue import Event
from collect_common.events.types import CaseRecalled

CLOCK = FrozenClock(datetime(2026, 11, 28, 1, 0, tzinfo=UTC))


def _recalled(case: str = "case-1") -> CaseRecalled:
    return CaseRecalled(case_id=case, debtor_id="debtor-1", recalled_at=CLOCK.now())


@pytest.fixture
async def db() -> AsyncIterator[tuple[async_sessionmaker[AsyncSession], MetaData, Table]]:
    metadata = new_metadata()
    things = Table("things", metadata, Column("id", String(20), primary_key=True))
    engine = create_engine("sqlite+aiosqlite:///:memory:")
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    yield session_factory(engine), metadata, things
    await engine.dispose()


def _uow(sessions: async_sessionmaker[AsyncSession], metadata: MetaData) -> UnitOfWork:
    return UnitOfWork(sessions, source="/case-svc", clock=CLOCK, outbox=metadata.tables["outbox"])


async def _count(sessions: async_sessionmaker[AsyncSession], table: Table) -> int:
    async with sessions() as s:
        return int(await s.scalar(select(func.count()).select_from(table)) or 0)


async def test_commit_writes_state_and_its_events_together(db) -> None:
    sessions, metadata, things = db
    async with _uow(sessions, metadata) as uow:
        await uow.session.execute(things.insert().values(id="a"))
        uow.emit(_recalled())
        await uow.commit()
    assert await _count(sessions, things) == 1
    async with sessions() as s:
        row = (await s.execute(select(metadata.tables["outbox"]))).one()
    assert (row.topic, row.key, row.event_type) == ("case.events", "case-1", "case.recalled.v1")
    assert row.published_at is None
    env = EventEnvelope.from_bytes(row.payload)
    assert env.source == "/case-svc" and env.id == row.event_id


async def test_leaving_without_commit_keeps_neither_state_nor_events(db) -> None:
    sessions, metadata, things = db

    async def failing_handler() -> None:
        async with _uow(sessions, metadata) as uow:
            await uow.session.execute(things.insert().values(id="a"))
            uow.emit(_recalled())
            await uow.flush_events()
            raise RuntimeError("handler failed half-way")

    with pytest.raises(RuntimeError):
        await failing_handler()
    async with _uow(sessions, metadata) as uow:
        await uow.session.execute(things.insert().values(id="b"))
        uow.emit(_recalled())
        # no commit
    assert await _count(sessions, things) == 0
    assert await _count(sessions, metadata.tables["outbox"]) == 0


async def test_tracked_aggregates_events_are_drained_at_commit(db) -> None:
    sessions, metadata, _things = db

    class Case:
        def __init__(self) -> None:
            self.events: list[Event] = []

    case = Case()
    async with _uow(sessions, metadata) as uow:
        uow.track(case)
        case.events.append(_recalled("case-7"))
        case.events.append(_recalled("case-8"))
        await uow.commit()
    assert case.events == []
    assert len(uow.committed_events) == 2
    async with sessions() as s:
        keys = (
            await s.scalars(
                select(metadata.tables["outbox"].c.key).order_by(metadata.tables["outbox"].c.id)
            )
        ).all()
    assert keys == ["case-7", "case-8"]  # commit order is publish order


async def test_events_carry_the_correlation_and_causation_of_their_cause(db) -> None:
    sessions, metadata, _things = db
    token = set_event_context(EventContext(correlation_id="flow-42", causation_id="evt-1"))
    try:
        async with _uow(sessions, metadata) as uow:
            uow.emit(_recalled())
            await uow.commit()
    finally:
        reset_event_context(token)
    async with sessions() as s:
        payload = await s.scalar(select(metadata.tables["outbox"].c.payload))
    env = EventEnvelope.from_bytes(payload)
    assert (env.correlationid, env.causationid) == ("flow-42", "evt-1")
