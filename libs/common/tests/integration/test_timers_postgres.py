"""Durable timers on PostgreSQL with several scheduler replicas: each timer fires once."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.operations import Operations
from sqlalchemy import MetaData, Table, func, select, text
from sqlalchemy.engine import Connection

from collect_common import timers
from collect_common.clock import FrozenClock
from collect_common.db import NAMING_CONVENTION, UnitOfWork
from collect_common.migrations_ops import create_timers_table
from collect_common.testing.probe import ProbeDatabase
from collect_common.timers import Timer, TimerHandler, TimerScheduler, TimerState

pytestmark = pytest.mark.postgres

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
TIMERS = 300


class Replica:
    """One scheduler process: its own engine (connection pool) on the shared database."""

    def __init__(self, url: str, clock: FrozenClock) -> None:
        self.db = ProbeDatabase(url, clock)
        self.table = timers.add_timers_table(self.db.metadata)
        self.fired: list[str] = []

    def recorder(self) -> TimerHandler:
        async def handle(timer: Timer, uow: UnitOfWork) -> None:
            await uow.session.execute(
                self.db.effects.insert().values(event_key=timer.key, seq=0, event_id=timer.subject)
            )
            self.fired.append(timer.key)

        return handle

    def scheduler(self, handlers: dict[str, TimerHandler], **options: object) -> TimerScheduler:
        return TimerScheduler(
            self.db.uow,
            self.table,
            handlers,
            self.db.clock,
            **options,  # type: ignore[arg-type]
        )


@pytest.fixture
async def replicas(pg_url: str) -> AsyncIterator[tuple[Replica, Replica]]:
    clock = FrozenClock(T0)
    first, second = Replica(pg_url, clock), Replica(pg_url, clock)
    await first.db.create()
    try:
        yield first, second
    finally:
        await first.db.dispose()
        await second.db.dispose()


async def _schedule_many(replica: Replica, count: int) -> None:
    async with replica.db.uow() as uow:
        for i in range(count):
            await timers.schedule(
                uow.session,
                key=f"promise:{i}:due",
                kind="promise",
                subject=f"case-{i % 17}",
                due_at=T0 - timedelta(minutes=count - i),  # all due; fell due while down
                now=T0,
            )
        await uow.commit()


async def _effect_keys(replica: Replica) -> list[str]:
    async with replica.db.sessions() as session:
        return list((await session.scalars(select(replica.db.effects.c.event_key))).all())


async def test_two_replicas_fire_every_due_timer_exactly_once(
    replicas: tuple[Replica, Replica],
) -> None:
    first, second = replicas
    await _schedule_many(first, TIMERS)
    schedulers = [
        r.scheduler({"promise": r.recorder()}, batch_size=25, service=f"replica-{n}")
        for n, r in enumerate(replicas)
    ]

    async def drain(scheduler: TimerScheduler) -> int:
        # Until a pass finds nothing it can take (rows the other holds are skipped; the
        # replica that stops last has seen every row committed).
        total = 0
        while fired := await scheduler.fire_due():
            total += fired
        return total

    counts = await asyncio.wait_for(asyncio.gather(*(drain(s) for s in schedulers)), 120)

    effects = Counter(await _effect_keys(first))  # no unique key: a double would show
    assert sum(effects.values()) == TIMERS
    assert set(effects.values()) == {1}
    assert len(effects) == TIMERS
    assert sum(counts) == TIMERS
    assert len(first.fired) + len(second.fired) == TIMERS
    assert not set(first.fired) & set(second.fired)
    assert first.fired and second.fired, "both replicas should have taken a share"
    fired_rows = await first.db.count(
        first.table,
        first.table.c.state == TimerState.FIRED.value,
        first.table.c.fired_at == T0,
    )
    assert fired_rows == TIMERS


async def test_a_timer_locked_by_one_replica_is_skipped_by_the_other_not_waited_for(
    replicas: tuple[Replica, Replica],
) -> None:
    first, second = replicas
    await _schedule_many(first, 3)  # promise:0 is the oldest
    entered, release = asyncio.Event(), asyncio.Event()
    record_first = first.recorder()

    async def slow(timer: Timer, uow: UnitOfWork) -> None:
        await record_first(timer, uow)
        entered.set()
        await release.wait()  # holds the row lock in an open transaction

    holder = first.scheduler({"promise": slow}, batch_size=1)
    holding = asyncio.create_task(holder.fire_due())
    try:
        await asyncio.wait_for(entered.wait(), timeout=30)

        other = second.scheduler({"promise": second.recorder()})
        # It must neither block on the locked row nor fire it.
        assert await asyncio.wait_for(other.fire_due(), timeout=10) == 2
        assert await asyncio.wait_for(other.fire_due(), timeout=10) == 0
        assert sorted(second.fired) == ["promise:1:due", "promise:2:due"]

        release.set()
        assert await asyncio.wait_for(holding, timeout=30) == 1
    finally:
        release.set()
        await asyncio.gather(holding, return_exceptions=True)

    assert first.fired == ["promise:0:due"]
    assert await other.fire_due() == 0
    assert sorted(await _effect_keys(first)) == [f"promise:{i}:due" for i in range(3)]


async def test_timers_of_a_replica_that_dies_mid_batch_are_fired_by_another(
    replicas: tuple[Replica, Replica],
) -> None:
    first, second = replicas
    await _schedule_many(first, 5)
    entered, release = asyncio.Event(), asyncio.Event()
    backend_pid: list[int] = []
    record_first = first.recorder()

    async def doomed(timer: Timer, uow: UnitOfWork) -> None:
        await record_first(timer, uow)
        if not backend_pid:
            backend_pid.append(int(await uow.session.scalar(select(func.pg_backend_pid())) or 0))
            entered.set()
            await release.wait()

    dying = asyncio.create_task(first.scheduler({"promise": doomed}).fire_due())
    try:
        await asyncio.wait_for(entered.wait(), timeout=30)
        # The replica's connection goes away (crash, network): its transaction rolls
        # back and its row locks are released.
        async with second.db.engine.connect() as conn:
            await conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": backend_pid[0]})
        release.set()
        with pytest.raises(Exception):  # noqa: B017, PT011 (whatever the driver raises)
            await asyncio.wait_for(dying, timeout=30)
    finally:
        release.set()
        await asyncio.gather(dying, return_exceptions=True)

    survivor = second.scheduler({"promise": second.recorder()})
    assert await asyncio.wait_for(survivor.fire_due(), timeout=30) == 5
    effects = Counter(await _effect_keys(first))
    assert sorted(effects) == [f"promise:{i}:due" for i in range(5)]
    assert set(effects.values()) == {1}  # the dead replica's work left nothing behind


async def test_the_alembic_operations_create_exactly_the_timers_table_on_postgres(
    pg_url: str,
) -> None:
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    table: Table = timers.add_timers_table(metadata)
    db = ProbeDatabase(pg_url)

    def migrate_and_compare(conn: Connection) -> list[object]:
        context = MigrationContext.configure(
            conn, opts={"target_metadata": metadata, "compare_type": True}
        )
        with Operations.context(context):
            create_timers_table()
        return list(compare_metadata(context, metadata))

    try:
        async with db.engine.begin() as conn:
            assert await conn.run_sync(migrate_and_compare) == []
            names = set(
                (
                    await conn.execute(
                        text(
                            "SELECT conname FROM pg_constraint WHERE conrelid = 'timers'::regclass"
                        )
                    )
                ).scalars()
            )
            assert names == {"pk_timers", "uq_timers_timer_key", "ck_timers_state"}
        # The functions work on the migrated table.
        async with db.sessions() as session, session.begin():
            assert await timers.schedule(
                session, key="k", kind="promise", subject="case-1", due_at=T0, now=T0
            )
            assert await timers.pause(session, "k", T0 - timedelta(seconds=90))
            timer = await timers.get(session, "k")
            assert timer is not None and timer.remaining == timedelta(seconds=90)
            assert table.name == "timers"
    finally:
        await db.dispose()
