"""How a service runs the garbage collector: tuned at start, full collections by time."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from collect_common.db import new_metadata
from collect_common.gc_tuning import FullCollections, tune_gc
from collect_common.runtime import ServiceRuntime
from collect_common.settings import ServiceSettings


@pytest.fixture
def restore_threshold() -> Iterator[None]:
    before = gc.get_threshold()
    yield
    gc.set_threshold(*before)


@pytest.fixture
def no_automatic_collections() -> Iterator[None]:
    """Only the collections a test asks for run while it does."""
    gc.disable()
    yield
    gc.enable()


def test_the_young_generation_threshold_is_raised_and_the_startup_heap_frozen(
    restore_threshold: None,
) -> None:
    _, older, oldest = gc.get_threshold()
    tune_gc(12_345)
    assert gc.get_threshold() == (12_345, older, oldest)
    assert gc.get_freeze_count() > 0  # what existed at start is out of the collector's scans


def test_zero_leaves_pythons_collector_as_it_is(restore_threshold: None) -> None:
    gc.set_threshold(700, 10, 10)
    tune_gc(0)
    assert gc.get_threshold() == (700, 10, 10)


class Node:
    """A request's object graph in miniature: a cycle, freed only by the collector."""

    def __init__(self) -> None:
        self.other: Node | None = None


def _cycle() -> tuple[Node, weakref.ref[Node]]:
    a, b = Node(), Node()
    a.other, b.other = b, a
    return a, weakref.ref(b)


class Ticks:
    """``wait`` for the collections: go on ``n`` times, then say the service is stopping."""

    def __init__(self, n: int) -> None:
        self.left = n
        self.waited: list[float] = []

    async def __call__(self, seconds: float) -> bool:
        self.waited.append(seconds)
        self.left -= 1
        return self.left < 0


def _sample(registry: CollectorRegistry, name: str) -> float:
    value = registry.get_sample_value(name, {"service": "svc"})
    return 0.0 if value is None else value


async def test_garbage_that_outlived_a_young_collection_is_freed_by_the_next_full_one(
    no_automatic_collections: None,
) -> None:
    in_use, watch = _cycle()
    gc.collect(0)  # the cycle is still in use: it survives into an older generation
    del in_use  # the request ends; the cycle is garbage now
    gc.collect(0)
    assert watch() is not None  # young collections no longer look at it

    registry = CollectorRegistry()
    ticks = Ticks(1)
    collections = FullCollections(60.0, ticks, registry=registry, service="svc")
    await collections.run()

    assert watch() is None
    assert ticks.waited == [60.0, 60.0]  # one collection, then the stop
    assert _sample(registry, "gc_full_collection_seconds_count") == 1
    assert _sample(registry, "gc_full_collection_objects_total") >= 2


async def test_a_stopping_service_collects_nothing_more() -> None:
    calls: list[int] = []

    def collect() -> int:
        calls.append(1)
        return 0

    registry = CollectorRegistry()
    await FullCollections(5.0, Ticks(0), registry=registry, service="svc", collect=collect).run()
    assert calls == []
    assert _sample(registry, "gc_full_collection_seconds_count") == 0


async def test_a_failing_collection_does_not_end_the_collections() -> None:
    outcomes: list[int | Exception] = [RuntimeError("a finalizer raised"), 3]

    def collect() -> int:
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    registry = CollectorRegistry()
    await FullCollections(5.0, Ticks(2), registry=registry, service="svc", collect=collect).run()
    assert outcomes == []
    assert _sample(registry, "gc_full_collection_objects_total") == 3


def test_the_period_must_be_positive() -> None:
    with pytest.raises(ValueError, match="period"):
        FullCollections(0, Ticks(0), registry=CollectorRegistry(), service="svc")


def _runtime(tmp_path: Path, seconds: float) -> ServiceRuntime:
    settings = ServiceSettings(
        service_name="svc",
        database_url=f"sqlite+aiosqlite:///{tmp_path}/gc.db",
        relay_enabled=False,
        consumer_enabled=False,
        migrate_on_start=False,
        log_json=False,
        gc_young_threshold=0,
        gc_full_collection_seconds=seconds,
    )
    return ServiceRuntime(settings=settings, metadata=new_metadata())


async def test_a_service_runs_the_full_collections_and_they_end_with_it(tmp_path: Path) -> None:
    runtime = _runtime(tmp_path, 3600)
    await runtime.start()
    [task] = [t for t in runtime._tasks if t.get_name() == "svc:gc-full-collections"]
    await runtime.stop()
    # the stop ended the hour's wait: the task returned, it was not cancelled at the grace
    assert task.done() and not task.cancelled()


async def test_zero_seconds_runs_no_full_collections(tmp_path: Path) -> None:
    runtime = _runtime(tmp_path, 0)
    await runtime.start()
    assert runtime.full_collections is None
    assert not [t for t in runtime._tasks if t.get_name().endswith("gc-full-collections")]
    await runtime.stop()
