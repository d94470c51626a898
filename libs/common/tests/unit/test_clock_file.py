"""The shared clock file: development and end-to-end tests move time for every process."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from collect_common.clock import OffsetFile, OffsetFileClock, SystemClock, service_clock
from collect_common.db import new_metadata
from collect_common.runtime import ServiceRuntime
from collect_common.settings import ServiceSettings

DAY = timedelta(days=1)


def _close_to(value: datetime, expected: datetime) -> bool:
    return abs(value - expected) < timedelta(seconds=5)


def test_offset_file_clock_adds_the_seconds_in_the_file(tmp_path: Path) -> None:
    path = tmp_path / "clock"
    clock = OffsetFileClock(path)
    assert _close_to(clock.now(), datetime.now(UTC))  # no file yet: the system time
    path.write_text("86400.5")
    assert _close_to(clock.now(), datetime.now(UTC) + DAY)
    assert clock.now().tzinfo is UTC


def test_the_file_is_reread_when_it_changes(tmp_path: Path) -> None:
    path = tmp_path / "clock"
    offset = OffsetFile(path)
    offset.write(3600)
    assert offset.delta() == timedelta(hours=1)
    offset.advance(DAY)
    assert offset.delta() == DAY + timedelta(hours=1)
    # another process writes the same file: a new mtime, a new value
    path.write_text("-60")
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    assert offset.delta() == timedelta(seconds=-60)


def test_an_unchanged_file_is_not_read_again(tmp_path: Path) -> None:
    path = tmp_path / "clock"
    offset = OffsetFile(path)
    offset.write(120)
    assert offset.delta() == timedelta(minutes=2)
    st = path.stat()
    path.write_text("999.0")  # same size, mtime put back: the cached value stands
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert offset.delta() == timedelta(minutes=2)


def test_a_garbled_file_keeps_the_last_offset(tmp_path: Path) -> None:
    path = tmp_path / "clock"
    offset = OffsetFile(path)
    offset.write(30)
    assert offset.delta() == timedelta(seconds=30)
    path.write_text("not a number")
    assert offset.delta() == timedelta(seconds=30)


def test_time_is_not_moved_backwards_by_advance(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="backwards"):
        OffsetFile(tmp_path / "clock").advance(-DAY)


def test_a_runtime_with_the_setting_follows_the_file(tmp_path: Path) -> None:
    path = tmp_path / "clock"
    OffsetFile(path).write(2 * DAY.total_seconds())
    settings = ServiceSettings(
        environment="test",
        service_name="clocked",
        database_url=f"sqlite+aiosqlite:///{tmp_path}/x.db",
        clock_file=str(path),
    )
    runtime = ServiceRuntime(settings=settings, metadata=new_metadata())
    assert _close_to(runtime.clock.now(), datetime.now(UTC) + 2 * DAY)
    OffsetFile(path).advance(DAY)  # another process moves the platform's time
    assert _close_to(runtime.clock.now(), datetime.now(UTC) + 3 * DAY)
    assert _close_to(service_clock(str(path)).now(), datetime.now(UTC) + 3 * DAY)
    assert isinstance(service_clock(""), SystemClock)


def test_without_the_setting_the_system_clock_is_the_system_time(tmp_path: Path) -> None:
    settings = ServiceSettings(
        environment="test",
        service_name="plain",
        database_url=f"sqlite+aiosqlite:///{tmp_path}/x.db",
    )
    runtime = ServiceRuntime(settings=settings, metadata=new_metadata())
    assert _close_to(runtime.clock.now(), datetime.now(UTC))


def test_the_setting_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLOCK_FILE", "/tmp/e2e-clock")
    assert ServiceSettings().clock_file == "/tmp/e2e-clock"


def test_production_refuses_a_moved_clock() -> None:
    secrets = {
        "field_keys": "prod1:" + "A" * 44,
        "blind_index_key": "B" * 44,
        "token_secret": "prod-token-secret-" + "x" * 40,
        "api_keys": "bank-core:bank:" + "0" * 64,
        "webhook_secrets": "dialer:prod-webhook-secret",
    }
    base = {"environment": "production", "database_url": "postgresql://db/x", **secrets}
    ServiceSettings(**base)  # the same settings without the clock file are accepted
    with pytest.raises(ValidationError, match="clock_file"):
        ServiceSettings(**base, clock_file="/tmp/e2e-clock")
