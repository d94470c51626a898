"""The waits on PostgreSQL are bounded by the service's settings (DB_*_TIMEOUT_SECONDS)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from collect_common.db import DatabaseTimeouts, create_engine
from collect_common.settings import ServiceSettings


def test_the_settings_read_the_timeouts_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert ServiceSettings().database_timeouts() == DatabaseTimeouts(5.0, 60.0, 10.0)
    monkeypatch.setenv("DB_CONNECT_TIMEOUT_SECONDS", "3")
    monkeypatch.setenv("DB_COMMAND_TIMEOUT_SECONDS", "4.5")
    monkeypatch.setenv("DB_POOL_TIMEOUT_SECONDS", "2")
    assert ServiceSettings().database_timeouts() == DatabaseTimeouts(3.0, 4.5, 2.0)


@pytest.mark.parametrize("value", ["0", "-1", "soon"])
def test_a_timeout_that_is_not_a_positive_number_of_seconds_is_refused(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("DB_COMMAND_TIMEOUT_SECONDS", value)
    with pytest.raises(ValidationError, match="db_command_timeout_seconds"):
        ServiceSettings()


async def test_the_engine_applies_them() -> None:
    engine = create_engine(
        "postgresql://u:p@127.0.0.1:9/db", timeouts=DatabaseTimeouts(3.0, 4.5, 2.0)
    )
    try:
        # the pool's wait; asyncpg's connect and command timeouts are proved against a
        # frozen server in tests/reliability/test_postgres_outage.py
        assert engine.pool.timeout() == 2.0  # type: ignore[attr-defined]
    finally:
        await engine.dispose()
