"""Group commit for the dialer's pre-dial decisions.

The dialer asks many decisions at once (one per line it is about to dial). Taken one
transaction each, every decision pays the same round trips and its own commit. The
:class:`DecisionBatcher` queues the asks that arrive while a batch is being decided and
decides them together in the next one (:func:`decide_many`: a fixed number of statements
and one commit per batch), so under load the cost per decision falls and, when idle, a
lone ask is decided at once: no waiting for a batch to fill.

What a caller sees is unchanged: its answer comes after the transaction that recorded it
committed (the attempt counts towards the cap, the denial is on record and its event in the
outbox). Batches run on ``workers`` tasks; two batches about the same debtor are serialised
by the debtor's row lock, as two single decisions are. When a batch's transaction fails,
its asks are decided again one by one, so one bad ask fails alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections.abc import Awaitable, Callable
from dataclasses import replace

import structlog

from collect_common.db import current_event_context
from contact_svc.service_layer.decisions import (
    ContactContext,
    DecisionAsk,
    DecisionOutcome,
    decide_many,
)

log = structlog.get_logger(__name__)

_Pending = tuple[DecisionAsk, asyncio.Future[DecisionOutcome]]
LINGER_STEP = 0.001  # seconds: how often a lingering batch looks for new asks


class DecisionBatcher:
    def __init__(
        self,
        ctx: ContactContext,
        *,
        max_batch: int = 256,
        workers: int = 2,
        linger_seconds: float = 0.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if max_batch < 1 or workers < 1 or linger_seconds < 0:
            raise ValueError("max_batch and workers must be at least 1, linger at least 0")
        self._ctx = ctx
        self._max_batch = max_batch
        self._workers = workers
        self._linger = linger_seconds
        self._sleep = sleep
        self._queue: asyncio.Queue[_Pending] | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def decide(self, ask: DecisionAsk) -> DecisionOutcome:
        """Decide ``ask`` in the next batch; raises as :func:`decide_contact` would."""
        if self._queue is None:
            self._start()
        assert self._queue is not None
        if ask.cause is None:  # its events carry this request's correlation, not the batch's
            ask = replace(ask, cause=current_event_context())
        future: asyncio.Future[DecisionOutcome] = asyncio.get_running_loop().create_future()
        await self._queue.put((ask, future))
        return await future

    def _start(self) -> None:
        self._queue = asyncio.Queue()
        # A fresh context: the workers serve every request, not the one that started them
        # (its request id in the logs, its correlation on the events).
        self._tasks = [
            asyncio.create_task(
                self._work(), name=f"decision-batch-{i}", context=contextvars.Context()
            )
            for i in range(self._workers)
        ]

    async def aclose(self) -> None:
        """Stop the workers; asks still queued are answered with an error."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        if self._queue is not None:
            while not self._queue.empty():
                _, future = self._queue.get_nowait()
                if not future.done():
                    future.set_exception(RuntimeError("contact-svc is stopping"))
            self._queue = None

    async def _work(self) -> None:
        assert self._queue is not None
        queue = self._queue
        while True:
            batch = [await queue.get()]
            if self._linger and not queue.empty():
                await self._linger_while_asks_arrive(queue)
            while len(batch) < self._max_batch and not queue.empty():
                batch.append(queue.get_nowait())
            live = [(ask, f) for ask, f in batch if not f.cancelled()]
            if not live:
                continue
            try:
                await self._decide(live)
            except asyncio.CancelledError:
                for _, future in live:
                    if not future.done():
                        future.set_exception(RuntimeError("contact-svc is stopping"))
                raise
            except Exception as exc:
                if len(live) == 1:
                    _settle(live[0][1], exc)
                    continue
                log.warning("decision batch failed; deciding its asks one by one", error=repr(exc))
                for one in live:
                    try:
                        await self._decide([one])
                    except Exception as single:
                        _settle(one[1], single)

    async def _linger_while_asks_arrive(self, queue: asyncio.Queue[_Pending]) -> None:
        """Under load (asks already waiting), let the batch fill a little longer so that its
        fixed cost (round trips, commit) is shared by more asks: wait in steps of
        ``LINGER_STEP`` up to the linger, while each step brings new asks. When none come
        (the callers are all waiting for answers) it starts at once; a lone ask never
        waits."""
        step = min(self._linger, LINGER_STEP)
        size = queue.qsize()
        for _ in range(max(1, round(self._linger / step))):
            if size + 1 >= self._max_batch:
                return
            await self._sleep(step)
            grown = queue.qsize()
            if grown == size:
                return
            size = grown

    async def _decide(self, batch: list[_Pending]) -> None:
        async with self._ctx.uow_factory() as uow:
            answers = await decide_many(uow, self._ctx.policies, [ask for ask, _ in batch])
            await uow.commit()
        if self._ctx.metrics is not None:
            self._ctx.metrics.batch_sizes.observe(len(batch))
        for (ask, future), answer in zip(batch, answers, strict=True):
            if isinstance(answer, LookupError):
                _settle(future, answer)
                continue
            if self._ctx.metrics is not None:
                self._ctx.metrics.record(ask.channel, answer.decision)
            if not future.done():
                future.set_result(answer)


def _settle(future: asyncio.Future[DecisionOutcome], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)
