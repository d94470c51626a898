"""The idempotent consumer: apply each event once, whatever Kafka redelivers.

For every batch fetched from Kafka:

1. Decode each message into its envelope and catalogued event. A message that
   cannot be decoded is poison: it goes straight to the dead-letter topic.
2. Fast path: one transaction inserts a ``processed_events(consumer, event_id)``
   row per event (``ON CONFLICT DO NOTHING RETURNING``), runs the handler of
   every event that was new, writes the events the handlers emitted to the
   outbox, and commits. Duplicates change nothing.
3. If any handler fails, that transaction rolls back and the batch is replayed
   one event per transaction, each retried up to ``max_attempts`` times; an
   event that still fails goes to ``<topic>.dlq`` with its error, is recorded
   as dead-lettered, and processing goes on with the next one.
4. Only then are the offsets committed (manual commits). A crash between the
   database commit and the offset commit redelivers the batch, and step 2
   skips it.

A handler may be a :class:`BatchHandler`: in step 2 it gets each run of
consecutive new events that map to it in one call (one evaluation, bulk reads
and writes), still in the batch's one transaction; in step 3 it gets one event
at a time like any handler, so retries and dead-lettering stay per event.
While a batch is applied, the next one is fetched and decoded.

A rebalance listener commits what was applied before partitions are taken
away; ``stop()`` finishes the batch in hand and leaves the group cleanly.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import traceback
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError
from pydantic import ValidationError
from sqlalchemy import String, Table, Text, bindparam, func, select
from sqlalchemy.dialects import postgresql

from collect_common.bus.topics import dead_letter_topic
from collect_common.clock import Clock
from collect_common.db import (
    EventContext,
    UnitOfWork,
    UtcDateTime,
    dialect_insert,
    reset_event_context,
    set_event_context,
)
from collect_common.events.catalogue import Event, UnknownEventType, event_class
from collect_common.events.envelope import EventEnvelope
from collect_common.metrics import BusMetrics

log = structlog.get_logger("collect_common.consumer")


@dataclass
class Delivery:
    record: ConsumerRecord[bytes, bytes]
    envelope: EventEnvelope
    event: Event


@dataclass
class HandlerContext:
    """What a handler gets besides its event: the open unit of work and the envelope.

    ``emit()`` queues events caused by this one: they reach the outbox with this
    envelope as their cause (correlation and causation ids), also when a
    :class:`BatchHandler` handles many events in one call (the runner then holds
    them back in ``emitted`` and writes each event's with its own cause).
    """

    uow: UnitOfWork
    envelope: EventEnvelope
    record: ConsumerRecord[bytes, bytes]
    defer_emits: bool = False
    emitted: list[Event] = field(default_factory=list)

    @property
    def session(self) -> Any:
        return self.uow.session

    def emit(self, *events: Event) -> None:
        if self.defer_emits:
            self.emitted.extend(events)
        else:
            self.uow.emit(*events)


Handler = Callable[[Event, HandlerContext], Awaitable[None]]


class BatchHandler(ABC):
    """A handler that applies many events in one call.

    Registered in ``handlers`` like any handler (one instance may serve several
    event types). The runner hands it each run of consecutive new events of a
    batch that map to it, in order, inside the batch's transaction: it may read
    the state of all of them at once and write in bulk. When a batch fails and is
    replayed event by event, it is called with one event at a time, so retries and
    the dead-letter topic work per event. Its effects must not depend on how the
    events are split into calls. Events it causes go through ``ctx.emit``.
    """

    async def __call__(self, event: Event, ctx: HandlerContext) -> None:
        await self.handle_batch([(event, ctx)])

    @abstractmethod
    async def handle_batch(self, items: Sequence[tuple[Event, HandlerContext]]) -> None:
        """Apply ``items`` (event, context) in order; never commit."""


AfterCommitHook = Callable[[Sequence[Delivery]], Awaitable[None] | None]


@dataclass
class _Poison:
    record: ConsumerRecord[bytes, bytes]
    error: str
    event_id: str | None = None
    attempts: int = 0


_Decoded = Delivery | _Poison | None  # None: an event type this consumer does not handle
_Fetched = dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]


@dataclass
class RunnerStats:
    applied: int = 0
    duplicates: int = 0
    ignored: int = 0
    dead_lettered: int = 0
    batches: int = 0
    by_outcome: dict[str, int] = field(default_factory=dict)


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, runner: ConsumerRunner) -> None:
        self._runner = runner

    async def on_partitions_revoked(self, revoked: Any) -> None:
        # Hand over what was applied; bounded, since a commit during a rebalance can stall.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._runner._commit_pending(set(revoked)), timeout=10)
        if revoked:
            log.info(
                "partitions revoked",
                consumer=self._runner.name,
                partitions=sorted(f"{tp.topic}:{tp.partition}" for tp in revoked),
            )

    async def on_partitions_assigned(self, assigned: Any) -> None:
        log.info(
            "partitions assigned",
            consumer=self._runner.name,
            partitions=sorted(f"{tp.topic}:{tp.partition}" for tp in assigned),
        )


class ConsumerRunner:
    def __init__(
        self,
        *,
        name: str,
        topics: Sequence[str],
        bootstrap: str,
        uow_factory: Callable[[], UnitOfWork],
        processed: Table,
        handlers: Mapping[str, Handler],
        clock: Clock,
        metrics: BusMetrics | None = None,
        max_attempts: int = 3,
        retry_backoff: float = 0.5,
        max_batch: int = 500,
        fetch_timeout_ms: int = 500,
        after_db_commit: AfterCommitHook | None = None,
        consumer_options: Mapping[str, Any] | None = None,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        unknown = [t for t in handlers if _catalogued(t) is None]
        if unknown:
            raise ValueError(f"handlers for uncatalogued event types: {unknown}")
        self.name = name
        self.topics = list(topics)
        self._bootstrap = bootstrap
        self._uow_factory = uow_factory
        self._processed = processed
        self._handlers = dict(handlers)
        self._clock = clock
        self._metrics = metrics
        self._max_attempts = max_attempts
        self._retry_backoff = retry_backoff
        self._max_batch = max_batch
        self._fetch_timeout_ms = fetch_timeout_ms
        self._after_db_commit = after_db_commit
        self._consumer_options = dict(consumer_options or {})
        self._consumer: AIOKafkaConsumer | None = None
        self._dlq: AIOKafkaProducer | None = None
        self._stopping = asyncio.Event()
        self._uncommitted: dict[TopicPartition, int] = {}
        self._commit_task: asyncio.Task[None] | None = None
        self._ahead: asyncio.Task[tuple[_Fetched, list[_Decoded]]] | None = None
        self.stats = RunnerStats()

    # -- lifecycle ------------------------------------------------------------------
    async def start(self) -> None:
        options: dict[str, Any] = {
            "bootstrap_servers": self._bootstrap,
            "group_id": self.name,
            "enable_auto_commit": False,
            "auto_offset_reset": "earliest",
            "isolation_level": "read_committed",
            "max_poll_records": self._max_batch,
            "fetch_max_bytes": 16 * 1024 * 1024,
            "max_partition_fetch_bytes": 4 * 1024 * 1024,
        }
        options.update(self._consumer_options)
        consumer = AIOKafkaConsumer(**options)
        dlq = AIOKafkaProducer(
            bootstrap_servers=self._bootstrap, enable_idempotence=True, acks="all"
        )
        try:
            await dlq.start()
            await consumer.start()
        except BaseException:
            with contextlib.suppress(Exception):
                await consumer.stop()
            with contextlib.suppress(Exception):
                await dlq.stop()
            raise
        consumer.subscribe(self.topics, listener=_Listener(self))
        self._consumer, self._dlq = consumer, dlq

    async def stop(self) -> None:
        """Ask the loop to stop after the batch in hand; ``run`` then closes the clients."""
        self._stopping.set()

    async def close(self) -> None:
        ahead, self._ahead = self._ahead, None
        if ahead is not None:  # fetched, never applied, never committed: redelivered
            ahead.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await ahead
        consumer, self._consumer = self._consumer, None
        dlq, self._dlq = self._dlq, None
        if consumer is not None:
            with contextlib.suppress(Exception):
                await self._commit_pending(None, consumer)
            with contextlib.suppress(Exception):
                await consumer.stop()
        if dlq is not None:
            with contextlib.suppress(Exception):
                await dlq.stop()

    async def run(self) -> None:
        """Consume until ``stop()``. Starts the clients when needed; always closes them."""
        if self._consumer is None:
            await self.start()
        try:
            while not self._stopping.is_set():
                await self.poll_once()
        finally:
            await self.close()

    # -- one batch --------------------------------------------------------------------
    async def poll_once(self) -> int:
        """Fetch one batch, apply it, commit its offsets; return the records handled.

        While a batch is applied, the next one is fetched and decoded (the database and
        this process work at the same time). A fetched batch is applied by the next
        call; one never applied (stop, crash) was never committed either: it is
        redelivered, and processed_events skips what was already applied.
        """
        consumer = self._consumer
        if consumer is None:
            raise RuntimeError("consumer runner not started")
        ahead, self._ahead = self._ahead, None
        batches, decoded = await (ahead if ahead is not None else self._fetch(consumer))
        records = [rec for recs in batches.values() for rec in recs]
        if not records:
            return 0
        if not self._stopping.is_set():
            self._ahead = asyncio.create_task(self._fetch(consumer))
        started = time.perf_counter()
        await self._apply(decoded)
        for tp, recs in batches.items():
            if recs:
                self._uncommitted[tp] = recs[-1].offset + 1
        self._schedule_commit()
        self.stats.batches += 1
        if self._metrics:
            self._metrics.consumer_batch_seconds.labels(self._metrics.service, self.name).observe(
                time.perf_counter() - started
            )
            for tp, recs in batches.items():
                high = consumer.highwater(tp)
                if recs and high is not None:
                    self._metrics.consumer_lag.labels(
                        self._metrics.service, self.name, tp.topic, str(tp.partition)
                    ).set(max(0, high - recs[-1].offset - 1))
        return len(records)

    def _schedule_commit(self) -> None:
        """Commit applied offsets in the background, one commit at a time, in order.

        The database already holds the batch; a commit that is lost only means a
        redelivery, which processed_events turns into nothing.
        """
        if self._commit_task is None or self._commit_task.done():
            self._commit_task = asyncio.create_task(self._commit_loop())

    async def _commit_loop(self) -> None:
        while self._uncommitted and self._consumer is not None:
            before = dict(self._uncommitted)
            await self._commit_pending(None, wait_background=False)
            if self._uncommitted == before:
                return  # nothing could be committed now; the next batch or close() retries

    async def _commit_pending(
        self,
        only: set[TopicPartition] | None,
        consumer: AIOKafkaConsumer | None = None,
        *,
        wait_background: bool = True,
    ) -> None:
        if wait_background and self._commit_task is not None:
            with contextlib.suppress(Exception):
                await self._commit_task
        consumer = consumer or self._consumer
        if consumer is None:
            return
        offsets = {tp: off for tp, off in self._uncommitted.items() if only is None or tp in only}
        if not offsets:
            return
        try:
            await consumer.commit(offsets)
        except (CommitFailedError, IllegalStateError, KafkaError) as exc:
            # The group moved on: these records will be redelivered to whoever owns the
            # partition now, and processed_events makes that harmless.
            log.warning(
                "offset commit failed; redelivery will be deduplicated",
                consumer=self.name,
                error=str(exc),
            )
        for tp, off in offsets.items():
            if self._uncommitted.get(tp) == off:  # a newer batch may have moved it meanwhile
                del self._uncommitted[tp]

    async def _fetch(self, consumer: AIOKafkaConsumer) -> tuple[_Fetched, list[_Decoded]]:
        """One batch from Kafka, and each of its records decoded."""
        batches = await consumer.getmany(
            timeout_ms=self._fetch_timeout_ms, max_records=self._max_batch
        )
        count = sum(len(recs) for recs in batches.values())
        while 0 < count < self._max_batch:
            # Top the batch up with what is already fetched: fewer, fuller transactions
            # under load, no added latency when idle.
            more = await consumer.getmany(timeout_ms=0, max_records=self._max_batch - count)
            if not more:
                break
            for tp, recs in more.items():
                batches.setdefault(tp, []).extend(recs)
                count += len(recs)
        return batches, [self._decode(rec) for recs in batches.values() for rec in recs]

    async def _apply(self, decoded: list[_Decoded]) -> None:
        deliveries: list[Delivery] = []
        poison: list[_Poison] = []
        for one in decoded:
            if isinstance(one, _Poison):
                poison.append(one)
            elif one is not None:
                deliveries.append(one)
            else:
                self._count("ignored")
        for p in poison:
            await self._dead_letter(p)
        if not deliveries:
            return
        try:
            await self._apply_batch(deliveries)
        except Exception as exc:
            log.warning(
                "batch failed; replaying event by event",
                consumer=self.name,
                size=len(deliveries),
                error=repr(exc),
            )
            for d in deliveries:
                await self._apply_one(d)

    def _decode(self, rec: ConsumerRecord[bytes, bytes]) -> Delivery | _Poison | None:
        raw = rec.value
        if raw is None:
            return _Poison(rec, "empty message")
        try:
            envelope = EventEnvelope.from_bytes(raw)
        except (ValidationError, ValueError) as exc:
            return _Poison(rec, f"undecodable event: {exc}"[:4000])
        if envelope.type not in self._handlers:
            return None  # an event this consumer does not handle
        try:
            event = event_class(envelope.type).model_validate(envelope.data)
        except (ValidationError, UnknownEventType, ValueError) as exc:
            return _Poison(rec, f"undecodable event: {exc}"[:4000], envelope.id)
        return Delivery(rec, envelope, event)

    async def _new_event_ids(
        self, uow: UnitOfWork, ids: list[str], outcome: str = "applied", error: str | None = None
    ) -> set[str]:
        """Record ``ids`` as processed by this consumer; return those not recorded before."""
        params = {
            "consumer": self.name,
            "now": self._clock.now(),
            "outcome": outcome,
            "error": error,
        }
        if uow.session.get_bind().dialect.name == "postgresql":
            # One array parameter instead of a VALUES row per event: no per-row compile.
            table = self._processed
            ids_param = bindparam("ids", type_=postgresql.ARRAY(String))
            each = func.unnest(ids_param).column_valued("event_id")
            stmt = (
                postgresql.insert(table)
                .from_select(
                    ["consumer", "event_id", "processed_at", "outcome", "error"],
                    select(
                        bindparam("consumer", type_=String),
                        each,
                        bindparam("now", type_=UtcDateTime),
                        bindparam("outcome", type_=String),
                        bindparam("error", type_=Text),
                    ),
                )
                .on_conflict_do_nothing()
                .returning(table.c.event_id)
            )
            result = await uow.session.execute(stmt, {**params, "ids": ids})
            return set(result.scalars().all())
        stmt = (
            dialect_insert(uow.session, self._processed)
            .values(
                [
                    {
                        "consumer": self.name,
                        "event_id": i,
                        "processed_at": params["now"],
                        "outcome": outcome,
                        "error": error,
                    }
                    for i in ids
                ]
            )
            .on_conflict_do_nothing()
            .returning(self._processed.c.event_id)
        )
        return set((await uow.session.scalars(stmt)).all())

    async def _handle(self, uow: UnitOfWork, d: Delivery) -> None:
        token = set_event_context(
            EventContext(correlation_id=d.envelope.correlationid, causation_id=d.envelope.id)
        )
        try:
            await self._handlers[d.envelope.type](
                d.event, HandlerContext(uow, d.envelope, d.record)
            )
            await uow.flush_events()
        finally:
            reset_event_context(token)

    async def _handle_run(
        self, uow: UnitOfWork, handler: BatchHandler, run: list[Delivery]
    ) -> None:
        """One call of a batch handler; each event's emits flushed with it as their cause."""
        contexts = [HandlerContext(uow, d.envelope, d.record, defer_emits=True) for d in run]
        await handler.handle_batch([(d.event, c) for d, c in zip(run, contexts, strict=True)])
        await uow.flush_events()  # anything emitted on the unit of work itself
        for c in contexts:
            if c.emitted:
                token = set_event_context(
                    EventContext(
                        correlation_id=c.envelope.correlationid, causation_id=c.envelope.id
                    )
                )
                try:
                    uow.emit(*c.emitted)
                    await uow.flush_events()
                finally:
                    reset_event_context(token)

    async def _handle_all(self, uow: UnitOfWork, deliveries: list[Delivery]) -> None:
        """Apply ``deliveries`` in order: runs of a batch handler in one call each."""
        i = 0
        while i < len(deliveries):
            handler = self._handlers[deliveries[i].envelope.type]
            if not isinstance(handler, BatchHandler):
                await self._handle(uow, deliveries[i])
                i += 1
                continue
            j = i + 1
            while j < len(deliveries) and self._handlers[deliveries[j].envelope.type] is handler:
                j += 1
            await self._handle_run(uow, handler, deliveries[i:j])
            i = j

    async def _apply_batch(self, deliveries: list[Delivery]) -> None:
        async with self._uow_factory() as uow:
            new = await self._new_event_ids(uow, list({d.envelope.id for d in deliveries}))
            applied = []
            for d in deliveries:
                if d.envelope.id in new:
                    new.discard(d.envelope.id)  # a duplicate inside the same batch
                    applied.append(d)
            await self._handle_all(uow, applied)
            await uow.commit()
        self._count("applied", len(applied))
        self._count("duplicate", len(deliveries) - len(applied))
        await self._after_commit(deliveries)

    async def _apply_one(self, d: Delivery) -> None:
        last_error = ""
        for attempt in range(1, self._max_attempts + 1):
            try:
                async with self._uow_factory() as uow:
                    if not await self._new_event_ids(uow, [d.envelope.id]):
                        self._count("duplicate")
                        return
                    await self._handle(uow, d)
                    await uow.commit()
                self._count("applied")
                await self._after_commit([d])
                return
            except Exception as exc:
                last_error = "".join(traceback.format_exception_only(exc)).strip()
                log.warning(
                    "event handler failed",
                    consumer=self.name,
                    event_id=d.envelope.id,
                    event_type=d.envelope.type,
                    attempt=attempt,
                    error=last_error,
                )
                if attempt < self._max_attempts and self._retry_backoff > 0:
                    await asyncio.sleep(self._retry_backoff * attempt)
        await self._dead_letter(
            _Poison(d.record, last_error[:4000], d.envelope.id, self._max_attempts)
        )

    async def _dead_letter(self, p: _Poison) -> None:
        if self._dlq is None:
            raise RuntimeError("consumer runner not started")
        rec = p.record
        headers = [
            *(rec.headers or ()),
            ("dlq_error", p.error.encode()),
            ("dlq_consumer", self.name.encode()),
            ("dlq_source", f"{rec.topic}:{rec.partition}:{rec.offset}".encode()),
            ("dlq_attempts", str(p.attempts).encode()),
        ]
        await (
            await self._dlq.send(
                dead_letter_topic(rec.topic), value=rec.value, key=rec.key, headers=headers
            )
        )
        if p.event_id is not None:
            async with self._uow_factory() as uow:
                await self._new_event_ids(uow, [p.event_id], "dead_lettered", p.error[:4000])
                await uow.commit()
        log.error(
            "event dead-lettered",
            consumer=self.name,
            topic=rec.topic,
            partition=rec.partition,
            offset=rec.offset,
            event_id=p.event_id,
            error=p.error,
        )
        self._count("dead_lettered")

    async def _after_commit(self, deliveries: Sequence[Delivery]) -> None:
        if self._after_db_commit is not None:
            result = self._after_db_commit(deliveries)
            if result is not None:
                await result

    def _count(self, outcome: str, n: int = 1) -> None:
        if n <= 0:
            return
        self.stats.by_outcome[outcome] = self.stats.by_outcome.get(outcome, 0) + n
        if outcome == "applied":
            self.stats.applied += n
        elif outcome == "duplicate":
            self.stats.duplicates += n
        elif outcome == "ignored":
            self.stats.ignored += n
        elif outcome == "dead_lettered":
            self.stats.dead_lettered += n
        if self._metrics:
            self._metrics.consumer_events.labels(self._metrics.service, self.name, outcome).inc(n)


def _catalogued(type_name: str) -> type[Event] | None:
    try:
        return event_class(type_name)
    except UnknownEventType:
        return None
