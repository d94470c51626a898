"""Over Kafka: a complaint reported during a call (contact.events) opens a ticket with the
call's recording attached, and the debtor's earlier recording from the read model; an SMS
sent to the debtor afterwards is attached to the open ticket."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy import text

from collect_common.clock import FrozenClock
from collect_common.events.contact import ComplaintReported, SmsSent
from collect_common.events.types import CallCompleted
from collect_common.security.auth import Role, TokenService
from collect_common.settings import DEV_TOKEN_SECRET
from collect_common.testing.kafka import publish, start_group_at_end
from collect_common.testing.probe import wait_until
from complaint_svc.main import create_app
from complaint_svc.settings import Settings

pytestmark = [pytest.mark.postgres, pytest.mark.kafka]
TOPICS = ["case.events", "contact.events"]


async def test_a_complaint_reported_on_kafka_opens_a_ticket_with_the_recording(
    pg_url: str, kafka_bootstrap: str
) -> None:
    clock = FrozenClock(datetime(2026, 11, 28, 2, 0, tzinfo=UTC))
    group = "complaint-svc-test-" + uuid.uuid4().hex[:8]
    await start_group_at_end(kafka_bootstrap, group, *TOPICS)
    settings = Settings(
        database_url=pg_url,
        kafka_bootstrap_servers=kafka_bootstrap,
        relay_enabled=False,
        scheduler_enabled=False,
        consumer_group=group,
        log_json=False,
    )
    app = create_app(settings, clock)
    token = TokenService(DEV_TOKEN_SECRET, "collect-platform", clock).issue(
        "handler-1", [Role.COMPLAINT]
    )
    suffix = uuid.uuid4().hex[:8]
    debtor_id, case_id, call_id = f"debtor-{suffix}", f"case-{suffix}", f"call-{suffix}"
    earlier = CallCompleted(
        debtor_id=debtor_id,
        case_id=case_id,
        contact_id=f"call-earlier-{suffix}",
        agent_id="agent-7",
        started_at=clock.now() - timedelta(days=2),
        duration_seconds=90,
        disposition="answered",
        recording_uri=f"s3://recordings/{suffix}/earlier.wav",
    )
    complaint = ComplaintReported(
        debtor_id=debtor_id,
        case_id=case_id,
        call_id=call_id,
        agent_id="agent-7",
        recording_uri=f"s3://recordings/{suffix}/complaint.wav",
        reported_at=clock.now(),
    )
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app),
                base_url="http://complaint-svc",
                headers={"Authorization": f"Bearer {token}"},
            ) as api,
        ):
            await publish(producer, earlier, time=clock.now(), source="/contact-svc")
            await publish(producer, complaint, time=clock.now(), source="/contact-svc")
            await publish(
                producer, complaint, time=clock.now(), source="/contact-svc"
            )  # the same call again: no second ticket
            runtime = app.state.runtime
            found: list[Any] = []

            async def opened() -> bool:
                async with runtime.engine.connect() as conn:
                    ids = (
                        await conn.execute(
                            text("SELECT id FROM complaint_tickets WHERE call_id = :c"),
                            {"c": call_id},
                        )
                    ).all()
                found[:] = ids
                return bool(ids)

            await wait_until(opened, timeout=30, what="the reported complaint's ticket")
            r = await api.get(f"/v1/tickets/{found[0][0]}")
            assert r.status_code == 200
            t = r.json()
            assert (t["channel"], t["case_id"], t["debtor_id"], t["agent_id"]) == (
                "contact",
                case_id,
                debtor_id,
                "agent-7",
            )
            assert {(e["kind"], e["recording_uri"], e["call_id"]) for e in t["evidence"]} == {
                ("recording", complaint.recording_uri, call_id),
                ("recording", earlier.recording_uri, earlier.contact_id),
            }
            async with runtime.engine.connect() as conn:
                count = (
                    await conn.execute(
                        text("SELECT count(*) FROM complaint_tickets WHERE debtor_id = :d"),
                        {"d": debtor_id},
                    )
                ).scalar_one()
            assert count == 1

            sent = SmsSent(
                debtor_id=debtor_id,
                message_id=f"sms-{suffix}",
                case_id=case_id,
                template_id="tpl-remind",
                template_version=1,
                filing_number="F-1",
                text_sha256="0" * 64,
                provider="sandbox",
                provider_id=f"p-{suffix}",
                sent_at=clock.now() + timedelta(minutes=5),
            )
            await publish(producer, sent, time=clock.now(), source="/contact-svc")

            async def sms_attached() -> bool:
                r = await api.get(f"/v1/tickets/{found[0][0]}")
                return any(e["reference"] == sent.message_id for e in r.json()["evidence"])

            await wait_until(sms_attached, timeout=10, what="the SMS attached to the ticket")
    finally:
        await producer.stop()
