"""A suspension reaches Kafka: the outbox relay publishes it on ``qa.events`` (QA-SANCTION)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest

from collect_common.clock import FrozenClock
from collect_common.events.codec import unwrap
from collect_common.events.envelope import EventEnvelope
from collect_common.events.types import AgentSuspended
from collect_common.security.auth import Role, TokenService
from collect_common.settings import DEV_TOKEN_SECRET
from collect_common.testing.apps import service_client
from collect_common.testing.kafka import platform_partitions, reader_at_end
from qa_svc.main import create_app
from qa_svc.settings import Settings

pytestmark = [pytest.mark.postgres, pytest.mark.kafka]


async def test_a_suspension_reaches_the_qa_events_topic(
    pg_url: str, kafka_bootstrap: str, clock: FrozenClock
) -> None:
    agent = "agent-" + uuid.uuid4().hex[:8]
    reader = await reader_at_end(kafka_bootstrap, "qa.events")
    parts = platform_partitions("qa.events")
    try:
        settings = Settings(
            database_url=pg_url,
            kafka_bootstrap_servers=kafka_bootstrap,
            relay_enabled=True,
            consumer_enabled=False,
            log_json=False,
        )
        token = TokenService(DEV_TOKEN_SECRET, "collect-platform", clock).issue("qa-1", [Role.QA])
        headers = {"Authorization": f"Bearer {token}"}
        async with service_client(create_app, settings, clock, headers=headers) as api:
            for evidence in ("contact-1", "contact-2"):  # serious twice: fine, then suspension
                r = await api.post(
                    f"/v1/agents/{agent}/violations",
                    json={"severity": "serious", "rule_id": "QA-QUIET", "evidence": evidence},
                )
                assert r.status_code == 201, r.text
                clock.advance(timedelta(minutes=5))
            assert r.json()["sanction"]["sanction"] == "suspension"

            seen: list[str] = []
            suspended: AgentSuspended | None = None
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 60
            while suspended is None and loop.time() < deadline:
                batches = await reader.getmany(*parts, timeout_ms=500)
                for records in batches.values():
                    for record in records:
                        assert record.value is not None
                        event = unwrap(EventEnvelope.from_bytes(record.value))
                        if getattr(event, "agent_id", None) != agent:
                            continue
                        assert record.key == agent.encode()
                        seen.append(event.type_name)
                        if isinstance(event, AgentSuspended):
                            suspended = event
        assert suspended is not None, f"no suspension of {agent} on qa.events; saw {seen}"
        assert suspended.rule_id == "QA-SANCTION"
        assert suspended.reason == "repeated_serious"
        assert seen[0] == "qa.sanction_applied.v1"
    finally:
        await reader.stop()
