"""Call events on Kafka for one debtor over the limit raise exactly one alert."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import timedelta

import pytest
from aiokafka import AIOKafkaProducer
from qa_test_helpers import NOW, attempt, settings_for
from sqlalchemy import func, select

from collect_common.bus.consumer import ConsumerRunner
from collect_common.clock import FrozenClock
from collect_common.events.codec import wrap
from collect_common.testing.probe import wait_until
from qa_svc.adapters.tables import alerts
from qa_svc.entrypoints.consumer import handlers
from qa_svc.main import create_app
from qa_svc.service_layer.live_rules import LiveRules

pytestmark = [pytest.mark.postgres, pytest.mark.kafka]


async def test_calls_over_the_limit_on_kafka_raise_exactly_one_alert(
    pg_url: str, kafka_bootstrap: str, unique_topic, clock: FrozenClock
) -> None:
    topic = await unique_topic(partitions=3)
    debtor = "D-" + uuid.uuid4().hex[:8]
    app = create_app(settings_for(pg_url, kafka_bootstrap), clock)
    async with app.router.lifespan_context(app):
        runtime = app.state.runtime
        runner = ConsumerRunner(
            name="qa-test-" + uuid.uuid4().hex[:8],
            topics=[topic],
            bootstrap=kafka_bootstrap,
            uow_factory=runtime.uow,
            processed=runtime.processed,
            handlers=handlers(lambda: runtime.context_of(LiveRules), clock),
            clock=clock,
        )
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
        await producer.start()
        try:
            for i in range(6):  # 3 allowed, 3 over: one breach
                event = attempt(debtor, NOW - timedelta(hours=6 - i))
                env = wrap(event, source="/contact-svc", time=NOW, correlation_id="c")
                await producer.send_and_wait(topic, env.to_bytes(), key=debtor.encode())
        finally:
            await producer.stop()
        task = asyncio.create_task(runner.run())
        try:
            await wait_until(lambda: _applied(runner, 6), timeout=60, what="six events applied")
        finally:
            await runner.stop()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, 15)
        async with runtime.sessions() as s:
            count = (
                await s.execute(
                    select(func.count()).select_from(alerts).where(alerts.c.debtor_id == debtor)
                )
            ).scalar_one()
        assert count == 1
        raised = runtime.registry.get_sample_value("alerts_raised_total", {"rule": "QA-REALTIME"})
        assert raised == 1


async def _applied(runner: ConsumerRunner, n: int) -> bool:
    return runner.stats.applied >= n
