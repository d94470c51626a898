"""The runtime's timer scheduler on SQLite with a frozen clock: time is moved, never waited for."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from collect_common import timers
from collect_common.clock import FrozenClock
from collect_common.db import UnitOfWork, new_metadata
from collect_common.runtime import ServiceRuntime
from collect_common.settings import ServiceSettings
from collect_common.timers import Timer, TimerState, add_timers_table

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


class Recorder:
    def __init__(self) -> None:
        self.fired: list[str] = []
        self.event = asyncio.Event()

    async def __call__(self, timer: Timer, uow: UnitOfWork) -> None:
        self.fired.append(timer.key)
        self.event.set()


def _settings(tmp_path: Path, **over: object) -> ServiceSettings:
    values: dict[str, object] = {
        "service_name": "timers-test",
        "database_url": f"sqlite+aiosqlite:///{tmp_path}/t.db",
        "relay_enabled": False,
        "consumer_enabled": False,
        "migrate_on_start": False,
        "log_json": False,
        "scheduler_poll_seconds": 0.01,
    }
    values.update(over)
    return ServiceSettings(**values)  # type: ignore[arg-type]


async def _runtime(
    tmp_path: Path, recorder: Recorder, clock: FrozenClock, **over: object
) -> ServiceRuntime:
    metadata = new_metadata()
    add_timers_table(metadata)
    runtime = ServiceRuntime(
        settings=_settings(tmp_path, **over),
        metadata=metadata,
        clock=clock,
        timer_handlers={"note": recorder},
    )
    async with runtime.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    return runtime


async def _schedule(runtime: ServiceRuntime, key: str, due_at: datetime) -> None:
    async with runtime.uow() as uow:
        await timers.schedule(
            uow.session, key=key, kind="note", subject="s-1", due_at=due_at, now=T0
        )
        await uow.commit()


async def _state(runtime: ServiceRuntime, key: str) -> TimerState:
    async with runtime.sessions() as session:
        timer = await timers.get(session, key)
    assert timer is not None
    return timer.state


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(T0)


@pytest.fixture
async def stopped(
    tmp_path: Path, clock: FrozenClock
) -> AsyncIterator[tuple[ServiceRuntime, Recorder]]:
    """A runtime whose scheduler is built but not running in the background."""
    recorder = Recorder()
    runtime = await _runtime(tmp_path, recorder, clock, scheduler_enabled=False)
    await runtime.start()
    try:
        yield runtime, recorder
    finally:
        await runtime.stop()


async def test_a_due_timer_fires_through_the_runtimes_scheduler(
    stopped: tuple[ServiceRuntime, Recorder], clock: FrozenClock
) -> None:
    runtime, recorder = stopped
    assert runtime.scheduler is not None
    await _schedule(runtime, "note:1", T0 + timedelta(days=2))
    assert await runtime.scheduler.fire_due() == 0  # not yet due
    clock.advance(timedelta(days=2))
    assert await runtime.scheduler.fire_due() == 1
    assert recorder.fired == ["note:1"]
    assert await _state(runtime, "note:1") == TimerState.FIRED
    assert await runtime.scheduler.fire_due() == 0  # fired once only


async def test_scheduler_disabled_builds_it_but_spawns_no_task(
    stopped: tuple[ServiceRuntime, Recorder],
) -> None:
    runtime, _ = stopped
    assert runtime.scheduler is not None
    assert not [t for t in asyncio.all_tasks() if t.get_name().endswith(":timer-scheduler")]
    assert runtime.describe()["scheduler"] == {"running": False, "last_error": None}


async def test_start_runs_the_scheduler_in_the_background_and_stop_ends_it(
    tmp_path: Path, clock: FrozenClock
) -> None:
    recorder = Recorder()
    runtime = await _runtime(tmp_path, recorder, clock)
    await _schedule(runtime, "note:bg", T0 - timedelta(minutes=1))  # fell due while down
    await runtime.start()
    try:
        await asyncio.wait_for(recorder.event.wait(), timeout=10)
        assert recorder.fired == ["note:bg"]
        tasks = [t for t in asyncio.all_tasks() if t.get_name() == "timers-test:timer-scheduler"]
        assert len(tasks) == 1
    finally:
        await runtime.stop()
    assert tasks[0].done() and not tasks[0].cancelled()


async def test_timer_handlers_need_the_timers_table(tmp_path: Path, clock: FrozenClock) -> None:
    with pytest.raises(ValueError, match="timers table"):
        ServiceRuntime(
            settings=_settings(tmp_path),
            metadata=new_metadata(),
            clock=clock,
            timer_handlers={"note": Recorder()},
        )


async def test_without_timer_handlers_there_is_no_scheduler(
    tmp_path: Path, clock: FrozenClock
) -> None:
    runtime = ServiceRuntime(settings=_settings(tmp_path), metadata=new_metadata(), clock=clock)
    assert runtime.scheduler is None
    assert runtime.describe()["scheduler"] is None
    await runtime.engine.dispose()
