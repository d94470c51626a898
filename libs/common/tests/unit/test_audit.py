"""The audit trail: chained records, and a verifier that names the first tampered one."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.operations import Operations
from sqlalchemy import MetaData, text
from sqlalchemy.ext.asyncio import AsyncEngine

from collect_common.audit import (
    AUDIT_TRAIL,
    GENESIS,
    AuditTrail,
    Verification,
    add_audit_table,
    canonical_json,
    create_audit_table,
    drop_audit_table,
    record_hash,
)
from collect_common.db import NAMING_CONVENTION, create_engine, new_metadata, session_factory

T0 = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/audit.db")
    yield engine
    await engine.dispose()


async def trail_with(engine: AsyncEngine, n: int) -> AuditTrail:
    metadata = new_metadata()
    trail = AuditTrail(add_audit_table(metadata))
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    sessions = session_factory(engine)
    for i in range(n):
        async with sessions() as session:
            await trail.append(
                session,
                actor=f"auditor-{i % 2}",
                role="auditor",
                at=T0 + timedelta(minutes=i),
                action="export",
                resource="cases",
                purpose=f"inspection number {i}: 投诉复核",
                detail={"rows": i, "scope": {"bank_id": "bank-core"}},
            )
            await session.commit()
    return trail


async def verify(engine: AsyncEngine, trail: AuditTrail) -> Verification:
    async with session_factory(engine)() as session:
        return await trail.verify(session)


async def test_records_chain_each_hash_over_the_previous_one(engine: AsyncEngine) -> None:
    trail = await trail_with(engine, 3)
    async with engine.connect() as conn:
        rows = (await conn.execute(sa.select(trail.table).order_by("seq"))).all()
    assert [r.seq for r in rows] == [1, 2, 3]
    previous = GENESIS
    for r in rows:
        assert r.hash == record_hash(
            previous,
            seq=r.seq,
            actor=r.actor,
            role=r.role,
            at=r.at,
            action=r.action,
            resource=r.resource,
            purpose=r.purpose,
            detail=r.detail,
        )
        previous = r.hash
    assert rows[2].detail == canonical_json({"rows": 2, "scope": {"bank_id": "bank-core"}})
    report = await verify(engine, trail)
    assert report.ok and report.records == 3 and report.head_seq == 3
    assert report.head_hash == rows[2].hash and report.first_bad_seq is None


async def test_an_empty_trail_verifies(engine: AsyncEngine) -> None:
    trail = await trail_with(engine, 0)
    report = await verify(engine, trail)
    assert report.ok and report.records == 0 and report.head_hash == GENESIS


@pytest.mark.parametrize(
    "edit",
    [
        "UPDATE audit_trail SET purpose = 'nothing to see' WHERE seq = 3",
        "UPDATE audit_trail SET detail = '{}' WHERE seq = 3",
        "UPDATE audit_trail SET actor = 'someone-else' WHERE seq = 3",
        "UPDATE audit_trail SET at = '2026-11-28 02:59:00.000000' WHERE seq = 3",
    ],
)
async def test_an_edited_record_is_named(engine: AsyncEngine, edit: str) -> None:
    trail = await trail_with(engine, 5)
    async with engine.begin() as conn:
        await conn.execute(text(edit))
    report = await verify(engine, trail)
    assert not report.ok
    assert report.first_bad_seq == 3 and report.records == 3 and report.head_seq == 2
    assert "changed" in (report.reason or "")


async def test_a_deleted_record_is_found_at_the_record_after_it(engine: AsyncEngine) -> None:
    trail = await trail_with(engine, 5)
    async with engine.begin() as conn:
        await conn.execute(text("DELETE FROM audit_trail WHERE seq = 2"))
    report = await verify(engine, trail)
    assert not report.ok and report.first_bad_seq == 3
    assert "missing" in (report.reason or "")


async def test_a_deleted_and_renumbered_record_is_found_too(engine: AsyncEngine) -> None:
    trail = await trail_with(engine, 4)
    async with engine.begin() as conn:
        await conn.execute(text("DELETE FROM audit_trail WHERE seq = 2"))
        for seq in (3, 4):
            await conn.execute(
                text("UPDATE audit_trail SET seq = :new WHERE seq = :old"),
                {"new": seq - 1, "old": seq},
            )
    report = await verify(engine, trail)
    assert not report.ok and report.first_bad_seq == 2


async def test_swapped_records_are_found_at_the_first_of_them(engine: AsyncEngine) -> None:
    trail = await trail_with(engine, 5)
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE audit_trail SET seq = 100 WHERE seq = 2"))
        await conn.execute(text("UPDATE audit_trail SET seq = 2 WHERE seq = 4"))
        await conn.execute(text("UPDATE audit_trail SET seq = 4 WHERE seq = 100"))
    report = await verify(engine, trail)
    assert not report.ok and report.first_bad_seq == 2


async def test_a_recomputed_hash_on_an_edited_record_breaks_the_next_one(
    engine: AsyncEngine,
) -> None:
    # whoever edits record 2 and recomputes its hash still breaks record 3's link
    trail = await trail_with(engine, 3)
    async with engine.connect() as conn:
        r1, r2 = (
            await conn.execute(sa.select(trail.table).where(trail.table.c.seq < 3).order_by("seq"))
        ).all()
    forged = record_hash(
        r1.hash,
        seq=2,
        actor=r2.actor,
        role=r2.role,
        at=r2.at,
        action=r2.action,
        resource=r2.resource,
        purpose="routine",
        detail=r2.detail,
    )
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE audit_trail SET purpose = 'routine', hash = :h WHERE seq = 2"),
            {"h": forged},
        )
    report = await verify(engine, trail)
    assert not report.ok and report.first_bad_seq == 3


async def test_naive_instants_are_refused(engine: AsyncEngine) -> None:
    trail = await trail_with(engine, 0)
    async with session_factory(engine)() as session:
        with pytest.raises(ValueError, match="naive"):
            await trail.append(
                session,
                actor="a",
                role="ops",
                at=datetime(2026, 11, 28, 2, 0),
                action="export",
                resource="cases",
                purpose="p",
            )


def test_the_migration_creates_the_table_the_metadata_describes(tmp_path: Path) -> None:
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    add_audit_table(metadata)
    assert add_audit_table(metadata) is metadata.tables[AUDIT_TRAIL]
    engine = sa.create_engine(f"sqlite:///{tmp_path}/m.db")
    with engine.begin() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        with Operations.context(context):
            create_audit_table()
        assert compare_metadata(context, metadata) == []
        with Operations.context(context):
            drop_audit_table()
        assert not sa.inspect(conn).has_table(AUDIT_TRAIL)
    engine.dispose()
