"""The composition of one service process: database, outbox relay, consumer, timers, security.

A service's ``bootstrap.py`` builds a :class:`ServiceRuntime` from its settings,
metadata, event handlers and (optionally) timer handlers. Nothing connects when
it is built; ``start()`` (the app's lifespan) runs migrations if asked, then
starts the relay, the consumer and the timer scheduler as supervised background
tasks that outlive broker and database outages; ``stop()`` stops the scheduler
first, then the others, and closes the engine.

With ``timer_handlers`` the runtime has a :attr:`ServiceRuntime.scheduler`
(a :class:`~collect_common.timers.TimerScheduler` over ``metadata.tables["timers"]``)
whether or not its background task runs (``scheduler_enabled``): tests move a
frozen clock and call ``runtime.scheduler.fire_due()`` themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import structlog
from prometheus_client import CollectorRegistry
from sqlalchemy import MetaData, text

from collect_common.bus.consumer import ConsumerRunner, Handler
from collect_common.bus.relay import OutboxRelay, idempotent_producer
from collect_common.clock import Clock, service_clock, wait_event
from collect_common.db import UnitOfWork, create_engine, session_factory
from collect_common.gc_tuning import FullCollections, tune_gc
from collect_common.metrics import BusMetrics
from collect_common.migrations import upgrade
from collect_common.security.auth import ApiKeyRegistry, TokenService
from collect_common.security.crypto import FieldCipher, set_field_cipher
from collect_common.settings import ServiceSettings
from collect_common.timers import TIMERS, TimerHandler, TimerScheduler
from collect_common.web.auth import Authenticator

C = TypeVar("C")

log = structlog.get_logger("collect_common.runtime")


class ServiceRuntime:
    def __init__(
        self,
        *,
        settings: ServiceSettings,
        metadata: MetaData,
        migrations: Path | None = None,
        handlers: Mapping[str, Handler] | None = None,
        subscribe: Sequence[str] = (),
        clock: Clock | None = None,
        consumer_group: str | None = None,
        timer_handlers: Mapping[str, TimerHandler] | None = None,
    ) -> None:
        self.settings = settings
        self.service = settings.service_name
        self.clock: Clock = clock or service_clock(settings.clock_file)
        self.metadata = metadata
        self.migrations = migrations
        self.database_url = settings.resolved_database_url()
        self.engine = create_engine(self.database_url, timeouts=settings.database_timeouts())
        self.sessions = session_factory(self.engine)
        self.registry = CollectorRegistry()
        self.bus_metrics = BusMetrics(self.registry, self.service)
        self.outbox = metadata.tables["outbox"]
        self.processed = metadata.tables["processed_events"]
        self.authenticator = Authenticator(
            ApiKeyRegistry.parse(settings.api_keys.get_secret_value()),
            TokenService(
                settings.token_secret.get_secret_value(), settings.token_issuer, self.clock
            ),
        )
        self.cipher = FieldCipher.from_config(
            settings.field_keys.get_secret_value(), settings.blind_index_key.get_secret_value()
        )
        bootstrap = settings.kafka_bootstrap_servers
        self.relay: OutboxRelay | None = None
        if settings.relay_enabled:
            self.relay = OutboxRelay(
                self.sessions,
                self.outbox,
                lambda: idempotent_producer(bootstrap),
                clock=self.clock,
                service=self.service,
                metrics=self.bus_metrics,
                batch_size=settings.relay_batch_size,
            )
        self.consumer: ConsumerRunner | None = None
        if handlers and settings.consumer_enabled:
            self.consumer = ConsumerRunner(
                name=consumer_group or self.service,
                topics=list(subscribe),
                bootstrap=bootstrap,
                uow_factory=self.uow,
                processed=self.processed,
                handlers=handlers,
                clock=self.clock,
                metrics=self.bus_metrics,
                max_attempts=settings.consumer_max_attempts,
                max_batch=settings.consumer_max_batch,
                retry_backoff=settings.consumer_retry_backoff_seconds,
            )
        self.scheduler: TimerScheduler | None = None
        if timer_handlers:
            timers_table = metadata.tables.get(TIMERS)
            if timers_table is None:
                raise ValueError(
                    "timer_handlers need the timers table in the metadata "
                    "(collect_common.timers.add_timers_table)"
                )
            self.scheduler = TimerScheduler(
                self.uow,
                timers_table,
                timer_handlers,
                self.clock,
                poll_interval=settings.scheduler_poll_seconds,
                metrics_registry=self.registry,
                service=self.service,
            )
        self.full_collections: FullCollections | None = None
        if settings.gc_full_collection_seconds > 0:
            self.full_collections = FullCollections(
                settings.gc_full_collection_seconds,
                self._wait_stopping,
                registry=self.registry,
                service=self.service,
            )
        self.context: object | None = None
        """The service's own command dependencies (policy, metrics...), set once by its
        bootstrap; handlers built before it exists read it through :meth:`context_of`."""
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = asyncio.Event()

    def context_of(self, kind: type[C]) -> C:
        """The service's context, checked to be a ``kind``."""
        if not isinstance(self.context, kind):
            raise RuntimeError(f"{self.service}: no {kind.__name__} context was set")
        return self.context

    def uow(self) -> UnitOfWork:
        return UnitOfWork(
            self.sessions, source=f"/{self.service}", clock=self.clock, outbox=self.outbox
        )

    # -- lifecycle ------------------------------------------------------------------
    async def start(self) -> None:
        set_field_cipher(self.cipher)  # EncryptedText columns (SEC-PII) use it
        tune_gc(self.settings.gc_young_threshold)
        if self.settings.migrate_on_start and self.migrations is not None:
            await upgrade(self.migrations, self.database_url)
        if self.relay is not None:
            self._spawn("outbox-relay", self.relay.run)
        if self.consumer is not None:
            self._spawn("consumer", self._run_consumer)
        if self.scheduler is not None and self.settings.scheduler_enabled:
            self._spawn("timer-scheduler", self._run_scheduler)
        if self.full_collections is not None:
            self._spawn("gc-full-collections", self.full_collections.run)

    async def stop(self, grace: float = 10.0) -> None:
        """Stop the background tasks first (the timer scheduler before the others, so
        the events its last batch wrote still reach the relay), then close what they used."""
        self._stopping.set()
        if self.scheduler is not None:
            self.scheduler.request_stop()
            scheduler_tasks = [t for t in self._tasks if t.get_name().endswith(":timer-scheduler")]
            if scheduler_tasks:
                _, late_timers = await asyncio.wait(scheduler_tasks, timeout=grace)
                for task in late_timers:
                    task.cancel()
        if self.relay is not None:
            self.relay.request_stop()
        if self.consumer is not None:
            await self.consumer.stop()
        if self._tasks:
            _, late = await asyncio.wait(self._tasks, timeout=grace)
            for task in late:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        if self.relay is not None:
            await self.relay.close()
        await self.engine.dispose()

    async def _wait_stopping(self, seconds: float) -> bool:
        """Wait ``seconds``, or less when the service stops; True when it is stopping."""
        return await wait_event(self._stopping, seconds)

    def _spawn(self, name: str, fn: Callable[[], Coroutine[Any, Any, None]]) -> None:
        self._tasks.append(asyncio.create_task(fn(), name=f"{self.service}:{name}"))

    async def _run_consumer(self) -> None:
        """Keep the consumer running; a broker outage only delays it."""
        assert self.consumer is not None
        backoff = 0.5
        while not self._stopping.is_set():
            try:
                await self.consumer.run()
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("consumer stopped; restarting", error=repr(exc), retry_in=backoff)
                await self._wait_stopping(backoff)
                backoff = min(backoff * 2, 10.0)

    async def _run_scheduler(self) -> None:
        """Keep the timer scheduler running (it backs off on database errors itself)."""
        assert self.scheduler is not None
        backoff = 0.5
        while not self._stopping.is_set():
            try:
                await self.scheduler.run()
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning(
                    "timer scheduler stopped; restarting", error=repr(exc), retry_in=backoff
                )
                await self._wait_stopping(backoff)
                backoff = min(backoff * 2, 10.0)

    # -- readiness ----------------------------------------------------------------------
    async def check_database(self, timeout: float = 2.0) -> bool:
        async def probe() -> None:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))

        try:
            await asyncio.wait_for(probe(), timeout)
            return True
        except Exception:
            return False

    async def check_broker(self, timeout: float = 1.0) -> bool:
        for server in self.settings.kafka_bootstrap_servers.split(","):
            host, _, port = server.strip().rpartition(":")
            try:
                _, writer = await asyncio.wait_for(
                    asyncio.open_connection(host or "127.0.0.1", int(port)), timeout
                )
            except (TimeoutError, OSError, ValueError):
                continue
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
            return True
        return False

    def describe(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "relay": None if self.relay is None else {"last_error": self.relay.last_error},
            "consumer": None
            if self.consumer is None
            else {
                "group": self.consumer.name,
                "topics": self.consumer.topics,
            },
            "scheduler": None
            if self.scheduler is None
            else {
                "running": self.settings.scheduler_enabled,
                "last_error": self.scheduler.last_error,
            },
        }
