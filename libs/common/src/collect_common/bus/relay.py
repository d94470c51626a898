"""The outbox relay: publishes committed outbox rows to Kafka, in order, at least once.

One batch is one database transaction: lock the oldest unpublished rows, send
them with the idempotent producer (acks=all), wait for every acknowledgement,
mark them published, commit. If the broker is unreachable the transaction rolls
back, nothing is marked, and the relay retries with backoff; the services keep
writing meanwhile, and the backlog drains when the broker is back.

Order per key: rows are read in ``id`` (commit) order and the producer keeps
order within a partition. On PostgreSQL a transaction-scoped advisory lock lets
only one relay replica publish at a time, so a second replica can never
overtake the first with a later row of the same key (``SKIP LOCKED`` alone would
allow that); the others stand by. A crash between send and mark publishes those
rows again: consumers deduplicate by event id.
"""

from __future__ import annotations

import asyncio
import contextlib
import zlib
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from sqlalchemy import Table, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from collect_common.clock import Clock
from collect_common.metrics import BusMetrics

log = structlog.get_logger("collect_common.relay")

ProducerFactory = Callable[[], AIOKafkaProducer]


def idempotent_producer(bootstrap: str, **overrides: Any) -> AIOKafkaProducer:
    """The platform's producer: idempotent, acks from all in-sync replicas."""
    options: dict[str, Any] = {
        "bootstrap_servers": bootstrap,
        "enable_idempotence": True,
        "acks": "all",
        "linger_ms": 5,
        "max_batch_size": 256 * 1024,
        "request_timeout_ms": 15000,
        "compression_type": None,
    }
    options.update(overrides)
    return AIOKafkaProducer(**options)


class OutboxRelay:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        outbox: Table,
        producer_factory: ProducerFactory,
        *,
        clock: Clock,
        service: str,
        metrics: BusMetrics | None = None,
        batch_size: int = 1000,
        idle_interval: float = 0.1,
        max_backoff: float = 5.0,
        wait: Callable[[float], Awaitable[None]] | None = None,
    ) -> None:
        self._sessions = sessions
        self._outbox = outbox
        self._producer_factory = producer_factory
        self._producer: AIOKafkaProducer | None = None
        self._clock = clock
        self._metrics = metrics
        self._batch_size = batch_size
        self._idle = idle_interval
        self._max_backoff = max_backoff
        self._lock_key = zlib.crc32(f"outbox-relay:{service}".encode())
        self._stopping = asyncio.Event()
        self._wake = asyncio.Event()
        self._wait = wait
        self.last_error: str | None = None

    # -- lifecycle ------------------------------------------------------------------
    async def _ensure_producer(self) -> AIOKafkaProducer:
        if self._producer is None:
            producer = self._producer_factory()
            try:
                await producer.start()
            except BaseException:
                with contextlib.suppress(Exception):
                    await producer.stop()
                raise
            self._producer = producer
        return self._producer

    async def _drop_producer(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            with contextlib.suppress(Exception):
                await producer.stop()

    async def close(self) -> None:
        self._stopping.set()
        self._wake.set()
        await self._drop_producer()

    def notify(self) -> None:
        """Wake the relay now (a handler just committed events)."""
        self._wake.set()

    @property
    def connected(self) -> bool:
        return self._producer is not None

    # -- work -----------------------------------------------------------------------
    async def backlog(self) -> int:
        async with self._sessions() as session:
            count = await session.scalar(
                select(func.count())
                .select_from(self._outbox)
                .where(self._outbox.c.published_at.is_(None))
            )
        return int(count or 0)

    async def publish_batch(self) -> int:
        """Publish one batch; return how many rows were published (0: nothing to do)."""
        producer = await self._ensure_producer()
        ob = self._outbox
        async with self._sessions() as session, session.begin():
            if session.get_bind().dialect.name == "postgresql":
                got = await session.scalar(select(func.pg_try_advisory_xact_lock(self._lock_key)))
                if not got:
                    return 0  # another replica is publishing
            rows = (
                await session.execute(
                    select(
                        ob.c.id, ob.c.topic, ob.c.key, ob.c.event_type, ob.c.event_id, ob.c.payload
                    )
                    .where(ob.c.published_at.is_(None))
                    .order_by(ob.c.id)
                    .limit(self._batch_size)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            if not rows:
                return 0
            pending = []
            for row in rows:
                pending.append(
                    await producer.send(
                        row.topic,
                        value=row.payload,
                        key=row.key.encode(),
                        headers=[
                            ("ce_type", row.event_type.encode()),
                            ("ce_id", row.event_id.encode()),
                        ],
                    )
                )
            await asyncio.gather(*pending)
            await session.execute(
                update(ob)
                .where(ob.c.id.in_([r.id for r in rows]))
                .values(published_at=self._clock.now())
            )
        if self._metrics:
            self._metrics.outbox_published.inc(len(rows))
        return len(rows)

    async def drain(self) -> int:
        """Publish until the outbox is empty (tests, shutdown); return the count."""
        total = 0
        while n := await self.publish_batch():
            total += n
        return total

    async def run(self) -> None:
        """Publish forever until ``close()``; survive broker outages with backoff."""
        backoff = 0.2
        while not self._stopping.is_set():
            try:
                published = await self.publish_batch()
                backoff = 0.2
                if self.last_error:
                    log.info("outbox relay recovered", previous_error=self.last_error)
                    self.last_error = None
            except (TimeoutError, KafkaError, OSError) as exc:
                published = 0
                self.last_error = f"{type(exc).__name__}: {exc}"
                if self._metrics:
                    self._metrics.outbox_publish_errors.inc()
                log.warning(
                    "outbox relay cannot publish; will retry",
                    error=self.last_error,
                    retry_in=backoff,
                )
                await self._drop_producer()
                await self._pause(backoff)
                backoff = min(backoff * 2, self._max_backoff)
                continue
            except Exception:
                log.exception("outbox relay failed; will retry")
                await self._pause(backoff)
                backoff = min(backoff * 2, self._max_backoff)
                continue
            if self._metrics:
                with contextlib.suppress(Exception):
                    self._metrics.outbox_backlog.set(await self.backlog())
            if published == 0:
                await self._pause(self._idle)

    async def _pause(self, seconds: float) -> None:
        if self._wait is not None:
            await self._wait(seconds)
            return
        self._wake.clear()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)
