"""The event bus's throughput as ratios against raw aiokafka, same run (`make bench`
runs it through bench/run.py; `python bench/bus.py` runs it alone).

1. outbox_relay_publish: events/s the outbox relay publishes from PostgreSQL
   (read, send with the idempotent producer, mark published, commit) divided by
   the events/s of a bare idempotent aiokafka producer sending the same bytes.
2. consumer_handling: events/s the idempotent consumer applies (decode and
   validate the envelope and event, dedup rows in the handler's transaction,
   offset commit) divided by the events/s of the bare aiokafka manual-commit loop
   on the same topic: getmany, json-decode each message, commit after each batch
   (aiokafka's documented at-least-once pattern, without deduplication).

Goal for both: >= 0.5 at 100,000 events. Each pair runs BENCH_REPEAT times,
interleaved, and the medians are compared (the machines are noisy). Kafka and
PostgreSQL: KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL, else started here.
Figures go to bench/results.json and are printed.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import time
import uuid
from typing import Any

from aiokafka import AIOKafkaConsumer
from sqlalchemy import delete, insert

from collect_common.bus.consumer import ConsumerRunner, HandlerContext
from collect_common.bus.relay import OutboxRelay, idempotent_producer
from collect_common.bus.topics import TopicSpec, create_topics
from collect_common.clock import SystemClock
from collect_common.db import outbox_rows
from collect_common.events.catalogue import Event
from collect_common.testing.infra import (
    async_url,
    create_database,
)
from collect_common.testing.probe import ProbeDatabase, probe_event_class

N = int(os.environ.get("BENCH_EVENTS", "100000"))
REPEAT = int(os.environ.get("BENCH_REPEAT", "3"))
PARTITIONS = 6
KEYS = 1000
GOAL = 0.5


def _events(probe: type[Event]) -> list[Event]:
    return [probe(stream=f"debtor-{i % KEYS}", seq=i) for i in range(N)]  # type: ignore[call-arg]


async def raw_produce(bootstrap: str, topic: str, rows: list[dict[str, Any]]) -> float:
    producer = idempotent_producer(bootstrap)
    await producer.start()
    try:
        started = time.perf_counter()
        futures = [
            await producer.send(topic, value=r["payload"], key=r["key"].encode()) for r in rows
        ]
        await asyncio.gather(*futures)
        return len(rows) / (time.perf_counter() - started)
    finally:
        await producer.stop()


async def relay_publish(bootstrap: str, topic: str, db_url: str, events: list[Event]) -> float:
    db = await ProbeDatabase(db_url).create()
    rows = outbox_rows(events, source="/bench", time=db.clock.now())
    for r in rows:
        r["topic"] = topic
    async with db.engine.begin() as conn:
        await conn.execute(delete(db.outbox))
        for i in range(0, len(rows), 5000):
            await conn.execute(insert(db.outbox), rows[i : i + 5000])
    relay = OutboxRelay(
        db.sessions,
        db.outbox,
        lambda: idempotent_producer(bootstrap),
        clock=db.clock,
        service="bench",
        batch_size=2000,
    )
    try:
        await relay.start()  # connect outside the timing, like the baseline's start()
        started = time.perf_counter()
        published = await relay.drain()
        rate = published / (time.perf_counter() - started)
        assert published >= len(rows), f"relay published {published} of {len(rows)}"
        return rate
    finally:
        await relay.close()
        await db.dispose()


async def raw_consume(bootstrap: str, topic: str, n: int = N) -> float:
    """The baseline consumer: aiokafka's manual-commit loop (read, decode, commit per batch)."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=_group(),
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=500,
    )
    await consumer.start()
    try:
        seen = 0
        started = 0.0
        while seen < n:
            batch = await consumer.getmany(timeout_ms=1000, max_records=500)
            if not started and batch:
                started = time.perf_counter()
            for records in batch.values():
                for record in records:
                    json.loads(record.value)  # a consumer reads what it consumes
                seen += len(records)
            if batch:
                await consumer.commit()
        return seen / (time.perf_counter() - started)
    finally:
        await consumer.stop()


async def runner_consume(bootstrap: str, topic: str, db_url: str, probe: type[Event]) -> float:
    db = await ProbeDatabase(db_url).create()
    handled = 0

    async def handle(_event: Event, _ctx: HandlerContext) -> None:
        nonlocal handled
        handled += 1

    runner = ConsumerRunner(
        name=_group(),
        topics=[topic],
        bootstrap=bootstrap,
        uow_factory=db.uow,
        processed=db.processed,
        handlers={probe.type_name: handle},
        clock=db.clock,
        max_batch=500,
    )
    await runner.start()
    try:
        started = 0.0
        while runner.stats.applied + runner.stats.duplicates < N:
            got = await runner.poll_once()
            if got and not started:
                started = time.perf_counter()
        return runner.stats.applied / (time.perf_counter() - started)
    finally:
        await runner.close()
        await db.dispose()


def _group() -> str:
    return "bench-" + uuid.uuid4().hex[:8]


async def bench(bootstrap: str, server_url: str) -> dict[str, Any]:
    probe = probe_event_class("bench.placeholder")
    events = _events(probe)
    rows = outbox_rows(events, source="/bench", time=SystemClock().now())
    produce_rates: list[float] = []
    relay_rates: list[float] = []
    consume_rates: list[float] = []
    runner_rates: list[float] = []
    for rep in range(REPEAT):
        raw_topic, relay_topic = f"bench.raw.{rep}.{_group()}", f"bench.relay.{rep}.{_group()}"
        await create_topics(
            bootstrap,
            [
                TopicSpec(raw_topic, PARTITIONS),
                TopicSpec(relay_topic, PARTITIONS),
                TopicSpec(relay_topic + ".dlq", 1),
            ],
        )
        db = f"bench_{rep}_{uuid.uuid4().hex[:6]}"
        create_database(server_url, db)
        db_url = async_url(server_url.rsplit("/", 1)[0] + "/" + db)
        produce_rates.append(await raw_produce(bootstrap, raw_topic, rows))
        relay_rates.append(await relay_publish(bootstrap, relay_topic, db_url, events))
        consume_rates.append(await raw_consume(bootstrap, relay_topic))
        runner_rates.append(await runner_consume(bootstrap, relay_topic, db_url, probe))
        print(
            f"  run {rep + 1}/{REPEAT}: produce {produce_rates[-1]:,.0f}/s  relay "
            f"{relay_rates[-1]:,.0f}/s  consume {consume_rates[-1]:,.0f}/s  runner "
            f"{runner_rates[-1]:,.0f}/s",
            flush=True,
        )

    def pair(candidate: list[float], baseline: list[float], names: tuple[str, str]) -> dict:
        c, b = statistics.median(candidate), statistics.median(baseline)
        return {
            "events": N,
            "repeats": REPEAT,
            f"{names[0]}_per_s": round(c),
            f"{names[1]}_per_s": round(b),
            f"{names[0]}_runs": [round(x) for x in candidate],
            f"{names[1]}_runs": [round(x) for x in baseline],
            "ratio": round(c / b, 3),
            "goal": GOAL,
            "meets_goal": c / b >= GOAL,
        }

    return {
        "outbox_relay_publish": pair(relay_rates, produce_rates, ("relay", "raw_producer")),
        "consumer_handling": pair(runner_rates, consume_rates, ("runner", "raw_consumer")),
    }


def header(kafka_kind: str, pg_kind: str) -> str:
    return f"bench: {N:,} events x {REPEAT} runs; Kafka {kafka_kind}, PostgreSQL {pg_kind}"


if __name__ == "__main__":
    import run

    sys.exit(run.main(["bus"]))
