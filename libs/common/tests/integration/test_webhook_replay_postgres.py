"""Webhook verification with the replay store on PostgreSQL, shared by every replica."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import MetaData

from collect_common.clock import FrozenClock
from collect_common.db import create_engine, session_factory
from collect_common.security.webhooks import (
    SqlReplayStore,
    WebhookRejected,
    WebhookVerifier,
    sign,
    webhook_deliveries_table,
)

pytestmark = pytest.mark.postgres
SECRET = b"dialer-secret-for-tests-0123456789abcdef"


async def test_replicas_sharing_postgresql_refuse_bad_stale_and_replayed_deliveries(
    pg_url: str,
) -> None:
    metadata = MetaData()
    webhook_deliveries_table(metadata)
    engine = create_engine(pg_url)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    clock = FrozenClock(datetime(2026, 11, 28, 12, 0, tzinfo=UTC))

    def replica() -> WebhookVerifier:  # each replica has its own verifier, one shared table
        return WebhookVerifier(
            {"dialer": SECRET}, clock, replay_store=SqlReplayStore(session_factory(engine))
        )

    first, second = replica(), replica()
    body = json.dumps({"call_id": "c-1", "event": "ended", "duration": 93}).encode()
    now = int(clock.now().timestamp())
    headers = sign(SECRET, now, "delivery-1", body, key_id="dialer")

    delivery = await first.verify(headers, body)
    assert delivery.delivery_id == "delivery-1"

    with pytest.raises(WebhookRejected) as replayed:  # the same request at the other replica
        await second.verify(headers, body)
    assert replayed.value.code == "replayed"

    with pytest.raises(WebhookRejected) as altered:
        await second.verify(headers, body.replace(b"93", b"9"))
    assert altered.value.code == "bad-signature"

    with pytest.raises(WebhookRejected) as wrong_key:
        await second.verify(sign(b"x" * 40, now, "delivery-2", body, key_id="dialer"), body)
    assert wrong_key.value.code == "bad-signature"

    clock.advance(timedelta(minutes=6))
    with pytest.raises(WebhookRejected) as stale:  # signed six minutes ago
        await second.verify(sign(SECRET, now, "delivery-3", body, key_id="dialer"), body)
    assert stale.value.code == "stale-timestamp"

    # a genuine retry of delivery-1 is signed afresh and accepted
    retry = sign(SECRET, int(clock.now().timestamp()), "delivery-1", body, key_id="dialer")
    assert (await second.verify(retry, body)).delivery_id == "delivery-1"
    await engine.dispose()
