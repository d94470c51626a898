"""An injectable clock: production reads the system time, tests move time by hand.

Everything inside the platform is timezone-aware UTC; convert to the debtor's
local time only where a rule says so (CALL-QUIET, QA-QUIET).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

ZERO = timedelta(0)


class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant, timezone-aware UTC."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class OffsetFile:
    """Seconds (a float) to add to the system time, kept in a file shared by processes.

    The file is re-read only when its modification time (or size) changes, so a
    call costs one ``stat``. A missing or empty file means no offset; a file that
    cannot be parsed keeps the last offset read (a writer replacing it mid-read).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._stamp: tuple[int, int] | None = None
        self._delta = ZERO
        self._lock = threading.Lock()

    def delta(self) -> timedelta:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return ZERO
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp == self._stamp:
            return self._delta
        with self._lock:
            try:
                raw = self.path.read_text().strip()
                self._delta = timedelta(seconds=float(raw)) if raw else ZERO
            except ValueError:
                return self._delta
            except FileNotFoundError:
                return ZERO
            self._stamp = stamp
        return self._delta

    def write(self, seconds: float) -> None:
        """Set the offset (atomically: other processes never read half a value)."""
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        tmp.write_text(repr(float(seconds)))
        os.replace(tmp, self.path)

    def advance(self, delta: timedelta) -> timedelta:
        """Move every process following this file forward by ``delta``."""
        if delta < ZERO:
            raise ValueError("time does not run backwards")
        new = self.delta() + delta
        self.write(new.total_seconds())
        return new


class OffsetFileClock:
    """The system time plus the offset in an :class:`OffsetFile`: the clock of every
    process that shares the file (the services, and the test driving them)."""

    def __init__(self, path: str | Path) -> None:
        self.offset = OffsetFile(path)

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset.delta()


def service_clock(clock_file: str | Path | None) -> Clock:
    """A service's clock: the system time, or, when ``clock_file`` names a file (the
    ``clock_file`` setting, development and end-to-end tests only; production refuses
    it), the system time plus the offset that file holds, shared by every process that
    follows it."""
    return OffsetFileClock(clock_file) if clock_file else SystemClock()


class FrozenClock:
    """A clock that only moves when told to. For tests; never sleeps."""

    def __init__(self, start: datetime | None = None) -> None:
        start = start or datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
        if start.tzinfo is None:
            raise ValueError("FrozenClock needs a timezone-aware start")
        self._now = start.astimezone(UTC)

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> datetime:
        if delta < timedelta(0):
            raise ValueError("time does not run backwards")
        self._now += delta
        return self._now

    def set(self, instant: datetime) -> None:
        if instant.tzinfo is None:
            raise ValueError("instant must be timezone-aware")
        self._now = instant.astimezone(UTC)


async def wait_event(event: asyncio.Event, seconds: float) -> bool:
    """Wait until ``event`` is set or ``seconds`` have passed; True when it is set. The
    background loops' pause: a stop (or a wake-up) ends it early."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), timeout=seconds)
    return event.is_set()


def ensure_utc(value: datetime) -> datetime:
    """Reject naive datetimes; normalise aware ones to UTC."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("naive datetime: every instant must carry its time zone")
    return value.astimezone(UTC)


def utc_from_timestamp(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)
