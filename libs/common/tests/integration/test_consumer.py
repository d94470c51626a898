"""The idempotent consumer over a real broker and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from sqlalchemy import select

from collect_common.bus.consumer import ConsumerRunner
from collect_common.clock import SystemClock
from collect_common.events.codec import wrap
from collect_common.testing.probe import (
    ProbeDatabase,
    probe_event_class,
    recording_handler,
    wait_until,
)

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]
HERE = Path(__file__).parent


async def _produce(bootstrap: str, topic: str, values: list[tuple[str, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        for key, value in values:
            await producer.send(topic, value=value, key=key.encode())
        await producer.flush()
    finally:
        await producer.stop()


def _envelopes(probe, n: int, *, keys: int = 7, fail: set[int] | None = None):
    clock = SystemClock()
    out = []
    for i in range(n):
        ev = probe(stream=f"debtor-{i % keys}", seq=i, fail=i in (fail or set()))
        out.append((ev.partition_key, wrap(ev, source="/test", time=clock.now()).to_bytes()))
    return out


def _run_consumer(**kw) -> subprocess.CompletedProcess[str]:
    args = [sys.executable, str(HERE / "consumer_process.py")]
    for k, v in kw.items():
        args += [f"--{k.replace('_', '-')}", str(v)]
    return subprocess.run(args, capture_output=True, text=True, timeout=180)


async def test_consumer_killed_between_db_commit_and_offset_commit_changes_nothing_on_redelivery(
    pg_url: str, kafka_bootstrap: str, unique_topic
) -> None:
    topic = await unique_topic(partitions=3)
    name = "kill_" + uuid.uuid4().hex[:8]
    probe = probe_event_class(topic, name)
    db = await ProbeDatabase(pg_url).create()
    total = 300
    await _produce(kafka_bootstrap, topic, _envelopes(probe, total))
    common = {
        "bootstrap": kafka_bootstrap,
        "db": pg_url,
        "topic": topic,
        "name": name,
        "group": f"group-{name}",
        "expect": total,
        "batch": 50,
    }

    killed = await asyncio.to_thread(_run_consumer, kill_after_batches=1, **common)
    assert killed.returncode == -9, killed.stderr[-2000:]
    applied_before_kill = await db.count()
    assert 0 < applied_before_kill < total

    # The offsets of that batch never reached Kafka.
    check = AIOKafkaConsumer(
        bootstrap_servers=kafka_bootstrap, group_id=common["group"], enable_auto_commit=False
    )
    await check.start()
    try:
        committed = [await check.committed(TopicPartition(topic, p)) for p in range(3)]
    finally:
        await check.stop()
    assert committed == [None, None, None]

    restarted = await asyncio.to_thread(_run_consumer, **common)
    assert restarted.returncode == 0, restarted.stderr[-2000:]
    stats = json.loads(restarted.stdout.strip().splitlines()[-1])
    assert stats["duplicates"] == applied_before_kill  # redelivered, recognised, skipped
    assert stats["applied"] == total - applied_before_kill

    async with db.sessions() as s:
        seqs = (await s.scalars(select(db.effects.c.seq))).all()
    assert sorted(seqs) == list(range(total))  # each event applied exactly once
    await db.dispose()


async def test_poison_messages_go_to_dead_letter_topic_and_the_rest_are_processed(
    pg_url: str, kafka_bootstrap: str, unique_topic
) -> None:
    topic = await unique_topic(partitions=1)
    probe = probe_event_class(topic)
    db = await ProbeDatabase(pg_url).create()
    good = _envelopes(probe, 6, keys=1, fail={3})  # event 3's handler always raises
    messages = [*good[:2], ("debtor-0", b"{not json"), *good[2:]]
    await _produce(kafka_bootstrap, topic, messages)

    runner = ConsumerRunner(
        name="poison-" + uuid.uuid4().hex[:6],
        topics=[topic],
        bootstrap=kafka_bootstrap,
        uow_factory=db.uow,
        processed=db.processed,
        handlers={probe.type_name: recording_handler(db.effects)},
        clock=db.clock,
        max_attempts=2,
        retry_backoff=0,
    )
    await runner.start()
    try:

        async def settled() -> bool:
            await runner.poll_once()
            return runner.stats.applied + runner.stats.dead_lettered >= 7

        await wait_until(settled, timeout=60, what="all seven messages handled")
    finally:
        await runner.close()

    async with db.sessions() as s:
        seqs = (await s.scalars(select(db.effects.c.seq).order_by(db.effects.c.id))).all()
    assert seqs == [0, 1, 2, 4, 5]  # everything after the poison was processed, in order
    assert runner.stats.dead_lettered == 2
    assert await db.count(db.processed, db.processed.c.outcome == "dead_lettered") == 1

    dlq = AIOKafkaConsumer(
        topic + ".dlq",
        bootstrap_servers=kafka_bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await dlq.start()
    try:
        got = []
        while len(got) < 2:
            batch = await dlq.getmany(timeout_ms=5000)
            assert batch, "dead-letter topic stayed empty"
            got += [m for msgs in batch.values() for m in msgs]
    finally:
        await dlq.stop()
    errors = [dict(m.headers)["dlq_error"].decode() for m in got]
    assert any("undecodable" in e for e in errors)
    assert any("probe event 3 is set to fail" in e for e in errors)
    assert got[0].value == b"{not json"  # the original bytes are kept for replay
    assert dict(got[1].headers)["dlq_attempts"] == b"2"
    await db.dispose()
