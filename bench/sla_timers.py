"""Durable timers on PostgreSQL: does a scheduler tick cost what is due or what is pending,
and how late do timers fire at 1,000 due per second (`make bench` runs it through
bench/run.py; `python bench/sla_timers.py` runs it alone).

1. tick cost vs pending: one ``TimerScheduler.fire_due()`` tick (batch_size 1,000, a
   trivial handler) firing the 1,000 due timers of a table holding 1,000,000 scheduled
   timers, divided by the same tick on a table holding 10,000 (each table in a fresh
   database, rows inserted with ``INSERT ... SELECT generate_series`` and then ANALYZEd).
   Between ticks the 1,000 fired timers are re-armed (``state = 'scheduled'``); the ticks
   on the two tables are interleaved, BENCH_TIMER_TICKS of each after one warm-up, and
   the medians compared. Goal: <= 2 (a maximum: the cost follows what is due).
2. firing lag: 5,000 timers due at t0 + i/1000 s (1,000 due per second for 5 s), the
   scheduler loop running on the system clock (poll_interval 0.05 s, the default
   batch_size); each handler records real now - due_at. Goal: p99 < 2,000 ms.

Kafka is not used. PostgreSQL: DATABASE_URL, else started here. Figures go to
bench/results.json and are printed.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text

from collect_common.clock import FrozenClock, SystemClock
from collect_common.db import UnitOfWork
from collect_common.testing.infra import async_url, create_database
from collect_common.testing.probe import ProbeDatabase
from collect_common.timers import (
    NewTimer,
    Timer,
    TimerScheduler,
    add_timers_table,
    schedule_new,
)

LARGE = int(os.environ.get("BENCH_TIMERS_LARGE", "1000000"))
SMALL = int(os.environ.get("BENCH_TIMERS_SMALL", "10000"))
DUE = 1000
TICKS = int(os.environ.get("BENCH_TIMER_TICKS", "5"))
LAG_RATE = 1000  # timers due per second
LAG_SECONDS = 5
LAG_LEAD = 2.0  # seconds between scheduling and the first due instant
GOAL = 2.0
LAG_GOAL_MS = 2000.0
KIND = "bench.sla"


async def _noop(_timer: Timer, _uow: UnitOfWork) -> None:
    return None


async def _fresh_db(server_url: str, prefix: str, clock: Any) -> tuple[ProbeDatabase, Any]:
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    create_database(server_url, name)
    url = async_url(server_url.rsplit("/", 1)[0] + "/" + name)
    db = ProbeDatabase(url, clock=clock)
    table = add_timers_table(db.metadata)
    await db.create()
    return db, table


async def _fill(db: ProbeDatabase, pending: int, t0: datetime) -> None:
    """``pending`` scheduled timers: the first DUE are due before t0, the rest hours later."""
    async with db.engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO timers (timer_key, kind, subject, due_at, state, payload, "
                "attempts, created_at) "
                "SELECT 'bench:' || g, :kind, 'subject-' || (g % 50000), "
                "CASE WHEN g <= CAST(:due AS integer) "
                "THEN CAST(:t0 AS timestamptz) - g * interval '1 millisecond' "
                "ELSE CAST(:t0 AS timestamptz) + interval '1 hour' + g * interval '1 second' END, "
                "'scheduled', '{}', 0, CAST(:t0 AS timestamptz) "
                "FROM generate_series(1, CAST(:n AS integer)) AS g"
            ),
            {"kind": KIND, "due": DUE, "t0": t0, "n": pending},
        )
    async with db.engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text("ANALYZE timers"))


async def _rearm(db: ProbeDatabase) -> None:
    async with db.engine.begin() as conn:
        await conn.execute(
            text("UPDATE timers SET state = 'scheduled', fired_at = NULL WHERE state = 'fired'")
        )


async def _tick(db: ProbeDatabase, scheduler: TimerScheduler) -> float:
    started = time.perf_counter()
    fired = await scheduler.fire_due()
    elapsed = time.perf_counter() - started
    assert fired == DUE, f"tick fired {fired} of {DUE}"
    return elapsed


async def _explain(db: ProbeDatabase, t0: datetime) -> str:
    async with db.engine.connect() as conn:
        rows = await conn.execute(
            text(
                "EXPLAIN (ANALYZE, BUFFERS) SELECT * FROM timers WHERE state = 'scheduled' "
                "AND due_at <= :t0 AND kind IN (:kind) ORDER BY due_at, id LIMIT :n "
                "FOR UPDATE SKIP LOCKED"
            ),
            {"t0": t0, "kind": KIND, "n": DUE},
        )
        return " | ".join(r[0].strip() for r in rows)


async def tick_cost(server_url: str) -> dict[str, Any]:
    t0 = SystemClock().now()
    clock = FrozenClock(t0)
    cases: dict[int, tuple[ProbeDatabase, TimerScheduler]] = {}
    try:
        for pending in (LARGE, SMALL):
            db, table = await _fresh_db(server_url, "bench_timers_tick", clock)
            started = time.perf_counter()
            await _fill(db, pending, t0)
            print(
                f"  {pending:,} pending timers inserted in {time.perf_counter() - started:.1f}s",
                flush=True,
            )
            scheduler = TimerScheduler(
                db.uow, table, {KIND: _noop}, clock, batch_size=DUE, service="bench"
            )
            cases[pending] = (db, scheduler)
        runs: dict[int, list[float]] = {LARGE: [], SMALL: []}
        for rep in range(TICKS + 1):  # the first round warms up connections and caches
            for pending, (db, scheduler) in cases.items():
                elapsed = await _tick(db, scheduler)
                await _rearm(db)
                if rep:
                    runs[pending].append(elapsed)
        large, small = statistics.median(runs[LARGE]), statistics.median(runs[SMALL])
        ratio = large / small
        print(
            f"  tick: {large * 1000:.1f} ms at {LARGE:,} pending, "
            f"{small * 1000:.1f} ms at {SMALL:,} pending",
            flush=True,
        )
        figures: dict[str, Any] = {
            "due_per_tick": DUE,
            "pending_large": LARGE,
            "pending_small": SMALL,
            "ticks": TICKS,
            "tick_ms_1m_pending": round(large * 1000, 1),
            "tick_ms_10k_pending": round(small * 1000, 1),
            "tick_ms_1m_runs": [round(x * 1000, 1) for x in runs[LARGE]],
            "tick_ms_10k_runs": [round(x * 1000, 1) for x in runs[SMALL]],
            "ratio": round(ratio, 3),
            "goal": GOAL,
            "goal_kind": "max",
            "meets_goal": ratio <= GOAL,
        }
        if ratio > GOAL:
            figures["due_select_plan_1m"] = await _explain(cases[LARGE][0], t0)
        return figures
    finally:
        for db, _scheduler in cases.values():
            await db.dispose()


async def firing_lag(server_url: str) -> dict[str, Any]:
    clock = SystemClock()
    db, table = await _fresh_db(server_url, "bench_timers_lag", clock)
    lags: list[float] = []
    total = LAG_RATE * LAG_SECONDS
    all_fired = asyncio.Event()

    async def record(timer: Timer, _uow: UnitOfWork) -> None:
        lags.append((clock.now() - timer.due_at).total_seconds())
        if len(lags) >= total:
            all_fired.set()

    try:
        now = clock.now()
        first = now + timedelta(seconds=LAG_LEAD)
        new = [
            NewTimer(
                key=f"lag:{i}",
                kind=KIND,
                subject=f"subject-{i}",
                due_at=first + timedelta(seconds=i / LAG_RATE),
            )
            for i in range(total)
        ]
        async with db.sessions() as session:
            await schedule_new(session, new, now)
            await session.commit()
        assert clock.now() < first, "scheduling took longer than the lead time"
        scheduler = TimerScheduler(
            db.uow, table, {KIND: record}, clock, poll_interval=0.05, service="bench"
        )
        task = asyncio.create_task(scheduler.run())
        waiter = asyncio.create_task(all_fired.wait())
        await asyncio.wait(
            {task, waiter},
            timeout=LAG_LEAD + LAG_SECONDS + 60,
            return_when=asyncio.FIRST_COMPLETED,
        )
        waiter.cancel()
        await scheduler.close()
        await task
        assert len(lags) >= total, f"fired {len(lags)} of {total} ({scheduler.last_error})"
        ordered = sorted(lags)
        p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000
        p50 = statistics.median(ordered) * 1000
        print(f"  firing lag: p50 {p50:.0f} ms, p99 {p99:.0f} ms, max {ordered[-1] * 1000:.0f} ms")
        return {
            "lag_timers": total,
            "lag_due_per_s": LAG_RATE,
            "firing_lag_p50_ms": round(p50, 1),
            "firing_lag_p99_ms": round(p99, 1),
            "firing_lag_max_ms": round(ordered[-1] * 1000, 1),
            "lag_goal_ms": LAG_GOAL_MS,
            "meets_lag_goal": p99 < LAG_GOAL_MS,
        }
    finally:
        await db.dispose()


async def bench(bootstrap: str, server_url: str) -> dict[str, Any]:
    del bootstrap  # timers need PostgreSQL only
    figures = await tick_cost(server_url)
    figures.update(await firing_lag(server_url))
    return {"sla_timers": figures}


def header(kafka_kind: str, pg_kind: str) -> str:
    del kafka_kind
    return (
        f"sla_timers: tick with {DUE:,} due at {LARGE:,} vs {SMALL:,} pending x {TICKS}; "
        f"firing lag at {LAG_RATE:,}/s for {LAG_SECONDS}s; PostgreSQL {pg_kind}"
    )


if __name__ == "__main__":
    import run

    sys.exit(run.main(["sla_timers"]))
