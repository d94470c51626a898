"""Durable timers on SQLite with a frozen clock: time is moved, never waited for."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.operations import Operations
from prometheus_client import CollectorRegistry
from sqlalchemy import MetaData, Table, func, select

from collect_common import timers
from collect_common.clock import FrozenClock
from collect_common.db import NAMING_CONVENTION, UnitOfWork, create_engine
from collect_common.migrations_ops import create_timers_table, drop_timers_table
from collect_common.testing.probe import ProbeDatabase, probe_event_class
from collect_common.timers import Timer, TimerHandler, TimerScheduler, TimerState

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
Probe = probe_event_class("timers.unit", "timers_unit_probe")


class Boom(RuntimeError):
    pass


class Crash(BaseException):
    """The process dying in the middle of a batch (not an error a handler reports)."""


class Env:
    def __init__(self, db: ProbeDatabase, table: Table, clock: FrozenClock, url: str) -> None:
        self.db = db
        self.table = table
        self.clock = clock
        self.url = url

    def scheduler(self, handlers: dict[str, TimerHandler], **options: Any) -> TimerScheduler:
        return TimerScheduler(self.db.uow, self.table, handlers, self.clock, **options)

    async def schedule(self, key: str, due_at: datetime, kind: str = "note", **kw: Any) -> bool:
        async with self.db.uow() as uow:
            done = await timers.schedule(
                uow.session,
                key=key,
                kind=kind,
                subject=kw.pop("subject", "case-1"),
                due_at=due_at,
                now=self.clock.now(),
                **kw,
            )
            await uow.commit()
        return done

    async def act(self, op: Callable[..., Awaitable[bool]], *args: Any) -> bool:
        async with self.db.uow() as uow:
            done = await op(uow.session, *args)
            await uow.commit()
        return done

    async def get(self, key: str) -> Timer:
        async with self.db.sessions() as session:
            timer = await timers.get(session, key)
        assert timer is not None, key
        return timer

    async def effects(self) -> list[str]:
        e = self.db.effects
        async with self.db.sessions() as session:
            return list((await session.scalars(select(e.c.event_key).order_by(e.c.id))).all())

    async def outbox_keys(self) -> list[str]:
        ob = self.db.outbox
        async with self.db.sessions() as session:
            return list((await session.scalars(select(ob.c.key).order_by(ob.c.id))).all())


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    # A file, not :memory:, so a second engine can look from outside the batch's transaction.
    url = f"sqlite+aiosqlite:///{tmp_path / 'timers.db'}"
    clock = FrozenClock(T0)
    db = ProbeDatabase(url, clock)
    table = timers.add_timers_table(db.metadata)
    await db.create()
    yield Env(db, table, clock, url)
    await db.dispose()


def recording(env: Env, *, fail: set[str] | None = None) -> TimerHandler:
    """Write an effects row and emit an event per timer; raise (after both) for keys in fail."""

    async def handle(timer: Timer, uow: UnitOfWork) -> None:
        await uow.session.execute(
            env.db.effects.insert().values(
                event_key=timer.key, seq=timer.attempts, event_id=timer.subject
            )
        )
        uow.emit(Probe(stream=timer.key, seq=timer.attempts))
        if fail and timer.key in fail:
            raise Boom(f"{timer.key} cannot be handled")

    return handle


# --- scheduling -----------------------------------------------------------------------------


async def test_schedule_is_idempotent_by_key(env: Env) -> None:
    due = T0 + timedelta(days=3)
    assert await env.schedule("promise:1:due", due, payload={"promise_id": "1"})
    assert await env.schedule("promise:1:due", due, payload={"promise_id": "1"})
    assert await env.db.count(env.table) == 1
    timer = await env.get("promise:1:due")
    assert (timer.state, timer.due_at, timer.payload) == (
        TimerState.SCHEDULED,
        due,
        {"promise_id": "1"},
    )
    assert timer.due_at.tzinfo is not None and timer.created_at == T0

    # Scheduling the key again moves it (the promise was renegotiated).
    later = due + timedelta(days=4)
    assert await env.schedule("promise:1:due", later, payload={"promise_id": "1", "v": 2})
    timer = await env.get("promise:1:due")
    assert (timer.due_at, timer.payload, timer.kind) == (later, {"promise_id": "1", "v": 2}, "note")
    assert await env.db.count(env.table) == 1

    # Once fired, a redelivered "schedule" changes nothing.
    env.clock.set(later)
    assert await env.scheduler({"note": recording(env)}).fire_due() == 1
    assert not await env.schedule("promise:1:due", later + timedelta(days=1))
    timer = await env.get("promise:1:due")
    assert (timer.state, timer.due_at, timer.fired_at) == (TimerState.FIRED, later, later)


async def test_instants_must_carry_a_time_zone(env: Env) -> None:
    with pytest.raises(ValueError, match="naive"):
        await env.schedule("t", datetime(2026, 3, 5, 9, 0))
    await env.schedule("t", T0 + timedelta(hours=1))
    with pytest.raises(ValueError, match="naive"):
        await env.act(timers.pause, "t", datetime(2026, 3, 2, 9, 30))
    assert await env.db.count(env.table) == 1


async def test_get_returns_none_for_an_unknown_key(env: Env) -> None:
    async with env.db.sessions() as session:
        assert await timers.get(session, "nope") is None


# --- firing ---------------------------------------------------------------------------------


async def test_a_timer_fires_at_its_due_time_and_not_before(env: Env) -> None:
    due = T0 + timedelta(days=2)
    await env.schedule("promise:7:due", due)
    scheduler = env.scheduler({"note": recording(env)})

    assert await scheduler.fire_due() == 0
    env.clock.set(due - timedelta(microseconds=1))
    assert await scheduler.fire_due() == 0
    assert await env.effects() == []

    env.clock.set(due)
    assert await scheduler.fire_due() == 1
    assert await env.effects() == ["promise:7:due"]
    assert await env.outbox_keys() == ["promise:7:due"]  # its event, in the same commit
    timer = await env.get("promise:7:due")
    assert (timer.state, timer.fired_at, timer.attempts) == (TimerState.FIRED, due, 0)

    env.clock.advance(timedelta(days=30))
    assert await scheduler.fire_due() == 0  # fired once, never again
    assert await env.effects() == ["promise:7:due"]


async def test_timers_that_fell_due_during_downtime_fire_on_the_first_poll(env: Env) -> None:
    for i, days in enumerate((40, 3, 1)):
        await env.schedule(f"sla:{i}", T0 - timedelta(days=days))
    await env.schedule("future", T0 + timedelta(minutes=1))

    # A scheduler started after the outage: no lower bound on due_at.
    scheduler = env.scheduler({"note": recording(env)})
    assert await scheduler.fire_due() == 3
    assert await env.effects() == ["sla:0", "sla:1", "sla:2"]  # oldest first
    assert (await env.get("future")).state is TimerState.SCHEDULED


async def test_a_full_backlog_fires_in_batches_oldest_first(env: Env) -> None:
    for i in range(7):
        await env.schedule(f"t{i}", T0 - timedelta(minutes=10 - i))
    scheduler = env.scheduler({"note": recording(env)}, batch_size=3)
    assert [await scheduler.fire_due() for _ in range(4)] == [3, 3, 1, 0]
    assert await env.effects() == [f"t{i}" for i in range(7)]


async def test_a_cancelled_timer_never_fires(env: Env) -> None:
    await env.schedule("promise:1:due", T0 + timedelta(hours=1))
    await env.schedule("promise:2:due", T0 + timedelta(hours=1))
    assert await env.act(timers.cancel, "promise:1:due")
    assert not await env.act(timers.cancel, "promise:1:due")  # already cancelled
    assert not await env.act(timers.cancel, "promise:404:due")

    env.clock.advance(timedelta(days=1))
    assert await env.scheduler({"note": recording(env)}).fire_due() == 1
    assert await env.effects() == ["promise:2:due"]
    assert (await env.get("promise:1:due")).state is TimerState.CANCELLED
    assert not await env.act(timers.cancel, "promise:2:due")  # fired: stays fired
    assert (await env.get("promise:2:due")).state is TimerState.FIRED


async def test_pause_and_resume_shift_the_due_time_by_the_paused_duration(env: Env) -> None:
    # COMP-SLA clock: 10 minutes left; stopped after 4 while waiting for the debtor.
    await env.schedule("complaint:9:COMP-SLA-1", T0 + timedelta(minutes=10))
    scheduler = env.scheduler({"note": recording(env)})

    env.clock.advance(timedelta(minutes=4))
    assert await env.act(timers.pause, "complaint:9:COMP-SLA-1", env.clock.now())
    assert not await env.act(timers.pause, "complaint:9:COMP-SLA-1", env.clock.now())
    paused = await env.get("complaint:9:COMP-SLA-1")
    assert (paused.state, paused.remaining) == (TimerState.PAUSED, timedelta(minutes=6))

    env.clock.advance(timedelta(hours=1))  # long past the original due time
    assert await scheduler.fire_due() == 0

    assert await env.act(timers.resume, "complaint:9:COMP-SLA-1", env.clock.now())
    assert not await env.act(timers.resume, "complaint:9:COMP-SLA-1", env.clock.now())
    resumed = await env.get("complaint:9:COMP-SLA-1")
    expected = T0 + timedelta(minutes=10) + timedelta(hours=1)
    assert (resumed.state, resumed.due_at, resumed.remaining) == (
        TimerState.SCHEDULED,
        expected,
        None,
    )

    env.clock.set(expected - timedelta(seconds=1))
    assert await scheduler.fire_due() == 0
    env.clock.set(expected)
    assert await scheduler.fire_due() == 1


async def test_pausing_an_overdue_timer_leaves_nothing_to_wait_for(env: Env) -> None:
    await env.schedule("t", T0 + timedelta(minutes=1))
    env.clock.advance(timedelta(minutes=5))
    assert await env.act(timers.pause, "t", env.clock.now())
    assert (await env.get("t")).remaining == timedelta(0)
    env.clock.advance(timedelta(days=1))
    assert await env.act(timers.resume, "t", env.clock.now())
    assert (await env.get("t")).due_at == env.clock.now()
    assert await env.scheduler({"note": recording(env)}).fire_due() == 1


async def test_sub_millisecond_remainders_round_up_so_a_resumed_timer_never_fires_early(
    env: Env,
) -> None:
    await env.schedule("t", T0 + timedelta(seconds=1, microseconds=1))
    assert await env.act(timers.pause, "t", T0)
    assert (await env.get("t")).remaining == timedelta(seconds=1, milliseconds=1)


# --- failures -------------------------------------------------------------------------------


async def test_a_failing_handler_rolls_back_only_its_own_work_and_is_retried_then_failed(
    env: Env,
) -> None:
    for key in ("a", "b", "c"):
        await env.schedule(key, T0)
    scheduler = env.scheduler(
        {"note": recording(env, fail={"b"})},
        max_attempts=3,
        retry_delay=timedelta(minutes=5),
    )

    assert await scheduler.fire_due() == 2  # a and c fire although b failed between them
    assert await env.effects() == ["a", "c"]  # b wrote a row and emitted, then raised
    assert await env.outbox_keys() == ["a", "c"]
    b = await env.get("b")
    assert (b.state, b.attempts, b.due_at) == (TimerState.SCHEDULED, 1, T0 + timedelta(minutes=5))
    assert b.last_error == "Boom: b cannot be handled"

    env.clock.advance(timedelta(minutes=4, seconds=59))
    assert await scheduler.fire_due() == 0  # not before retry_delay
    assert (await env.get("b")).attempts == 1

    env.clock.advance(timedelta(seconds=1))
    assert await scheduler.fire_due() == 0
    assert (await env.get("b")).attempts == 2
    env.clock.advance(timedelta(minutes=5))
    assert await scheduler.fire_due() == 0
    b = await env.get("b")
    assert (b.state, b.attempts) == (TimerState.FAILED, 3)

    env.clock.advance(timedelta(days=1))
    assert await scheduler.fire_due() == 0  # given up: not retried again
    assert (await env.get("b")).attempts == 3
    assert await env.effects() == ["a", "c"]
    assert await env.outbox_keys() == ["a", "c"]

    # A failed timer can be scheduled again (an operator fixed the cause).
    assert await env.schedule("b", env.clock.now())
    assert await env.scheduler({"note": recording(env)}).fire_due() == 1
    b = await env.get("b")
    assert (b.state, b.attempts, b.last_error) == (TimerState.FIRED, 0, None)


async def test_a_handler_that_fails_on_a_database_error_does_not_spoil_the_batch(
    env: Env,
) -> None:
    await env.schedule("bad", T0 - timedelta(seconds=1))
    await env.schedule("good", T0)

    async def bad(timer: Timer, uow: UnitOfWork) -> None:
        await uow.session.execute(env.db.effects.insert().values(event_key=timer.key))  # NOT NULL

    handlers: dict[str, TimerHandler] = {"bad": bad, "note": recording(env)}
    async with env.db.uow() as uow:
        await timers.schedule(uow.session, key="bad2", kind="bad", subject="x", due_at=T0)
        await uow.commit()
    await env.act(timers.cancel, "bad")
    assert await env.scheduler(handlers).fire_due() == 1
    assert await env.effects() == ["good"]
    bad2 = await env.get("bad2")
    assert bad2.attempts == 1 and bad2.last_error and "IntegrityError" in bad2.last_error


async def test_handler_writes_and_timer_state_commit_together(env: Env) -> None:
    for key in ("first", "second", "third"):
        await env.schedule(key, T0)
    outside = create_engine(env.url)
    seen_from_outside: list[int] = []

    async def handle(timer: Timer, uow: UnitOfWork) -> None:
        await recording(env)(timer, uow)
        if timer.key == "second":
            # Another connection sees nothing of the batch while it is open.
            async with outside.connect() as conn:
                count = await conn.scalar(select(func.count()).select_from(env.db.effects))
                seen_from_outside.append(int(count or 0))
        if timer.key == "third":
            raise Crash("the process dies before the batch commits")

    try:
        with pytest.raises(Crash):
            await env.scheduler({"note": handle}).fire_due()
        assert seen_from_outside == [0]
        # Nothing of the batch stuck: no effects, no events, every timer still due.
        assert await env.effects() == []
        assert await env.outbox_keys() == []
        assert {(await env.get(k)).state for k in ("first", "second", "third")} == {
            TimerState.SCHEDULED
        }
        # After the restart each fires exactly once.
        assert await env.scheduler({"note": recording(env)}).fire_due() == 3
        assert await env.effects() == ["first", "second", "third"]
    finally:
        await outside.dispose()


# --- chains and recurrence ------------------------------------------------------------------


async def test_a_handler_schedules_the_next_timer_of_a_chain(env: Env) -> None:
    steps = {1: timedelta(hours=24), 2: timedelta(hours=48), 3: timedelta(days=5)}
    fired: list[tuple[str, datetime]] = []

    async def sla(timer: Timer, uow: UnitOfWork) -> None:
        step = int(timer.payload["step"])
        fired.append((timer.key, env.clock.now()))
        await recording(env)(timer, uow)
        if step + 1 in steps:
            await timers.schedule(
                uow.session,
                key=f"complaint:{timer.subject}:COMP-SLA-{step + 1}",
                kind="sla",
                subject=timer.subject,
                due_at=timer.due_at + steps[step + 1],
                payload={"step": step + 1},
                now=env.clock.now(),
            )

    await env.schedule(
        "complaint:c1:COMP-SLA-1", T0 + steps[1], kind="sla", subject="c1", payload={"step": 1}
    )
    scheduler = env.scheduler({"sla": sla})
    for _ in range(10):
        env.clock.advance(timedelta(hours=12))
        await scheduler.fire_due()

    assert fired == [
        ("complaint:c1:COMP-SLA-1", T0 + timedelta(hours=24)),
        ("complaint:c1:COMP-SLA-2", T0 + timedelta(hours=72)),
    ]
    step3 = await env.get("complaint:c1:COMP-SLA-3")
    assert (step3.state, step3.due_at) == (TimerState.SCHEDULED, T0 + timedelta(days=8))
    env.clock.set(step3.due_at)
    assert await scheduler.fire_due() == 1
    assert await env.effects() == [f"complaint:c1:COMP-SLA-{i}" for i in (1, 2, 3)]
    assert await env.db.count(env.table) == 3


async def test_a_handler_that_reschedules_its_own_key_makes_a_recurring_timer(env: Env) -> None:
    runs: list[datetime] = []

    async def recompute_buckets(timer: Timer, uow: UnitOfWork) -> None:
        runs.append(timer.due_at)
        await timers.schedule(
            uow.session,
            key=timer.key,
            kind=timer.kind,
            subject=timer.subject,
            due_at=timer.due_at + timedelta(days=1),
        )

    await env.schedule("buckets:daily", T0, kind="buckets", subject="all")
    scheduler = env.scheduler({"buckets": recompute_buckets})
    for _ in range(3):
        assert await scheduler.fire_due() == 1
        assert await scheduler.fire_due() == 0
        env.clock.advance(timedelta(days=1))
    assert runs == [T0, T0 + timedelta(days=1), T0 + timedelta(days=2)]
    timer = await env.get("buckets:daily")
    assert (timer.state, timer.due_at) == (TimerState.SCHEDULED, T0 + timedelta(days=3))


# --- kinds, metrics, the loop ---------------------------------------------------------------


async def test_timers_of_kinds_without_a_handler_are_left_for_others_and_show_as_overdue(
    env: Env,
) -> None:
    await env.schedule("mine", T0 - timedelta(minutes=1))
    await env.schedule("theirs", T0 - timedelta(minutes=30), kind="other")
    registry = CollectorRegistry()
    scheduler = env.scheduler({"note": recording(env)}, metrics_registry=registry, service="case")
    assert await scheduler.fire_due() == 1
    assert (await env.get("theirs")).state is TimerState.SCHEDULED
    assert registry.get_sample_value("timers_overdue_seconds", {"service": "case"}) == 1800.0
    assert (
        registry.get_sample_value("timers_fired_total", {"service": "case", "kind": "note"}) == 1.0
    )


async def test_metrics_count_fired_retried_and_failed_timers(env: Env) -> None:
    await env.schedule("ok", T0)
    await env.schedule("bad", T0)
    registry = CollectorRegistry()
    scheduler = env.scheduler(
        {"note": recording(env, fail={"bad"})},
        metrics_registry=registry,
        service="complaint",
        max_attempts=2,
        retry_delay=timedelta(seconds=30),
    )
    labels = {"service": "complaint", "kind": "note"}
    await scheduler.fire_due()
    assert registry.get_sample_value("timers_fired_total", labels) == 1.0
    assert registry.get_sample_value("timers_retried_total", labels) == 1.0
    assert registry.get_sample_value("timers_failed_total", labels) is None
    assert registry.get_sample_value("timers_overdue_seconds", {"service": "complaint"}) == 0.0

    env.clock.advance(timedelta(seconds=40))
    await scheduler.fire_due()
    assert registry.get_sample_value("timers_failed_total", labels) == 1.0
    assert registry.get_sample_value("timers_retried_total", labels) == 1.0


async def test_run_fires_full_batches_back_to_back_and_stops_promptly(env: Env) -> None:
    for i in range(5):
        await env.schedule(f"t{i}", T0 - timedelta(seconds=5 - i))
    all_fired = asyncio.Event()
    record = recording(env)

    async def handle(timer: Timer, uow: UnitOfWork) -> None:
        await record(timer, uow)
        if timer.key == "t4":
            all_fired.set()

    # A poll interval of an hour: only "full batch, go on at once" can fire all five.
    scheduler = env.scheduler({"note": handle}, batch_size=2, poll_interval=3600)
    task = asyncio.create_task(scheduler.run())
    try:
        await asyncio.wait_for(all_fired.wait(), timeout=10)
        await asyncio.wait_for(scheduler.close(), timeout=10)  # interrupts the hour's wait
        await asyncio.wait_for(task, timeout=10)
    finally:
        task.cancel()
    assert await env.effects() == [f"t{i}" for i in range(5)]


async def test_run_survives_database_errors(env: Env) -> None:
    await env.schedule("t", T0)
    fired = asyncio.Event()
    failures = 3

    def flaky_uow() -> UnitOfWork:
        nonlocal failures
        if failures:
            failures -= 1
            raise sa.exc.OperationalError("connect", {}, OSError("database is restarting"))
        return env.db.uow()

    async def handle(timer: Timer, uow: UnitOfWork) -> None:
        fired.set()

    scheduler = TimerScheduler(
        flaky_uow,
        env.table,
        {"note": handle},
        env.clock,
        poll_interval=3600,
        max_backoff=0.01,
    )
    task = asyncio.create_task(scheduler.run())
    try:
        await asyncio.wait_for(fired.wait(), timeout=10)
        await asyncio.wait_for(scheduler.close(), timeout=10)
        await asyncio.wait_for(task, timeout=10)
    finally:
        task.cancel()
    assert failures == 0
    assert scheduler.last_error is None  # recovered
    assert (await env.get("t")).state is TimerState.FIRED


# --- the migration matches the table --------------------------------------------------------


def test_the_alembic_operations_create_exactly_the_timers_table(tmp_path: Path) -> None:
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    table = timers.add_timers_table(metadata)
    assert timers.add_timers_table(metadata) is table
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'migrated.db'}")
    try:
        with engine.begin() as conn:
            context = MigrationContext.configure(
                conn, opts={"target_metadata": metadata, "compare_type": True}
            )
            with Operations.context(context):
                create_timers_table()
            assert compare_metadata(context, metadata) == []
            inspector = sa.inspect(conn)
            assert inspector.get_pk_constraint("timers")["name"] == "pk_timers"
            assert [u["name"] for u in inspector.get_unique_constraints("timers")] == [
                "uq_timers_timer_key"
            ]
            assert [c["name"] for c in inspector.get_check_constraints("timers")] == [
                "ck_timers_state"
            ]
            with Operations.context(context):
                drop_timers_table()
            assert not sa.inspect(conn).has_table("timers")
    finally:
        engine.dispose()


async def test_schedule_new_inserts_many_timers_that_fire_like_the_others(env: Env) -> None:
    new = [
        timers.NewTimer(
            key=f"bucket:{i}",
            kind="note",
            subject=f"case-{i}",
            due_at=T0 + timedelta(hours=i),
            payload={"n": i},
        )
        for i in range(1, 6)
    ]
    async with env.db.uow() as uow:
        assert await timers.schedule_new(uow.session, new, T0) == 5
        await uow.commit()
    assert (await env.get("bucket:3")).payload == {"n": 3}
    env.clock.set(T0 + timedelta(hours=3))
    assert await env.scheduler({"note": recording(env)}).fire_due() == 3
    assert await env.effects() == ["bucket:1", "bucket:2", "bucket:3"]
