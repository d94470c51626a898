from __future__ import annotations

import sys
from pathlib import Path

import pytest

from collect_common.clock import FrozenClock

sys.path.insert(0, str(Path(__file__).parent))
from qa_test_helpers import NOW


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(NOW)
