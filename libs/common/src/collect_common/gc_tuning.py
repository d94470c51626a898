"""How a service runs Python's cyclic garbage collector.

At start (:func:`tune_gc`) the startup heap is frozen out of the collector's scans and
the young generation is collected every ``gc_young_threshold`` allocations instead of
Python's 700: a service allocates many short-lived objects per request or batch, almost
none of them cyclic garbage, and at the default the collector took up to a third of a
consumer's CPU.

With a young generation that large, collections come by the count of allocations, so
their pace follows the traffic. Garbage that was still in use at a young collection moves
to the older generations, which are collected after ten and a hundred young ones (and the
oldest only when it has grown by a quarter): at a steady, modest load that is hours, and
the process's memory climbs until then. :class:`FullCollections` bounds that by time:
every ``gc_full_collection_seconds`` it collects all generations. The frozen startup heap
is not scanned, so a full collection costs what the live heap since start costs (4 to
16 ms on average in the soak), and the ``gc_full_collection_seconds`` histogram shows it.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Awaitable, Callable

import structlog
from prometheus_client import CollectorRegistry, Counter, Histogram

log = structlog.get_logger("collect_common.gc_tuning")

_gc_frozen = False


def tune_gc(young_threshold: int) -> None:
    """Freeze what exists once the service has started (modules, tables, policies) out
    of the collector's scans and collect the young generation every ``young_threshold``
    allocations. 0 leaves Python's defaults."""
    global _gc_frozen
    if young_threshold <= 0:
        return
    if not _gc_frozen:  # once per process (tests start many runtimes in one)
        gc.freeze()
        _gc_frozen = True
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(young_threshold, older, oldest)


class FullCollections:
    """Collect every generation once per ``period`` seconds until ``wait`` says stop.

    ``wait(seconds)`` returns True when the service is stopping (the runtime waits on its
    stop event, tests pass their own); ``collect`` is :func:`gc.collect`."""

    def __init__(
        self,
        period: float,
        wait: Callable[[float], Awaitable[bool]],
        *,
        registry: CollectorRegistry,
        service: str,
        collect: Callable[[], int] = gc.collect,
        timer: Callable[[], float] = time.perf_counter,
    ) -> None:
        if period <= 0:
            raise ValueError("period must be positive")
        self.period = period
        self._wait = wait
        self._collect = collect
        self._timer = timer
        self._seconds = Histogram(
            "gc_full_collection_seconds",
            "Time one periodic full garbage collection held the event loop",
            ["service"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
            registry=registry,
        ).labels(service)
        self._collected = Counter(
            "gc_full_collection_objects_total",
            "Unreachable objects the periodic full garbage collections freed",
            ["service"],
            registry=registry,
        ).labels(service)

    def collect_once(self) -> int:
        started = self._timer()
        freed = self._collect()
        self._seconds.observe(self._timer() - started)
        self._collected.inc(freed)
        return freed

    async def run(self) -> None:
        while not await self._wait(self.period):
            try:
                self.collect_once()
            except Exception as exc:  # a finalizer that raises must not stop the sweeps
                log.warning("periodic garbage collection failed", error=repr(exc))
