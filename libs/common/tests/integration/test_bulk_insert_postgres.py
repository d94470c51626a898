"""insert_many on PostgreSQL: COPY inside the unit of work's transaction, with the
column types' bind processing, and the same errors as a plain INSERT."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import (
    Column,
    Date,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    func,
    select,
    text,
)
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from collect_common.clock import FrozenClock
from collect_common.db import (
    COPY_MIN_ROWS,
    UnitOfWork,
    UtcDateTime,
    create_engine,
    insert_many,
    new_metadata,
    session_factory,
)
from collect_common.events import EventEnvelope
from collect_common.events.types import CaseRecalled
from collect_common.security.crypto import EncryptedText, FieldCipher, Keyring, use_field_cipher

pytestmark = pytest.mark.postgres

NOW = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)
SHANGHAI = timezone(timedelta(hours=8))
ROWS = COPY_MIN_ROWS + 36


class Db:
    def __init__(self, engine: AsyncEngine, metadata: MetaData, people: Table) -> None:
        self.engine = engine
        self.sessions: async_sessionmaker[AsyncSession] = session_factory(engine)
        self.metadata = metadata
        self.people = people
        self.cipher = FieldCipher(Keyring.generate("k1"), index_key=bytes(range(32)))

    def uow(self) -> UnitOfWork:
        return UnitOfWork(
            self.sessions,
            source="/test-svc",
            clock=FrozenClock(NOW),
            outbox=self.metadata.tables["outbox"],
        )

    async def count(self, table: Table) -> int:
        async with self.sessions() as s:
            return int(await s.scalar(select(func.count()).select_from(table)) or 0)


@pytest.fixture
async def db(pg_url: str) -> AsyncIterator[Db]:
    metadata = new_metadata()
    people = Table(
        "people",
        metadata,
        Column("id", Integer, primary_key=True, autoincrement=False),
        Column("name", EncryptedText(aad="people.name"), nullable=False),
        Column("note", EncryptedText(aad="people.note"), nullable=True),
        Column("owed", Numeric(18, 2), nullable=False),
        Column("since", Date, nullable=False),
        Column("seen_at", UtcDateTime, nullable=False),
        Column("code", String(8), nullable=False, unique=True),
    )
    engine = create_engine(pg_url)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    database = Db(engine, metadata, people)
    with use_field_cipher(database.cipher):
        yield database
    await engine.dispose()


def _people(n: int, start: int = 0) -> list[dict[str, object]]:
    return [
        {
            "id": i,
            "name": f"张三{i}",
            "note": None if i % 3 else f"note {i}",
            "owed": Decimal(f"{i}.25"),
            "since": date(2026, 9, 1 + i % 28),
            "seen_at": datetime(2026, 11, 28, 10, 0, tzinfo=SHANGHAI),
            "code": f"C{i:05d}",
        }
        for i in range(start, start + n)
    ]


async def test_a_large_batch_is_written_in_the_transaction_with_its_types_applied(db) -> None:
    async with db.uow() as uow:
        await insert_many(uow.session, db.people, _people(ROWS))
        assert await db.count(db.people) == 0  # not visible before the commit
        await uow.commit()
    async with db.sessions() as s:
        rows = (await s.execute(select(db.people).order_by(db.people.c.id))).all()
        stored = (
            await s.execute(text("SELECT name FROM people WHERE id < 3 ORDER BY id"))
        ).scalars()
        tokens = list(stored)
    assert [r._asdict() for r in rows] == [
        {**p, "seen_at": datetime(2026, 11, 28, 2, 0, tzinfo=UTC)} for p in _people(ROWS)
    ]
    assert len(tokens) == 3
    assert all(str(token).startswith("v1.k1.") for token in tokens)  # ciphertext


async def test_a_rolled_back_unit_of_work_leaves_no_copied_row(db) -> None:
    async with db.uow() as uow:
        await insert_many(uow.session, db.people, _people(ROWS))
        # leaving without commit rolls back
    assert await db.count(db.people) == 0


async def test_a_duplicate_key_is_an_integrity_error_like_a_plain_insert(db) -> None:
    async with db.uow() as uow:
        await insert_many(uow.session, db.people, _people(ROWS))
        await uow.commit()
    for batch in (_people(ROWS, start=ROWS - 1), _people(3, start=ROWS - 1)):  # COPY, INSERT
        async with db.uow() as uow:
            with pytest.raises(IntegrityError):
                await insert_many(uow.session, db.people, batch)
    assert await db.count(db.people) == ROWS


async def test_a_value_the_column_cannot_hold_fails_as_a_plain_insert_does(db) -> None:
    failures = []
    for n in (ROWS, 3):  # COPY, INSERT
        rows = _people(n)
        rows[-1]["code"] = "C" * 9  # varchar(8)
        async with db.uow() as uow:
            with pytest.raises(DBAPIError) as exc:
                await insert_many(uow.session, db.people, rows)
        failures.append(exc.value)
    assert [type(f) for f in failures] == [DBAPIError, DBAPIError]
    assert all("too long" in str(f.orig) for f in failures)
    assert await db.count(db.people) == 0


async def test_outbox_rows_of_a_large_commit_are_all_there_to_publish(db) -> None:
    events = [
        CaseRecalled(case_id=f"case-{i}", debtor_id="d", recalled_at=NOW) for i in range(ROWS)
    ]
    async with db.uow() as uow:
        uow.emit(*events)
        await uow.commit()
    outbox = db.metadata.tables["outbox"]
    async with db.sessions() as s:
        rows = (await s.execute(select(outbox).order_by(outbox.c.id))).all()
    assert [r.key for r in rows] == [e.case_id for e in events]
    assert {r.event_id for r in rows} == set(uow.committed_events)
    assert all(r.published_at is None and r.created_at == NOW for r in rows)
    assert [EventEnvelope.from_bytes(r.payload).data["case_id"] for r in rows] == [
        e.case_id for e in events
    ]
