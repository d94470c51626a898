from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, select
from sqlalchemy.exc import StatementError

from collect_common.db import UtcDateTime, create_engine


async def test_instants_come_back_aware_utc_even_from_sqlite() -> None:
    metadata = MetaData()
    t = Table("t", metadata, Column("id", Integer, primary_key=True), Column("at", UtcDateTime))
    engine = create_engine("sqlite+aiosqlite:///:memory:")
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
        shanghai = datetime(2026, 11, 28, 10, 0, tzinfo=timezone(timedelta(hours=8)))
        await conn.execute(t.insert().values(id=1, at=shanghai))
        back = await conn.scalar(select(t.c.at))
        with pytest.raises(StatementError, match="naive datetime"):
            await conn.execute(t.insert().values(id=2, at=datetime(2026, 11, 28, 10, 0)))
    await engine.dispose()
    assert back == datetime(2026, 11, 28, 2, 0, tzinfo=UTC)
    assert back.tzinfo is UTC
