"""A complaint outcome on Kafka reaches qa-svc's handlers once, however often it is sent
(QA-FEEDBACK): one re-check task and one violation."""

from __future__ import annotations

import asyncio
import contextlib
import uuid

import pytest
from aiokafka import AIOKafkaProducer
from qa_test_helpers import NOW, settings_for
from sqlalchemy import func, select

from collect_common.bus.consumer import ConsumerRunner
from collect_common.clock import FrozenClock
from collect_common.events.codec import wrap
from collect_common.events.complaint import ComplaintOutcomeRecorded
from collect_common.testing.probe import wait_until
from qa_svc.adapters.scoring_tables import review_tasks
from qa_svc.adapters.tables import violations
from qa_svc.entrypoints.consumer import handlers
from qa_svc.main import create_app
from qa_svc.service_layer.live_rules import LiveRules

pytestmark = [pytest.mark.postgres, pytest.mark.kafka]


async def test_an_outcome_sent_twice_on_kafka_opens_one_recheck_and_one_violation(
    pg_url: str, kafka_bootstrap: str, unique_topic, clock: FrozenClock
) -> None:
    topic = await unique_topic(partitions=3)
    ticket = "T-" + uuid.uuid4().hex[:8]
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
        event = ComplaintOutcomeRecorded(
            ticket_id=ticket,
            cycle=1,
            case_id="case-1",
            agent_id="agent-k",
            substantiated=True,
            sanction_requested=True,
            sanction_severity="minor",
            decided_at=NOW,
        )
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
        await producer.start()
        try:
            for _ in range(2):  # the same outcome twice, as two events: applied once
                env = wrap(event, source="/complaint-svc", time=NOW, correlation_id="c")
                await producer.send_and_wait(topic, env.to_bytes(), key=ticket.encode())
        finally:
            await producer.stop()
        task = asyncio.create_task(runner.run())
        try:
            await wait_until(
                lambda: _applied(runner, 2), timeout=60, what="both outcome events applied"
            )
        finally:
            await runner.stop()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, 15)
        async with runtime.sessions() as s:
            tasks = (
                await s.execute(
                    select(func.count())
                    .select_from(review_tasks)
                    .where(review_tasks.c.ticket_id == ticket)
                )
            ).scalar_one()
            kept = (
                await s.execute(
                    select(violations.c.rule_id, violations.c.evidence).where(
                        violations.c.agent_id == "agent-k"
                    )
                )
            ).all()
        assert tasks == 1
        assert [(v.rule_id, v.evidence) for v in kept] == [("QA-FEEDBACK", ticket)]


async def _applied(runner: ConsumerRunner, n: int) -> bool:
    return runner.stats.applied >= n
