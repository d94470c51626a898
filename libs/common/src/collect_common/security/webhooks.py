"""HMAC-SHA256 verification of the dialer's webhooks.

The scheme the dialer signs with
--------------------------------
Every webhook request carries four headers (names are case-insensitive):

``X-Webhook-Key-Id``
    Which shared secret signed the request (e.g. ``dialer-2026-01``).
``X-Webhook-Timestamp``
    When the request was signed, in unix seconds (an integer).
``X-Webhook-Delivery-Id``
    Unique per delivery: 1 to 128 visible ASCII characters (a UUID is fine). A retry of the
    same delivery keeps its delivery id, and the platform's handlers are idempotent on it.
``X-Webhook-Signature``
    ``v1=<hex>``, where ``<hex>`` is the lower-case hex HMAC-SHA256, under the secret, of::

        f"{timestamp}.{delivery_id}.".encode() + raw_body

    (the raw body bytes as sent, before any JSON parsing). Several comma-separated values
    (``v1=<hex>,v1=<hex>``) are allowed: while a secret is rotated the dialer signs with the
    old and the new secret, and the request is accepted if either matches.

Each attempt, retries included, is signed afresh with the current timestamp. A request is
refused when its timestamp is more than the tolerance (5 minutes by default) away from the
platform's clock, in the past or in the future, and when the same signed request (same
delivery id and timestamp) arrives a second time within that window: a captured request
cannot be replayed.

Refusals raise ``WebhookRejected`` with a ``code`` for the response body and metrics:
``missing-header``, ``unknown-key``, ``bad-signature``, ``stale-timestamp``, ``replayed``.
The signature is checked before the timestamp and before the delivery is remembered, so
unsigned requests learn nothing and cannot use up delivery ids.

Replay stores
-------------
``InMemoryReplayStore`` serves one process (tests, a single replica); ``SqlReplayStore``
shares the memory between replicas through the ``webhook_deliveries`` table (see
``webhook_deliveries_table``); prune it from the scheduler with ``SqlReplayStore.prune``.
The store keeps an entry until the timestamp it covers falls out of the tolerance window.
"""

from __future__ import annotations

import hashlib
import heapq
import hmac
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal, Protocol, cast

from sqlalchemy import (
    Column,
    CursorResult,
    Index,
    MetaData,
    String,
    Table,
    bindparam,
    text,
)
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from collect_common.clock import Clock, ensure_utc
from collect_common.db import UtcDateTime

__all__ = [
    "HEADER_DELIVERY_ID",
    "HEADER_KEY_ID",
    "HEADER_SIGNATURE",
    "HEADER_TIMESTAMP",
    "InMemoryReplayStore",
    "RejectionCode",
    "ReplayStore",
    "SqlReplayStore",
    "VerifiedDelivery",
    "WebhookRejected",
    "WebhookVerifier",
    "compute_signature",
    "replay_key",
    "sign",
    "webhook_deliveries_table",
]

HEADER_KEY_ID: Final = "X-Webhook-Key-Id"
HEADER_TIMESTAMP: Final = "X-Webhook-Timestamp"
HEADER_DELIVERY_ID: Final = "X-Webhook-Delivery-Id"
HEADER_SIGNATURE: Final = "X-Webhook-Signature"
SIGNATURE_SCHEME: Final = "v1"

MAX_DELIVERY_ID_LENGTH: Final = 128
MAX_SIGNATURES: Final = 8
_DELIVERY_ID_RE: Final = re.compile(rf"[!-~]{{1,{MAX_DELIVERY_ID_LENGTH}}}")
_TIMESTAMP_RE: Final = re.compile(r"\d{1,12}")
_HEX_SIGNATURE_RE: Final = re.compile(r"[0-9a-fA-F]{64}")

RejectionCode = Literal[
    "missing-header", "unknown-key", "bad-signature", "stale-timestamp", "replayed"
]


class WebhookRejected(Exception):
    """The request is not an authentic, fresh, first-seen webhook from the dialer."""

    def __init__(self, reason: str, code: RejectionCode) -> None:
        super().__init__(f"{code}: {reason}")
        self.reason = reason
        self.code: RejectionCode = code


@dataclass(frozen=True, slots=True)
class VerifiedDelivery:
    delivery_id: str
    key_id: str
    timestamp: datetime
    """When the dialer signed the request (aware UTC)."""


def compute_signature(secret: bytes, timestamp: int, delivery_id: str, body: bytes) -> str:
    """The lower-case hex HMAC-SHA256 of ``f"{timestamp}.{delivery_id}.".encode() + body``."""
    mac = hmac.new(secret, f"{timestamp}.{delivery_id}.".encode(), hashlib.sha256)
    mac.update(body)
    return mac.hexdigest()


def sign(
    secret: bytes | Sequence[bytes],
    timestamp: int,
    delivery_id: str,
    body: bytes,
    *,
    key_id: str = "default",
) -> dict[str, str]:
    """The headers the dialer sends with ``body``. Several secrets give one ``v1=`` each."""
    secrets = [secret] if isinstance(secret, bytes) else list(secret)
    signatures = ",".join(
        f"{SIGNATURE_SCHEME}={compute_signature(s, timestamp, delivery_id, body)}" for s in secrets
    )
    return {
        HEADER_KEY_ID: key_id,
        HEADER_TIMESTAMP: str(timestamp),
        HEADER_DELIVERY_ID: delivery_id,
        HEADER_SIGNATURE: signatures,
    }


class ReplayStore(Protocol):
    async def remember(self, delivery_id: str, expires_at: datetime) -> bool:
        """Record ``delivery_id`` until ``expires_at``: True when first seen, False when it is
        already remembered (and not expired)."""
        ...


class WebhookVerifier:
    """Verifies dialer webhooks: signature, timestamp tolerance, replay refusal.

    ``secrets`` maps key ids to shared secrets (at least 32 bytes each).
    """

    def __init__(
        self,
        secrets: Mapping[str, bytes],
        clock: Clock,
        tolerance: timedelta = timedelta(minutes=5),
        replay_store: ReplayStore | None = None,
    ) -> None:
        if not secrets:
            raise ValueError("WebhookVerifier needs at least one secret")
        for key_id, secret in secrets.items():
            if len(secret) < 32:
                raise ValueError(
                    f"webhook secret {key_id!r} is {len(secret)} bytes; use at least 32 "
                    "random bytes"
                )
        if tolerance <= timedelta(0):
            raise ValueError("tolerance must be positive")
        self._secrets = dict(secrets)
        self._clock = clock
        self._tolerance = tolerance
        self._replay_store: ReplayStore = replay_store or InMemoryReplayStore(clock)

    async def verify(self, headers: Mapping[str, str], body: bytes) -> VerifiedDelivery:
        """Check a request; raise ``WebhookRejected`` unless it is authentic, fresh and new."""
        lowered = {name.lower(): value for name, value in headers.items()}
        key_id = _required(lowered, HEADER_KEY_ID)
        raw_timestamp = _required(lowered, HEADER_TIMESTAMP)
        delivery_id = _required(lowered, HEADER_DELIVERY_ID)
        signature_header = _required(lowered, HEADER_SIGNATURE)

        if not _TIMESTAMP_RE.fullmatch(raw_timestamp):
            raise WebhookRejected(
                f"{HEADER_TIMESTAMP} must be unix seconds (an integer)", "missing-header"
            )
        if not _DELIVERY_ID_RE.fullmatch(delivery_id):
            raise WebhookRejected(
                f"{HEADER_DELIVERY_ID} must be 1-{MAX_DELIVERY_ID_LENGTH} visible ASCII characters",
                "missing-header",
            )
        secret = self._secrets.get(key_id)
        if secret is None:
            raise WebhookRejected(f"no secret configured for key id {key_id!r}", "unknown-key")

        timestamp = int(raw_timestamp)
        expected = compute_signature(secret, timestamp, delivery_id, body).encode("ascii")
        if not _any_signature_matches(signature_header, expected):
            raise WebhookRejected(
                f"no {SIGNATURE_SCHEME} signature matches the body and the key", "bad-signature"
            )

        now = self._clock.now()
        # compared in seconds first: a timestamp past year 9999 is stale, not a crash
        if abs(now.timestamp() - timestamp) > self._tolerance.total_seconds():
            raise WebhookRejected(
                f"timestamp {timestamp} is more than {self._tolerance} away from {now.isoformat()}",
                "stale-timestamp",
            )
        signed_at = datetime.fromtimestamp(timestamp, UTC)

        if not await self._replay_store.remember(
            replay_key(delivery_id, timestamp), signed_at + self._tolerance
        ):
            raise WebhookRejected(
                f"delivery {delivery_id!r} signed at {timestamp} was already received",
                "replayed",
            )
        return VerifiedDelivery(delivery_id=delivery_id, key_id=key_id, timestamp=signed_at)


def replay_key(delivery_id: str, timestamp: int) -> str:
    """What the verifier remembers: one signed attempt of a delivery (``"<ts>:<id>"``).

    A retry, re-signed with a newer timestamp, is a different attempt and is let through to
    the (idempotent) handler; the same signed request seen twice is a replay.
    """
    return f"{timestamp}:{delivery_id}"


def _required(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name.lower(), "").strip()
    if not value:
        raise WebhookRejected(f"header {name} is missing or empty", "missing-header")
    return value


def _any_signature_matches(header: str, expected: bytes) -> bool:
    candidates: list[bytes] = []
    for part in header.split(","):
        scheme, sep, value = part.strip().partition("=")
        if sep and scheme == SIGNATURE_SCHEME and _HEX_SIGNATURE_RE.fullmatch(value):
            candidates.append(value.lower().encode("ascii"))
    matched = False
    for candidate in candidates[:MAX_SIGNATURES]:
        # No early exit: every candidate is compared in constant time.
        matched |= hmac.compare_digest(candidate, expected)
    return matched


# --- replay stores ---------------------------------------------------------------------------


class InMemoryReplayStore:
    """A bounded, process-local ``ReplayStore``.

    An entry is kept while ``now <= expires_at``; expired ones are pruned on every call. When
    ``max_entries`` unexpired entries are held, the one expiring soonest is dropped to make room
    (only verified deliveries reach the store, so only a flood of genuine deliveries can fill
    it).
    """

    def __init__(self, clock: Clock, max_entries: int = 100_000) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be positive")
        self._clock = clock
        self._max_entries = max_entries
        self._expiry: dict[str, datetime] = {}
        self._heap: list[tuple[datetime, str]] = []

    def __len__(self) -> int:
        return len(self._expiry)

    async def remember(self, delivery_id: str, expires_at: datetime) -> bool:
        now = self._clock.now()
        self._prune(now)
        if delivery_id in self._expiry:
            return False
        expires_at = ensure_utc(expires_at)
        if expires_at < now:  # nothing to guard any more; stale requests are refused anyway
            return True
        while len(self._expiry) >= self._max_entries:
            self._pop_soonest()
        self._expiry[delivery_id] = expires_at
        heapq.heappush(self._heap, (expires_at, delivery_id))
        return True

    def _prune(self, now: datetime) -> None:
        while self._heap and self._heap[0][0] < now:
            self._pop_soonest()

    def _pop_soonest(self) -> None:
        expires_at, delivery_id = heapq.heappop(self._heap)
        if self._expiry.get(delivery_id) == expires_at:
            del self._expiry[delivery_id]


WEBHOOK_DELIVERIES: Final = "webhook_deliveries"

_INSERT = text(
    "INSERT INTO webhook_deliveries (delivery_id, expires_at) VALUES (:d, :e) "
    "ON CONFLICT DO NOTHING"
).bindparams(bindparam("d", type_=String(200)), bindparam("e", type_=UtcDateTime))
_PRUNE = text("DELETE FROM webhook_deliveries WHERE expires_at < :now").bindparams(
    bindparam("now", type_=UtcDateTime)
)


def webhook_deliveries_table(metadata: MetaData) -> Table:
    """The ``webhook_deliveries`` table in ``metadata`` (added once; returned if present)."""
    existing = metadata.tables.get(WEBHOOK_DELIVERIES)
    if existing is not None:
        return existing
    return Table(
        WEBHOOK_DELIVERIES,
        metadata,
        Column("delivery_id", String(200), primary_key=True),
        Column("expires_at", UtcDateTime, nullable=False),
        Index("ix_webhook_deliveries_expires_at", "expires_at"),
    )


class SqlReplayStore:
    """A ``ReplayStore`` on the ``webhook_deliveries`` table, shared by all replicas.

    Each ``remember`` runs in its own short transaction (``INSERT ... ON CONFLICT DO
    NOTHING``; works on PostgreSQL and SQLite >= 3.24). Run ``prune`` periodically.
    """

    def __init__(self, session_factory: async_sessionmaker[AsyncSession]) -> None:
        self._session_factory = session_factory

    async def remember(self, delivery_id: str, expires_at: datetime) -> bool:
        async with self._session_factory() as session, session.begin():
            result = await session.execute(_INSERT, {"d": delivery_id, "e": ensure_utc(expires_at)})
            return cast(CursorResult[Any], result).rowcount == 1

    async def prune(self, now: datetime) -> int:
        """Delete entries that expired before ``now``; returns how many."""
        async with self._session_factory() as session, session.begin():
            result = await session.execute(_PRUNE, {"now": ensure_utc(now)})
            return cast(CursorResult[Any], result).rowcount
