"""Batch handlers over a real broker and PostgreSQL: a run of events in one call, each
event still applied once, a failing event retried and dead-lettered on its own."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence

import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy import select

from collect_common.bus.consumer import BatchHandler, ConsumerRunner, HandlerContext
from collect_common.clock import SystemClock
from collect_common.events.catalogue import Event
from collect_common.events.codec import wrap
from collect_common.testing.probe import (
    HandlerFailed,
    ProbeDatabase,
    ProbeEvent,
    probe_event_class,
    wait_until,
)

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


class RecordingBatch(BatchHandler):
    """One multi-row insert of effects per call; one follow-up event per event applied."""

    def __init__(
        self, db: ProbeDatabase, probe: type[ProbeEvent], follow_up: type[ProbeEvent]
    ) -> None:
        self.db = db
        self.event_type = probe.type_name
        self.follow_up = follow_up
        self.calls: list[int] = []
        self.failed_calls: list[int] = []

    async def handle_batch(self, items: Sequence[tuple[Event, HandlerContext]]) -> None:
        self.calls.append(len(items))
        rows = []
        for event, ctx in items:
            assert isinstance(event, ProbeEvent)
            if event.fail:
                self.failed_calls.append(len(items))
                raise HandlerFailed(f"probe event {event.seq} is set to fail")
            rows.append({"event_key": event.stream, "seq": event.seq, "event_id": ctx.envelope.id})
            ctx.emit(self.follow_up(stream=event.stream, seq=event.seq))
        await items[0][1].session.execute(self.db.effects.insert(), rows)


async def _produce(bootstrap: str, topic: str, events: list[ProbeEvent]) -> dict[int, str]:
    """Publish ``events``; their envelope ids by sequence number."""
    clock = SystemClock()
    ids = {}
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        for ev in events:
            env = wrap(ev, source="/test", time=clock.now(), correlation_id=f"corr-{ev.seq}")
            ids[ev.seq] = env.id
            await producer.send(topic, value=env.to_bytes(), key=ev.partition_key.encode())
        await producer.flush()
    finally:
        await producer.stop()
    return ids


def _runner(
    db: ProbeDatabase, topic: str, kafka: str, name: str, handler: RecordingBatch, group: str
) -> ConsumerRunner:
    return ConsumerRunner(
        name=name,
        topics=[topic],
        bootstrap=kafka,
        uow_factory=db.uow,
        processed=db.processed,
        handlers={handler.event_type: handler},
        clock=db.clock,
        max_attempts=2,
        retry_backoff=0,
        consumer_options={"group_id": group},
    )


async def _drain(runner: ConsumerRunner, n: int) -> None:
    await runner.start()
    try:

        async def done() -> bool:
            await runner.poll_once()
            s = runner.stats
            return s.applied + s.duplicates + s.dead_lettered >= n

        await wait_until(done, timeout=60, what=f"{n} events handled")
    finally:
        await runner.close()


async def test_a_batch_handler_gets_runs_of_events_and_a_redelivery_changes_nothing(
    pg_url: str, kafka_bootstrap: str, unique_topic
) -> None:
    topic = await unique_topic(partitions=2)
    probe = probe_event_class(topic)
    follow_up = probe_event_class(topic + ".follow")
    db = await ProbeDatabase(pg_url).create()
    total = 120
    ids = await _produce(
        kafka_bootstrap, topic, [probe(stream=f"debtor-{i % 5}", seq=i) for i in range(total)]
    )
    handler = RecordingBatch(db, probe, follow_up)
    name = "batch-" + uuid.uuid4().hex[:6]
    await _drain(_runner(db, topic, kafka_bootstrap, name, handler, name), total)

    assert sum(handler.calls) == total
    assert max(handler.calls) > 1  # runs of events in one call, not one call per event
    async with db.sessions() as s:
        seqs = (await s.scalars(select(db.effects.c.seq))).all()
        outbox = (await s.scalars(select(db.outbox.c.payload))).all()
    assert sorted(seqs) == list(range(total))
    # each follow-up carries the event that caused it, though emitted from one call
    envelopes = [json.loads(p) for p in outbox]
    assert len(envelopes) == total
    for env in envelopes:
        seq = env["data"]["seq"]
        assert env["causationid"] == ids[seq]
        assert env["correlationid"] == f"corr-{seq}"

    # the same consumer reads the topic again from the start: every event is a duplicate
    again = RecordingBatch(db, probe, follow_up)
    runner = _runner(db, topic, kafka_bootstrap, name, again, name + "-replay")
    await _drain(runner, total)
    assert runner.stats.duplicates == total and runner.stats.applied == 0
    assert again.calls == []
    assert await db.count() == total
    assert await db.count(db.outbox) == total
    await db.dispose()


async def test_a_failing_event_is_retried_and_dead_lettered_alone(
    pg_url: str, kafka_bootstrap: str, unique_topic
) -> None:
    topic = await unique_topic(partitions=1)
    probe = probe_event_class(topic)
    follow_up = probe_event_class(topic + ".follow")
    db = await ProbeDatabase(pg_url).create()
    total = 30
    await _produce(
        kafka_bootstrap,
        topic,
        [probe(stream="debtor-0", seq=i, fail=i == 17) for i in range(total)],
    )
    handler = RecordingBatch(db, probe, follow_up)
    name = "batch-fail-" + uuid.uuid4().hex[:6]
    runner = _runner(db, topic, kafka_bootstrap, name, handler, name)
    await _drain(runner, total)

    assert runner.stats.dead_lettered == 1 and runner.stats.applied == total - 1
    async with db.sessions() as s:
        seqs = (await s.scalars(select(db.effects.c.seq).order_by(db.effects.c.id))).all()
    assert list(seqs) == [i for i in range(total) if i != 17]  # once each, in order
    assert await db.count(db.outbox) == total - 1  # the failed batch's emits rolled back
    # the failed batch was replayed one event at a time: the failing one alone, twice
    assert handler.failed_calls[-2:] == [1, 1]
    assert await db.count(db.processed, db.processed.c.outcome == "dead_lettered") == 1
    await db.dispose()
