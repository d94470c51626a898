"""Over Kafka: a case imported on case.events makes the debtor callable; QA suspending an
agent on qa.events makes that agent's next decision a denial (QA-SANCTION) within a second;
a complaint opened on complaint.events puts the debtor on a complaint hold (CONTACT-CONDUCT),
and the ticket closed lifts it."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from collect_common.clock import FrozenClock
from collect_common.events.complaint import ComplaintClosed
from collect_common.events.types import AgentSuspended, ComplaintOpened
from collect_common.testing.kafka import publish, start_group_at_end
from collect_common.testing.probe import wait_until
from contact_svc.main import create_app
from contact_svc.settings import Settings

from .conftest import DIALER, imported

pytestmark = [pytest.mark.postgres, pytest.mark.kafka]
URL = "/v1/contact-decisions"
TOPICS = ["case.events", "qa.events", "complaint.events"]


async def test_events_on_kafka_feed_the_decisions(pg_url: str, kafka_bootstrap: str) -> None:
    clock = FrozenClock(datetime(2026, 11, 24, 2, 0, tzinfo=UTC))  # 10:00 in Shanghai
    group = "contact-svc-test-" + uuid.uuid4().hex[:8]
    await start_group_at_end(kafka_bootstrap, group, *TOPICS)
    settings = Settings(
        database_url=pg_url,
        kafka_bootstrap_servers=kafka_bootstrap,
        relay_enabled=False,
        consumer_group=group,
        log_json=False,
    )
    app = create_app(settings, clock)
    suffix = uuid.uuid4().hex[:8]
    case_id, debtor_id, agent_id = f"case-{suffix}", f"debtor-{suffix}", f"agent-{suffix}"
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app),
                base_url="http://contact-svc",
                headers=DIALER,
            ) as api,
        ):
            unknown = await api.post(URL, json={"debtor_id": debtor_id, "channel": "call"})
            assert unknown.status_code == 404
            await publish(producer, imported(case_id, debtor_id), time=clock.now())

            async def callable_() -> bool:
                r = await api.post(
                    URL, json={"debtor_id": debtor_id, "channel": "call", "agent_id": agent_id}
                )
                return r.status_code == 200 and r.json()["allowed"] is True

            await wait_until(callable_, timeout=30, what="the imported debtor to be callable")

            await publish(
                producer,
                AgentSuspended(
                    agent_id=agent_id,
                    suspended_at=clock.now(),
                    rule_id="QA-SANCTION",
                    reason="serious violation",
                ),
                time=clock.now(),
            )
            published = time.monotonic()
            denial: dict[str, object] = {}

            async def denied() -> bool:
                # SMS: polling must not spend the debtor's calls of the day
                r = await api.post(
                    URL, json={"case_id": case_id, "channel": "sms", "agent_id": agent_id}
                )
                if r.json()["allowed"]:
                    return False
                denial.update(r.json())
                return True

            await wait_until(denied, timeout=10, what="the agent's suspension to apply")
            elapsed = time.monotonic() - published
            assert [d["rule"] for d in denial["denials"]] == ["QA-SANCTION"]  # type: ignore[attr-defined]
            assert elapsed < 1.0, f"suspension took {elapsed:.2f} s to apply"

            await publish(
                producer,
                ComplaintOpened(
                    ticket_id=f"ticket-{suffix}",
                    channel="hotline",
                    case_id=case_id,
                    opened_at=clock.now(),
                ),
                time=clock.now(),
            )
            held: dict[str, object] = {}

            async def on_hold() -> bool:
                r = await api.post(URL, json={"case_id": case_id, "channel": "sms"})
                if r.json()["allowed"]:
                    return False
                held.update(r.json())
                return True

            await wait_until(on_hold, timeout=10, what="the complaint hold to apply")
            assert [d["rule"] for d in held["denials"]] == ["CONTACT-CONDUCT"]  # type: ignore[attr-defined]
            assert held["next_allowed_at"] is None

            await publish(
                producer,
                ComplaintClosed(
                    ticket_id=f"ticket-{suffix}",
                    case_id=case_id,
                    debtor_id=debtor_id,
                    closed_at=clock.now(),
                ),
                time=clock.now(),
            )

            async def hold_lifted() -> bool:
                r = await api.post(URL, json={"case_id": case_id, "channel": "sms"})
                return r.json()["allowed"] is True

            await wait_until(hold_lifted, timeout=10, what="the closed ticket's hold to lift")
    finally:
        await producer.stop()
