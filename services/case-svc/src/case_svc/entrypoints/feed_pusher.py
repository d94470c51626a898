"""The change-feed pusher: POSTs each bank's changes to its endpoints (CASE-FEEDBACK).

Targets: the deployment's own (``FEED_PUSH_URL``, cursor row ``FEED_PUSH_TARGET``,
every bank's changes unless ``FEED_PUSH_BANK_ID``) and those ops registered
(``PUT /v1/feed-targets/{target}``: any number per bank, each with its URL,
secret and key id, each enabled or disabled). Every pass takes each enabled
target that is due, reads ``case_changes`` after its own cursor
(``feed_push_state``), POSTs one batch with httpx, signed like the dialer's
webhooks (``collect_common.security.webhooks.sign``: headers
``X-Webhook-Key-Id``, ``-Timestamp``, ``-Delivery-Id``, ``-Signature``;
HMAC-SHA256 of ``f"{timestamp}.{delivery_id}."`` + the body), and advances that
cursor only on a 2xx answer. Anything else (an error status, a timeout, a
refused connection) leaves the cursor and puts that target, alone, in backoff:
its next attempt is due ``min(FEED_PUSH_MAX_BACKOFF_SECONDS, 0.5 * 2**(n-1))``
seconds after its n-th failure in a row, on the service clock; the state is
stored, so a restart keeps it, and ``GET /v1/feed-targets`` shows it. One
target failing never delays another. Batches go in ``seq`` order and never skip
a change (see ``case_svc.service_layer.feed_push``); delivery is at least once,
and a retried batch keeps its delivery id, so the bank deduplicates by delivery
id or ``seq``.

Body: ``{"target", "after", "cursor", "changes": [{"seq", "case_id",
"contract_no", "change", "data", "at"}]}`` (ids, codes, amounts, dates only).

The pusher runs in the processes that run the timer scheduler
(``SCHEDULER_ENABLED``), or wherever ``FEED_PUSH_URL`` is set. With several
replicas, a pusher takes a target's lease (``feed_push_state.leased_until``, on
the service clock, as long as one delivery may take) before delivering to it,
so one replica at a time pushes to a target; the others see it ``busy``. Should
a lease outlive its holder, each cursor still moves by compare-and-set:
duplicates at worst, never a change skipped or out of order. Wiring, in
``case_svc.main.create_app``::

    attach_feed_pusher(app, runtime, settings)
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import httpx
import structlog
from fastapi import FastAPI

from case_svc.service_layer.feed_push import (
    Batch,
    GapWatch,
    PushState,
    PushTarget,
    advance_cursor,
    batch_body,
    claim,
    load_states,
    next_batch,
    record_failure,
    record_success,
    registered_targets,
    release,
)
from case_svc.settings import Settings
from collect_common.clock import wait_event
from collect_common.runtime import ServiceRuntime
from collect_common.security.webhooks import sign

log = structlog.get_logger("case_svc.feed_pusher")

Wait = Callable[[float], Awaitable[None]]
BACKOFF_BASE = 0.5  # seconds after the first failure in a row; doubles with each


class FeedPusher:
    def __init__(
        self,
        runtime: ServiceRuntime,
        settings: Settings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        wait: Wait | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.runtime = runtime
        self.own: PushTarget | None = None
        if settings.feed_push_url:
            if settings.feed_push_secret is None:
                raise ValueError("FeedPusher needs feed_push_secret")
            self.own = PushTarget(
                name=settings.feed_push_target,
                url=settings.feed_push_url,
                secret=settings.feed_push_secret.get_secret_value().encode(),
                key_id=settings.feed_push_key_id,
                bank_id=settings.feed_push_bank_id,
            )
        self.batch_size = settings.feed_push_batch
        self.poll = settings.feed_push_poll_seconds
        self.max_backoff = settings.feed_push_max_backoff_seconds
        # one delivery at most: the request's timeout, and room for the database
        self.lease = 2 * settings.feed_push_timeout_seconds + 5.0
        self._grace = settings.feed_push_gap_grace_seconds
        self._monotonic = monotonic
        self._client = httpx.AsyncClient(
            transport=transport, timeout=settings.feed_push_timeout_seconds
        )
        self._wait_fn = wait
        self._stopping = asyncio.Event()
        self._gaps: dict[str, GapWatch] = {}
        self._next_due: datetime | None = None
        self.delivered = 0  # changes acknowledged since start, all targets
        self.failures = 0  # attempts refused or failed since start, all targets

    @property
    def target(self) -> str | None:
        return None if self.own is None else self.own.name

    def gaps(self, target: str) -> GapWatch:
        if target not in self._gaps:
            self._gaps[target] = GapWatch(self._grace, self._monotonic)
        return self._gaps[target]

    # -- the loop -------------------------------------------------------------------
    async def run(self) -> None:
        """Push until ``request_stop()``; failures only delay their own target."""
        while not self._stopping.is_set():
            try:
                outcomes = await self.push_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database away, say: try again later
                log.warning("feed push pass failed", error=repr(exc))
                self.failures += 1
                await self._wait(self.poll)
                continue
            if "pushed" in outcomes.values():
                continue  # more may be waiting: go on at once
            delay = self.poll
            if self._next_due is not None:
                until = (self._next_due - self.runtime.clock.now()).total_seconds()
                delay = max(0.0, min(delay, until))
            await self._wait(delay)

    def request_stop(self) -> None:
        self._stopping.set()

    async def close(self) -> None:
        await self._client.aclose()

    async def targets(self) -> list[PushTarget]:
        """The targets to push now: the deployment's own, then the enabled registered ones."""
        async with self.runtime.sessions() as session:
            listed = await registered_targets(session, enabled_only=True)
        own = [] if self.own is None else [self.own]
        return own + [t for t in listed if t.name != self.target]

    async def push_once(self) -> dict[str, str]:
        """One pass: one step for each enabled target. Per target ``"pushed"`` (its
        cursor advanced), ``"idle"`` (nothing new), ``"failed"``, ``"waiting"`` (in
        backoff, not attempted) or ``"busy"`` (another pusher holds its lease)."""
        targets = await self.targets()
        async with self.runtime.sessions() as session:
            states = await load_states(session, [t.name for t in targets])
        now = self.runtime.clock.now()
        outcomes: dict[str, str] = {}
        self._next_due = None
        for target in targets:
            state = states.get(target.name, PushState())
            if not state.due(now):
                outcomes[target.name] = "waiting"
                self._note_due(state.next_attempt_at)
                continue
            outcomes[target.name] = await self.push_target(target)
        return outcomes

    async def push_target(self, target: PushTarget) -> str:
        """One step for ``target``: ``"pushed"``, ``"idle"``, ``"failed"`` or ``"busy"``
        (another pusher holds its lease)."""
        async with self.runtime.sessions() as session, session.begin():
            if not await claim(session, target.name, self.runtime.clock.now(), self.lease):
                return "busy"
        try:
            return await self._step(target)
        except BaseException:
            with contextlib.suppress(Exception):
                async with self.runtime.sessions() as session, session.begin():
                    await release(session, target.name)
            raise

    async def _step(self, target: PushTarget) -> str:
        """Deliver the next batch to ``target``, whose lease this pusher holds; the lease
        is freed with the outcome (cursor moved, or failure recorded)."""
        gaps = self.gaps(target.name)
        async with self.runtime.sessions() as session:
            states = await load_states(session, [target.name])
            cursor = states.get(target.name, PushState()).last_seq
            batch = await next_batch(session, cursor, self.batch_size, gaps, target.bank_id)
        if batch is not None and batch.changes:
            error = await self._deliver(target, batch)
            if error is not None:
                await self._failed(target, error)  # frees the lease too
                return "failed"
        moved = False
        async with self.runtime.sessions() as session, session.begin():
            if batch is not None:
                moved = await advance_cursor(
                    session, target.name, cursor, batch.last_seq, self.runtime.clock.now()
                )
            if moved:
                await record_success(session, target.name)
            await release(session, target.name)
        if batch is None:
            return "idle"
        if not moved:
            log.warning("feed push cursor moved by someone else", target=target.name)
            return "idle"
        gaps.forget_below(batch.last_seq)
        self.delivered += len(batch.changes)
        return "pushed"

    # -- internals ------------------------------------------------------------------
    async def _failed(self, target: PushTarget, error: str) -> None:
        self.failures += 1
        async with self.runtime.sessions() as session, session.begin():
            state = await record_failure(
                session,
                target.name,
                error,
                self.runtime.clock.now(),
                base=BACKOFF_BASE,
                cap=self.max_backoff,
            )
        self._note_due(state.next_attempt_at)

    def _note_due(self, at: datetime | None) -> None:
        if at is not None and (self._next_due is None or at < self._next_due):
            self._next_due = at

    async def _deliver(self, target: PushTarget, batch: Batch) -> str | None:
        """POST the batch; None when acknowledged (2xx), else what went wrong."""
        body = batch_body(target.name, batch)
        delivery_id = f"{target.name}-{batch.first_cursor}-{batch.last_seq}"
        timestamp = int(self.runtime.clock.now().timestamp())
        headers = {
            "content-type": "application/json",
            **sign(target.secret, timestamp, delivery_id, body, key_id=target.key_id),
        }
        try:
            response = await self._client.post(target.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            log.warning(
                "feed push failed", target=target.name, error=repr(exc), delivery_id=delivery_id
            )
            return f"{type(exc).__name__}: {exc}"
        if not response.is_success:
            log.warning(
                "feed push refused",
                target=target.name,
                status=response.status_code,
                delivery_id=delivery_id,
            )
            return f"HTTP {response.status_code}"
        return None

    async def _wait(self, seconds: float) -> None:
        if self._wait_fn is not None:
            await self._wait_fn(seconds)
            return
        await wait_event(self._stopping, seconds)


def attach_feed_pusher(
    app: FastAPI, runtime: ServiceRuntime, settings: Settings, **options: Any
) -> FeedPusher | None:
    """Run a ``FeedPusher`` inside ``app``'s lifespan when ``feed_push_url`` is set or the
    process runs the timer scheduler (registered targets are pushed from there).

    It starts after the runtime (migrations done) and stops before it (the engine
    still open). Returns the pusher (also ``app.state.feed_pusher``), or None.
    ``options`` go to ``FeedPusher`` (``transport``, ``wait``: for tests).
    """
    app.state.feed_pusher = None
    if not settings.feed_push_url and not settings.scheduler_enabled:
        return None
    pusher = FeedPusher(runtime, settings, **options)
    app.state.feed_pusher = pusher
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(a: FastAPI) -> AsyncIterator[Any]:
        async with inner(a) as state:
            task = asyncio.create_task(pusher.run(), name=f"{runtime.service}:feed-pusher")
            try:
                yield state
            finally:
                pusher.request_stop()
                done, _ = await asyncio.wait({task}, timeout=10.0)
                if not done:
                    task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
                await pusher.close()

    app.router.lifespan_context = lifespan
    return pusher
