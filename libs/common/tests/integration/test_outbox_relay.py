"""Outbox and relay over a real broker and PostgreSQL: nothing lost while Kafka is down."""

from __future__ import annotations

import asyncio
from collections import defaultdict

import pytest
from sqlalchemy import select

from collect_common.bus.consumer import ConsumerRunner
from collect_common.bus.relay import OutboxRelay, idempotent_producer
from collect_common.bus.topics import TopicSpec, create_topics
from collect_common.testing.probe import (
    ProbeDatabase,
    probe_event_class,
    recording_handler,
    wait_until,
)

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

EVENTS = 1000
KEYS = 20


def _relay(db: ProbeDatabase, bootstrap: str, **options: object) -> OutboxRelay:
    return OutboxRelay(
        db.sessions,
        db.outbox,
        lambda: idempotent_producer(bootstrap, request_timeout_ms=3000),
        clock=db.clock,
        service="test",
        **options,  # type: ignore[arg-type]
    )


async def test_events_committed_while_broker_down_are_all_delivered_once_in_key_order(
    pg_url: str, restartable_kafka
) -> None:
    broker = restartable_kafka
    topic = "relay.outage"
    await create_topics(broker.bootstrap, [TopicSpec(topic, 4), TopicSpec(topic + ".dlq", 1)])
    probe = probe_event_class(topic)
    db = await ProbeDatabase(pg_url).create()

    broker.stop()

    # A service keeps committing state changes while the broker is down.
    for start in range(0, EVENTS, 100):
        async with db.uow() as uow:
            uow.emit(
                *(probe(stream=f"debtor-{i % KEYS}", seq=i) for i in range(start, start + 100))
            )
            await uow.commit()

    relay = _relay(db, broker.bootstrap, batch_size=250, max_backoff=0.5)
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
        uow_factory=db.uow,
        processed=db.processed,
        handlers={probe.type_name: recording_handler(db.effects)},
        clock=db.clock,
    )
    await runner.start()
    try:

        async def all_applied() -> bool:
            await runner.poll_once()
            return await db.count() >= EVENTS

        await wait_until(all_applied, timeout=60, what="consumer to apply every event")
    finally:
        await runner.close()

    async with db.sessions() as s:
        rows = (
            await s.execute(
                select(db.effects.c.event_key, db.effects.c.seq).order_by(db.effects.c.id)
            )
        ).all()
    assert len(rows) == EVENTS
    assert len({r.seq for r in rows}) == EVENTS
    per_key: dict[str, list[int]] = defaultdict(list)
    for r in rows:
        per_key[r.event_key].append(r.seq)
    assert len(per_key) == KEYS
    for key, seqs in per_key.items():
        assert seqs == sorted(seqs), f"events of {key} applied out of order"
    await db.dispose()


async def test_a_second_relay_replica_stands_by_while_the_first_publishes(
    pg_url: str, kafka_bootstrap: str, unique_topic
) -> None:
    probe = probe_event_class(await unique_topic(partitions=1))
    db = await ProbeDatabase(pg_url).create()
    async with db.uow() as uow:
        uow.emit(*(probe(stream="debtor-1", seq=i) for i in range(10)))
        await uow.commit()

    first, second = _relay(db, kafka_bootstrap), _relay(db, kafka_bootstrap)
    try:
        assert await first.start() is True
        assert await second.start() is False  # the publisher lock is taken
        assert await second.drain() == 0
        assert await first.drain() == 10
        await first.close()  # releases the lock: the standby can take over
        assert await second.start() is True
        assert await second.drain() == 0  # nothing left, nothing sent twice
    finally:
        await first.close()
        await second.close()
        await db.dispose()


async def _has_error(relay: OutboxRelay) -> bool:
    return relay.last_error is not None


async def _backlog_is(relay: OutboxRelay, n: int) -> bool:
    return await relay.backlog() == n


@pytest.mark.parametrize("batch_size", [7, 1000])
async def test_relay_and_consumer_work_the_same_on_sqlite(
    tmp_path, kafka_bootstrap: str, unique_topic, batch_size: int
) -> None:
    """`make run` keeps each service's data in SQLite: the same bus code runs there."""
    probe = probe_event_class(await unique_topic(partitions=2))
    db = await ProbeDatabase(f"sqlite+aiosqlite:///{tmp_path}/svc.db").create()
    async with db.uow() as uow:
        uow.emit(*(probe(stream=f"debtor-{i % 3}", seq=i) for i in range(50)))
        await uow.commit()
    relay = _relay(db, kafka_bootstrap, batch_size=batch_size)
    try:
        assert await relay.drain() == 50
        assert await relay.backlog() == 0
    finally:
        await relay.close()

    runner = ConsumerRunner(
        name=f"sqlite-{batch_size}-{probe.type_name}",
        topics=[probe.topic],
        bootstrap=kafka_bootstrap,
        uow_factory=db.uow,
        processed=db.processed,
        handlers={probe.type_name: recording_handler(db.effects)},
        clock=db.clock,
    )
    await runner.start()
    try:

        async def all_applied() -> bool:
            await runner.poll_once()
            return await db.count() >= 50

        await wait_until(all_applied, timeout=60, what="50 events applied on SQLite")
    finally:
        await runner.close()
    assert await db.count() == 50
    assert await db.count(db.processed) == 50
    await db.dispose()
