"""Contact events on Kafka through the batch path; a redelivery of all of them changes nothing."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from qa_test_helpers import NOW, attempt, completed, settings_for
from sqlalchemy import func, select

from collect_common.bus.consumer import ConsumerRunner
from collect_common.clock import FrozenClock
from collect_common.events.codec import wrap
from collect_common.testing.probe import wait_until
from qa_svc.adapters.tables import alerts, contact_events
from qa_svc.entrypoints.consumer import handlers
from qa_svc.main import create_app
from qa_svc.service_layer.live_rules import LiveRules

pytestmark = [pytest.mark.postgres, pytest.mark.kafka]
H = timedelta(hours=1)


def _runner(
    runtime: Any, topic: str, kafka: str, name: str, group: str, clock: Any, max_batch: int = 500
) -> Any:
    return ConsumerRunner(
        max_batch=max_batch,
        name=name,
        topics=[topic],
        bootstrap=kafka,
        uow_factory=runtime.uow,
        processed=runtime.processed,
        handlers=handlers(lambda: runtime.context_of(LiveRules), clock),
        clock=clock,
        consumer_options={"group_id": group},
    )


async def _drain(runner: ConsumerRunner, n: int) -> None:
    await runner.start()
    try:

        async def done() -> bool:
            await runner.poll_once()
            s = runner.stats
            return s.applied + s.duplicates >= n

        await wait_until(done, timeout=60, what=f"{n} events handled")
    finally:
        await runner.close()


async def _counts(runtime: Any) -> tuple[int, int, int]:
    async with runtime.sessions() as s:
        return (
            int((await s.execute(select(func.count()).select_from(alerts))).scalar_one()),
            int((await s.execute(select(func.count()).select_from(contact_events))).scalar_one()),
            int((await s.execute(select(func.count()).select_from(runtime.outbox))).scalar_one()),
        )


async def test_a_redelivered_topic_raises_nothing_new(
    pg_url: str, kafka_bootstrap: str, unique_topic, clock: FrozenClock
) -> None:
    topic = await unique_topic(partitions=3)
    debtors = [f"K-{uuid.uuid4().hex[:6]}-{i}" for i in range(4)]
    events = []
    for d in debtors:
        events += [attempt(d, NOW - (6 - i) * H) for i in range(5)]  # 3 allowed, then a breach
        events.append(completed(d, NOW - 2 * H, 3))  # too short
    app = create_app(settings_for(pg_url, kafka_bootstrap), clock)
    async with app.router.lifespan_context(app):
        runtime = app.state.runtime
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
        await producer.start()
        try:
            for event in events:
                env = wrap(event, source="/contact-svc", time=NOW, correlation_id="c")
                await producer.send(topic, env.to_bytes(), key=event.debtor_id.encode())
            await producer.flush()
        finally:
            await producer.stop()

        name = "qa-batch-" + uuid.uuid4().hex[:6]
        first = _runner(runtime, topic, kafka_bootstrap, name, name, clock)
        await _drain(first, len(events))
        assert first.stats.applied == len(events)
        assert await _counts(runtime) == (8, 20, 8)  # per debtor: one frequency, one duration

        # the same consumer gets every event again (a lost offset commit, a rebalance)
        again = _runner(runtime, topic, kafka_bootstrap, name, name + "-again", clock)
        await _drain(again, len(events))
        assert again.stats.duplicates == len(events) and again.stats.applied == 0
        assert await _counts(runtime) == (8, 20, 8)
        raised = runtime.registry.get_sample_value("alerts_raised_total", {"rule": "QA-REALTIME"})
        assert raised == 8


async def test_two_replicas_reading_the_same_events_at_once_raise_each_alert_once(
    pg_url: str, kafka_bootstrap: str, unique_topic, clock: FrozenClock
) -> None:
    """The worst case of a rebalance: two replicas of qa-svc apply the very same events at
    the same time (each from its own group, one database). Each breach raises one alert."""
    topic = await unique_topic(partitions=3)
    debtors = [f"R-{uuid.uuid4().hex[:6]}-{i}" for i in range(12)]
    events = []
    for d in debtors:
        events += [attempt(d, NOW - (6 - i) * H) for i in range(5)]  # a frequency breach
        events.append(completed(d, NOW - 2 * H, 3))  # and a duration breach
    first_app = create_app(settings_for(pg_url, kafka_bootstrap), clock)
    second_app = create_app(settings_for(pg_url, kafka_bootstrap), clock)
    async with (
        first_app.router.lifespan_context(first_app),
        second_app.router.lifespan_context(second_app),
    ):
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
        await producer.start()
        try:
            for event in events:
                env = wrap(event, source="/contact-svc", time=NOW, correlation_id="c")
                await producer.send(topic, env.to_bytes(), key=event.debtor_id.encode())
            await producer.flush()
        finally:
            await producer.stop()

        name = "qa-replicas-" + uuid.uuid4().hex[:6]  # one consumer name: one dedup ledger
        replicas = [
            # small batches, so the two interleave and race for the same events
            _runner(app.state.runtime, topic, kafka_bootstrap, name, f"{name}-{n}", clock, 4)
            for n, app in enumerate((first_app, second_app))
        ]
        await asyncio.gather(*(_drain(r, len(events)) for r in replicas))
        applied = sum(r.stats.applied for r in replicas)
        assert applied == len(events)  # each event applied by exactly one of them
        assert await _counts(first_app.state.runtime) == (24, 60, 24)  # alerts, contacts, events
