"""The garbage collector tuning a service applies at start."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from collect_common.runtime import tune_gc


@pytest.fixture
def restore_threshold() -> Iterator[None]:
    before = gc.get_threshold()
    yield
    gc.set_threshold(*before)


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
