"""The change-feed pusher: POSTs the bank's changes to its endpoint (CASE-FEEDBACK).

Optional: it runs only when ``FEED_PUSH_URL`` is set. It reads ``case_changes``
after its stored cursor (``feed_push_state``), POSTs each batch with httpx,
signed like the dialer's webhooks (``collect_common.security.webhooks.sign``:
headers ``X-Webhook-Key-Id``, ``-Timestamp``, ``-Delivery-Id``, ``-Signature``;
HMAC-SHA256 of ``f"{timestamp}.{delivery_id}."`` + the body), and advances the
cursor only on a 2xx answer. Anything else (an error status, a timeout, a
refused connection) leaves the cursor, and the same batch is sent again, newly
signed, after an exponential backoff capped at ``FEED_PUSH_MAX_BACKOFF_SECONDS``.
Batches go in ``seq`` order and never skip a change (see
``case_svc.service_layer.feed_push``); delivery is at least once, and a retried
batch keeps its delivery id, so the bank deduplicates by delivery id or ``seq``.

Body: ``{"target", "after", "cursor", "changes": [{"seq", "case_id",
"contract_no", "change", "data", "at"}]}`` (ids, codes, amounts, dates only).

Run one pusher per target (e.g. one replica); a second one would deliver
duplicates, never out of order, since the cursor moves by compare-and-set.

Wiring, in ``case_svc.main.create_app`` after ``build_app(...)``::

    attach_feed_pusher(app, runtime, settings)
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import structlog
from fastapi import FastAPI

from case_svc.service_layer.feed_push import (
    Batch,
    GapWatch,
    advance_cursor,
    batch_body,
    load_cursor,
    next_batch,
)
from case_svc.settings import Settings
from collect_common.runtime import ServiceRuntime
from collect_common.security.webhooks import sign

log = structlog.get_logger("case_svc.feed_pusher")

Wait = Callable[[float], Awaitable[None]]


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
        if not settings.feed_push_url:
            raise ValueError("FeedPusher needs feed_push_url")
        if settings.feed_push_secret is None:
            raise ValueError("FeedPusher needs feed_push_secret")
        self.runtime = runtime
        self.url = settings.feed_push_url
        self.target = settings.feed_push_target
        self.bank_id = settings.feed_push_bank_id
        self.batch_size = settings.feed_push_batch
        self.poll = settings.feed_push_poll_seconds
        self.max_backoff = settings.feed_push_max_backoff_seconds
        self.key_id = settings.feed_push_key_id
        self._secret = settings.feed_push_secret.get_secret_value().encode()
        self._client = httpx.AsyncClient(
            transport=transport, timeout=settings.feed_push_timeout_seconds
        )
        self._wait_fn = wait
        self._stopping = asyncio.Event()
        self.gaps = GapWatch(settings.feed_push_gap_grace_seconds, monotonic)
        self.delivered = 0  # changes acknowledged since start
        self.failures = 0  # attempts refused or failed since start

    # -- the loop -------------------------------------------------------------------
    async def run(self) -> None:
        """Push until ``request_stop()``; failures only delay, never skip."""
        backoff = 0.0
        while not self._stopping.is_set():
            try:
                outcome = await self.push_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database away, say: try again later
                log.warning("feed push pass failed", error=repr(exc))
                outcome = "failed"
            if outcome == "failed":
                self.failures += 1
                backoff = min(self.max_backoff, backoff * 2 if backoff else 0.5)
                await self._wait(backoff)
            elif outcome == "idle":
                backoff = 0.0
                await self._wait(self.poll)
            else:
                backoff = 0.0

    def request_stop(self) -> None:
        self._stopping.set()

    async def close(self) -> None:
        await self._client.aclose()

    async def push_once(self) -> str:
        """One step: ``"pushed"`` (cursor advanced), ``"idle"`` or ``"failed"``."""
        async with self.runtime.sessions() as session:
            cursor = await load_cursor(session, self.target)
            batch = await next_batch(session, cursor, self.batch_size, self.gaps, self.bank_id)
        if batch is None:
            return "idle"
        if batch.changes and not await self._deliver(batch):
            return "failed"
        async with self.runtime.sessions() as session, session.begin():
            moved = await advance_cursor(
                session, self.target, cursor, batch.last_seq, self.runtime.clock.now()
            )
        if not moved:
            log.warning("feed push cursor moved by someone else", target=self.target)
            return "idle"
        self.gaps.forget_below(batch.last_seq)
        self.delivered += len(batch.changes)
        return "pushed"

    # -- internals ------------------------------------------------------------------
    async def _deliver(self, batch: Batch) -> bool:
        body = batch_body(self.target, batch)
        delivery_id = f"{self.target}-{batch.first_cursor}-{batch.last_seq}"
        timestamp = int(self.runtime.clock.now().timestamp())
        headers = {
            "content-type": "application/json",
            **sign(self._secret, timestamp, delivery_id, body, key_id=self.key_id),
        }
        try:
            response = await self._client.post(self.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            log.warning("feed push failed", error=repr(exc), delivery_id=delivery_id)
            return False
        if not response.is_success:
            log.warning("feed push refused", status=response.status_code, delivery_id=delivery_id)
            return False
        return True

    async def _wait(self, seconds: float) -> None:
        if self._wait_fn is not None:
            await self._wait_fn(seconds)
            return
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)


def attach_feed_pusher(
    app: FastAPI, runtime: ServiceRuntime, settings: Settings, **options: Any
) -> FeedPusher | None:
    """Run a ``FeedPusher`` inside ``app``'s lifespan when ``feed_push_url`` is set.

    It starts after the runtime (migrations done) and stops before it (the engine
    still open). Returns the pusher (also ``app.state.feed_pusher``), or None.
    ``options`` go to ``FeedPusher`` (``transport``, ``wait``: for tests).
    """
    app.state.feed_pusher = None
    if not settings.feed_push_url:
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
