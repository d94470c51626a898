"""Made-up mainland national IDs for tests, benchmarks and the soak: well-formed, with the
GB 11643 check character, so case-svc's intake accepts them (never real people's)."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"


def with_check_char(body: str) -> str:
    """``body`` (17 digits) followed by its GB 11643 check character."""
    return body + _CHECK[sum(int(d) * w for d, w in zip(body, _WEIGHTS, strict=True)) % 11]


def national_id(rng: random.Random) -> str:
    """A well-formed national ID with a random birth date in 1960-1999."""
    born = datetime(1960, 1, 1) + timedelta(days=rng.randrange(365 * 40))
    return with_check_char(f"110105{born:%Y%m%d}{rng.randrange(1000):03d}")


def nth_national_id(n: int, base: int) -> str:
    """The ``n``-th of a run's distinct national IDs (``base`` shifts the birth dates)."""
    born = datetime(1960, 1, 1) + timedelta(days=(base + n // 1000) % 14000)
    return with_check_char(f"110105{born:%Y%m%d}{n % 1000:03d}")
