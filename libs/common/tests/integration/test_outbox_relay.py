"""Outbox and relay over a real broker and PostgreSQL: nothing lost while Kafka is down."""

from __future__ import annotations

import asyncio
from collections import defaultdict

import pytest
from sqlalchemy import func, select

from collect_common.bus.consumer import ConsumerRunner
from collect_common.bus.relay import OutboxRelay, idempotent_producer
from collect_common.bus.topics import TopicSpec, create_topics
from collect_common.clock import SystemClock
from collect_common.db import UnitOfWork, create_engine, session_factory
from collect_common.testing.probe import (
    probe_event_class,
    probe_metadata,
    recording_handler,
    wait_until,
)

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

EVENTS = 1000
KEYS = 20


async def test_events_committed_while_broker_down_are_all_delivered_once_in_key_order(
    pg_url: str, restartable_kafka
) -> None:
    broker = restartable_kafka
    topic = "relay.outage"
    await create_topics(broker.bootstrap, [TopicSpec(topic, 4), TopicSpec(topic + ".dlq", 1)])
    Probe = probe_event_class(topic)
    metadata, effects = probe_metadata()
    engine = create_engine(pg_url)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    sessions = session_factory(engine)
    clock = SystemClock()
    outbox = metadata.tables["outbox"]

    broker.stop()

    # A service keeps committing state changes while the broker is down.
    for start in range(0, EVENTS, 100):
        uow = UnitOfWork(sessions, source="/test", clock=clock, outbox=outbox)
        async with uow:
            uow.emit(
                *(Probe(stream=f"debtor-{i % KEYS}", seq=i) for i in range(start, start + 100))
            )
            await uow.commit()

    relay = OutboxRelay(
        sessions,
        outbox,
        lambda: idempotent_producer(broker.bootstrap, request_timeout_ms=3000),
        clock=clock,
        service="test",
        batch_size=250,
        max_backoff=0.5,
    )
    relay_task = asyncio.create_task(relay.run())
    try:
        await wait_until(lambda: _has_error(relay), timeout=30, what="relay to notice the outage")
        assert await relay.backlog() == EVENTS  # nothing published, nothing lost

        broker.start()
        await wait_until(lambda: _backlog_is(relay, 0), timeout=90, what="backlog to drain")
    finally:
        await relay.close()
        relay_task.cancel()
        await asyncio.gather(relay_task, return_exceptions=True)

    # The consumer's effects: every event exactly once, in commit order per key.
    runner = ConsumerRunner(
        name="relay-outage-consumer",
        topics=[topic],
        bootstrap=broker.bootstrap,
        uow_factory=lambda: UnitOfWork(sessions, source="/test", clock=clock, outbox=outbox),
        processed=metadata.tables["processed_events"],
        handlers={Probe.type_name: recording_handler(effects)},
        clock=clock,
    )
    await runner.start()
    try:

        async def all_applied() -> bool:
            await runner.poll_once()
            return await _count(sessions, effects) >= EVENTS

        await wait_until(all_applied, timeout=60, what="consumer to apply every event")
    finally:
        await runner.close()

    async with sessions() as s:
        rows = (
            await s.execute(select(effects.c.event_key, effects.c.seq).order_by(effects.c.id))
        ).all()
    assert len(rows) == EVENTS
    assert len({r.seq for r in rows}) == EVENTS
    per_key: dict[str, list[int]] = defaultdict(list)
    for r in rows:
        per_key[r.event_key].append(r.seq)
    assert len(per_key) == KEYS
    for key, seqs in per_key.items():
        assert seqs == sorted(seqs), f"events of {key} applied out of order"
    await engine.dispose()


async def _has_error(relay: OutboxRelay) -> bool:
    return relay.last_error is not None


async def _backlog_is(relay: OutboxRelay, n: int) -> bool:
    return await relay.backlog() == n


async def _count(sessions, table) -> int:
    async with sessions() as s:
        return int(await s.scalar(select(func.count()).select_from(table)) or 0)
