"""HMAC verification of dialer webhooks."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import MetaData, String, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import StaticPool

from collect_common.clock import FrozenClock
from collect_common.db import UtcDateTime
from collect_common.security.webhooks import (
    InMemoryReplayStore,
    SqlReplayStore,
    VerifiedDelivery,
    WebhookRejected,
    WebhookVerifier,
    compute_signature,
    replay_key,
    sign,
    webhook_deliveries_table,
)

SECRET = b"s" * 32
NEW_SECRET = b"n" * 32
BODY = b'{"type":"call.completed","debtor_id":"d-1","phone":"13812345678"}'
START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
TS = int(START.timestamp())


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(START)


@pytest.fixture
def verifier(clock: FrozenClock) -> WebhookVerifier:
    return WebhookVerifier({"dialer-1": SECRET}, clock)


def headers(
    *,
    secret: bytes | list[bytes] = SECRET,
    ts: int = TS,
    delivery_id: str = "dlv-1",
    body: bytes = BODY,
    key_id: str = "dialer-1",
) -> dict[str, str]:
    return sign(secret, ts, delivery_id, body, key_id=key_id)


async def rejected(verifier: WebhookVerifier, hdrs: dict[str, str], body: bytes) -> str:
    with pytest.raises(WebhookRejected) as info:
        await verifier.verify(hdrs, body)
    return info.value.code


class TestSign:
    def test_signature_is_documented_hmac(self) -> None:
        expected = hmac.new(SECRET, f"{TS}.dlv-1.".encode() + BODY, hashlib.sha256).hexdigest()
        assert compute_signature(SECRET, TS, "dlv-1", BODY) == expected
        assert headers() == {
            "X-Webhook-Key-Id": "dialer-1",
            "X-Webhook-Timestamp": str(TS),
            "X-Webhook-Delivery-Id": "dlv-1",
            "X-Webhook-Signature": f"v1={expected}",
        }

    def test_several_secrets_give_several_values(self) -> None:
        value = headers(secret=[SECRET, NEW_SECRET])["X-Webhook-Signature"]
        old, new = value.split(",")
        assert old == f"v1={compute_signature(SECRET, TS, 'dlv-1', BODY)}"
        assert new == f"v1={compute_signature(NEW_SECRET, TS, 'dlv-1', BODY)}"


class TestAccepted:
    async def test_good_signature(self, verifier: WebhookVerifier) -> None:
        delivery = await verifier.verify(headers(), BODY)
        assert delivery == VerifiedDelivery(delivery_id="dlv-1", key_id="dialer-1", timestamp=START)

    async def test_header_names_are_case_insensitive(self, verifier: WebhookVerifier) -> None:
        lowered = {k.lower(): v for k, v in headers().items()}
        assert (await verifier.verify(lowered, BODY)).delivery_id == "dlv-1"

    async def test_rotation_either_signature_matches(self, clock: FrozenClock) -> None:
        both = headers(secret=[SECRET, NEW_SECRET], delivery_id="a")
        old_side = WebhookVerifier({"dialer-1": SECRET}, clock)
        new_side = WebhookVerifier({"dialer-1": NEW_SECRET}, clock)
        assert (await old_side.verify(both, BODY)).delivery_id == "a"
        assert (await new_side.verify(both, BODY)).delivery_id == "a"

    async def test_key_id_selects_the_secret(self, clock: FrozenClock) -> None:
        verifier = WebhookVerifier({"old": SECRET, "new": NEW_SECRET}, clock)
        await verifier.verify(headers(secret=NEW_SECRET, key_id="new"), BODY)
        await verifier.verify(headers(secret=SECRET, key_id="old", delivery_id="2"), BODY)

    async def test_within_tolerance_both_ways(
        self, verifier: WebhookVerifier, clock: FrozenClock
    ) -> None:
        await verifier.verify(headers(ts=TS - 300, delivery_id="past"), BODY)
        await verifier.verify(headers(ts=TS + 300, delivery_id="future"), BODY)

    async def test_retry_resigned_later_is_not_a_replay(
        self, verifier: WebhookVerifier, clock: FrozenClock
    ) -> None:
        await verifier.verify(headers(), BODY)
        clock.advance(timedelta(seconds=30))
        retry = await verifier.verify(headers(ts=TS + 30), BODY)
        assert retry.delivery_id == "dlv-1"
        assert retry.timestamp == START + timedelta(seconds=30)


class TestRefused:
    async def test_altered_body(self, verifier: WebhookVerifier) -> None:
        assert await rejected(verifier, headers(), BODY.replace(b"d-1", b"d-2")) == (
            "bad-signature"
        )

    async def test_wrong_secret(self, verifier: WebhookVerifier) -> None:
        assert await rejected(verifier, headers(secret=NEW_SECRET), BODY) == "bad-signature"

    async def test_signed_fields_cannot_be_swapped(self, verifier: WebhookVerifier) -> None:
        moved = headers()
        moved["X-Webhook-Delivery-Id"] = "dlv-2"
        assert await rejected(verifier, moved, BODY) == "bad-signature"
        shifted = headers()
        shifted["X-Webhook-Timestamp"] = str(TS + 1)
        assert await rejected(verifier, shifted, BODY) == "bad-signature"

    async def test_unknown_key_id(self, verifier: WebhookVerifier) -> None:
        assert await rejected(verifier, headers(key_id="dialer-9"), BODY) == "unknown-key"

    @pytest.mark.parametrize(
        "signature",
        ["", "abc", "v0=" + "0" * 64, "v1=xyz", "v1=" + "0" * 64, "sha256=" + "0" * 64],
    )
    async def test_bad_signature_values(self, verifier: WebhookVerifier, signature: str) -> None:
        hdrs = headers()
        hdrs["X-Webhook-Signature"] = signature
        expected = "missing-header" if signature == "" else "bad-signature"
        assert await rejected(verifier, hdrs, BODY) == expected

    @pytest.mark.parametrize(
        "header",
        [
            "X-Webhook-Key-Id",
            "X-Webhook-Timestamp",
            "X-Webhook-Delivery-Id",
            "X-Webhook-Signature",
        ],
    )
    async def test_missing_header(self, verifier: WebhookVerifier, header: str) -> None:
        hdrs = headers()
        del hdrs[header]
        with pytest.raises(WebhookRejected) as info:
            await verifier.verify(hdrs, BODY)
        assert info.value.code == "missing-header"
        assert header in info.value.reason

    @pytest.mark.parametrize(
        ("header", "value"),
        [
            ("X-Webhook-Timestamp", "2026-01-05T09:00:00Z"),
            ("X-Webhook-Timestamp", "-5"),
            ("X-Webhook-Delivery-Id", "x" * 129),
            ("X-Webhook-Delivery-Id", "has space"),
        ],
    )
    async def test_malformed_header(
        self, verifier: WebhookVerifier, header: str, value: str
    ) -> None:
        hdrs = headers()
        hdrs[header] = value
        assert await rejected(verifier, hdrs, BODY) == "missing-header"

    async def test_stale_timestamp(self, verifier: WebhookVerifier) -> None:
        assert await rejected(verifier, headers(ts=TS - 301), BODY) == "stale-timestamp"

    async def test_future_timestamp(self, verifier: WebhookVerifier) -> None:
        assert await rejected(verifier, headers(ts=TS + 301), BODY) == "stale-timestamp"

    async def test_becomes_stale_as_time_passes(
        self, verifier: WebhookVerifier, clock: FrozenClock
    ) -> None:
        hdrs = headers()
        clock.advance(timedelta(minutes=5, seconds=1))
        assert await rejected(verifier, hdrs, BODY) == "stale-timestamp"

    async def test_custom_tolerance(self, clock: FrozenClock) -> None:
        strict = WebhookVerifier({"dialer-1": SECRET}, clock, tolerance=timedelta(seconds=10))
        assert await rejected(strict, headers(ts=TS - 11), BODY) == "stale-timestamp"
        await strict.verify(headers(ts=TS - 10), BODY)

    async def test_replay(self, verifier: WebhookVerifier, clock: FrozenClock) -> None:
        hdrs = headers()
        await verifier.verify(hdrs, BODY)
        assert await rejected(verifier, hdrs, BODY) == "replayed"
        clock.advance(timedelta(minutes=5))  # last instant of the window: still refused
        assert await rejected(verifier, hdrs, BODY) == "replayed"
        clock.advance(timedelta(seconds=1))  # past the window the request is stale anyway
        assert await rejected(verifier, hdrs, BODY) == "stale-timestamp"

    async def test_forgeries_do_not_burn_delivery_ids(self, verifier: WebhookVerifier) -> None:
        forged = headers(secret=NEW_SECRET)
        assert await rejected(verifier, forged, BODY) == "bad-signature"
        assert (await verifier.verify(headers(), BODY)).delivery_id == "dlv-1"

    async def test_stale_requests_do_not_burn_delivery_ids(self, verifier: WebhookVerifier) -> None:
        assert await rejected(verifier, headers(ts=TS + 600), BODY) == "stale-timestamp"
        assert (await verifier.verify(headers(), BODY)).delivery_id == "dlv-1"

    async def test_check_order_signature_before_time(self, verifier: WebhookVerifier) -> None:
        # an unsigned caller learns nothing about the clock
        assert await rejected(verifier, headers(ts=0, secret=NEW_SECRET), BODY) == ("bad-signature")

    def test_rejection_carries_reason_and_code(self) -> None:
        error = WebhookRejected("timestamp too old", "stale-timestamp")
        assert (error.reason, error.code) == ("timestamp too old", "stale-timestamp")
        assert str(error) == "stale-timestamp: timestamp too old"


class TestVerifierConfiguration:
    def test_weak_or_missing_secrets_are_refused(self, clock: FrozenClock) -> None:
        with pytest.raises(ValueError, match="at least 32"):
            WebhookVerifier({"k": b"short"}, clock)
        with pytest.raises(ValueError, match="at least one secret"):
            WebhookVerifier({}, clock)
        with pytest.raises(ValueError, match="positive"):
            WebhookVerifier({"k": SECRET}, clock, tolerance=timedelta(0))


class TestInMemoryReplayStore:
    async def test_first_seen_then_refused(self, clock: FrozenClock) -> None:
        store = InMemoryReplayStore(clock)
        assert await store.remember("a", START + timedelta(minutes=5))
        assert not await store.remember("a", START + timedelta(minutes=5))
        assert await store.remember("b", START + timedelta(minutes=5))

    async def test_expired_entries_are_pruned(self, clock: FrozenClock) -> None:
        store = InMemoryReplayStore(clock)
        await store.remember("a", START + timedelta(minutes=1))
        await store.remember("b", START + timedelta(minutes=10))
        clock.advance(timedelta(minutes=2))
        assert await store.remember("c", START + timedelta(minutes=10))
        assert len(store) == 2
        assert await store.remember("a", START + timedelta(minutes=10))

    async def test_bounded_drops_the_soonest_expiring(self, clock: FrozenClock) -> None:
        store = InMemoryReplayStore(clock, max_entries=2)
        await store.remember("late", START + timedelta(minutes=9))
        await store.remember("soon", START + timedelta(minutes=1))
        await store.remember("new", START + timedelta(minutes=5))
        assert len(store) == 2
        assert not await store.remember("late", START + timedelta(minutes=9))
        assert await store.remember("soon", START + timedelta(minutes=1))

    async def test_already_expired_entries_are_not_kept(self, clock: FrozenClock) -> None:
        store = InMemoryReplayStore(clock)
        assert await store.remember("old", START - timedelta(seconds=1))
        assert len(store) == 0


@pytest.fixture
async def session_factory() -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_async_engine("sqlite+aiosqlite://", poolclass=StaticPool)
    metadata = MetaData()
    webhook_deliveries_table(metadata)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    yield async_sessionmaker(engine, expire_on_commit=False)
    await engine.dispose()


class TestSqlReplayStore:
    def test_table_definition(self) -> None:
        metadata = MetaData()
        table = webhook_deliveries_table(metadata)
        assert webhook_deliveries_table(metadata) is table
        assert [c.name for c in table.primary_key.columns] == ["delivery_id"]
        delivery_id, expires_at = table.c.delivery_id, table.c.expires_at
        assert isinstance(delivery_id.type, String)
        assert delivery_id.type.length == 200
        assert isinstance(expires_at.type, UtcDateTime)  # timestamptz, aware on every dialect
        assert expires_at.type.impl.timezone
        assert not expires_at.nullable

    async def test_remember_and_prune(
        self, session_factory: async_sessionmaker[AsyncSession]
    ) -> None:
        store = SqlReplayStore(session_factory)
        assert await store.remember("a", START + timedelta(minutes=5))
        assert not await store.remember("a", START + timedelta(minutes=5))
        assert await store.remember("b", START + timedelta(minutes=1))

        assert await store.prune(START + timedelta(minutes=2)) == 1
        async with session_factory() as session:
            rows = await session.execute(text("SELECT delivery_id FROM webhook_deliveries"))
            assert [r[0] for r in rows] == ["a"]

    async def test_verifier_with_sql_store(
        self, session_factory: async_sessionmaker[AsyncSession], clock: FrozenClock
    ) -> None:
        store = SqlReplayStore(session_factory)
        verifier = WebhookVerifier({"dialer-1": SECRET}, clock, replay_store=store)
        hdrs = headers()
        await verifier.verify(hdrs, BODY)
        assert await rejected(verifier, hdrs, BODY) == "replayed"

        # a second replica sharing the table refuses it too
        other = WebhookVerifier(
            {"dialer-1": SECRET}, clock, replay_store=SqlReplayStore(session_factory)
        )
        assert await rejected(other, hdrs, BODY) == "replayed"

        async with session_factory() as session:
            stored = (
                await session.execute(text("SELECT delivery_id FROM webhook_deliveries"))
            ).scalar_one()
        assert stored == replay_key("dlv-1", TS)
