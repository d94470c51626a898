"""Kafka for tests: read or consume only what a test produces, and publish events.

Tests share one broker per session; these start readers and consumer groups at
the current end of the platform topics, so earlier tests' messages are never seen.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from collect_common.bus.topics import platform_topics
from collect_common.events.catalogue import Event
from collect_common.events.codec import wrap


def platform_partitions(*topics: str) -> list[TopicPartition]:
    """Every partition of the named platform topics (partition counts from topics.toml)."""
    found = [
        TopicPartition(spec.name, p)
        for spec in platform_topics()
        if spec.name in topics
        for p in range(spec.partitions)
    ]
    if {tp.topic for tp in found} != set(topics):
        raise ValueError(f"not platform topics: {set(topics) - {tp.topic for tp in found}}")
    return found


async def reader_at_end(bootstrap: str, *topics: str) -> AIOKafkaConsumer:
    """A started reader assigned to ``topics``, positioned after everything already there.

    The caller stops it. It gets a group of its own only so stopping it is clean.
    """
    parts = platform_partitions(*topics)
    reader = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        group_id="test-reader-" + uuid.uuid4().hex[:8],
    )
    await reader.start()
    reader.assign(parts)
    await reader.seek_to_end(*parts)
    for tp in parts:
        await reader.position(tp)
    return reader


async def start_group_at_end(bootstrap: str, group: str, *topics: str) -> None:
    """Commit the current end of ``topics`` for ``group``: its consumer starts after it."""
    reader = await reader_at_end(bootstrap, *topics)
    try:
        parts = platform_partitions(*topics)
        positions = {tp: await reader.position(tp) for tp in parts}
    finally:
        await reader.stop()
    committer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )
    await committer.start()
    try:
        committer.assign(list(positions))
        await committer.commit(positions)
    finally:
        await committer.stop()


async def publish(
    producer: AIOKafkaProducer, event: Event, *, time: datetime, source: str = "/test-producer"
) -> None:
    """Send one catalogued event as a service would: enveloped, keyed by its aggregate."""
    envelope = wrap(event, source=source, time=time)
    await producer.send_and_wait(
        event.topic, envelope.to_bytes(), key=envelope.subject.encode("utf-8")
    )
