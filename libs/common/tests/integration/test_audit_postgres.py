"""The audit trail on PostgreSQL: two replicas appending at once keep one chain, and a
record edited with SQL behind the service's back is named by the verifier."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, text

from collect_common.audit import AuditTrail, add_audit_table
from collect_common.db import create_engine, new_metadata, session_factory

pytestmark = pytest.mark.postgres

T0 = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)


async def test_concurrent_appends_from_two_replicas_keep_one_unbroken_chain(pg_url: str) -> None:
    metadata = new_metadata()
    trail = AuditTrail(add_audit_table(metadata))
    replicas = [create_engine(pg_url, pool_size=10) for _ in range(2)]
    try:
        async with replicas[0].begin() as conn:
            await conn.run_sync(metadata.create_all)
        gate = asyncio.Event()

        async def append(replica: int, n: int) -> int:
            async with session_factory(replicas[replica])() as session:
                await session.execute(text("SELECT 1"))  # connected before the gate opens
                await gate.wait()
                record = await trail.append(
                    session,
                    actor=f"ops-{replica}",
                    role="ops",
                    at=T0 + timedelta(seconds=n),
                    action="export",
                    resource="cases",
                    purpose=f"replica {replica} export {n}",
                    detail={"rows": n},
                )
                await session.commit()
                return record.seq

        tasks = [asyncio.create_task(append(i % 2, i)) for i in range(30)]
        await asyncio.sleep(0)  # every task reaches the gate
        gate.set()
        seqs = await asyncio.gather(*tasks)
        assert sorted(seqs) == list(range(1, 31))  # no two appends took the same place

        async with session_factory(replicas[1])() as session:
            report = await trail.verify(session)
            hashes = await session.execute(select(func.count(trail.table.c.hash.distinct())))
        assert report.ok and report.records == 30 and report.head_seq == 30, report
        assert hashes.scalar_one() == 30
    finally:
        for engine in replicas:
            await engine.dispose()


async def test_a_record_edited_with_sql_is_named_by_the_verifier(pg_url: str) -> None:
    metadata = new_metadata()
    trail = AuditTrail(add_audit_table(metadata))
    engine = create_engine(pg_url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
        sessions = session_factory(engine)
        for n in range(6):
            async with sessions() as session:
                await trail.append(
                    session,
                    actor="bank-auditor",
                    role="auditor",
                    at=T0 + timedelta(minutes=n),
                    action="export",
                    resource="cases",
                    purpose="annual inspection of contact records",
                    detail={"rows": 10 + n},
                )
                await session.commit()
        async with sessions() as session:
            assert (await trail.verify(session)).ok

        async with engine.begin() as conn:  # someone with database access lowers a row count
            await conn.exec_driver_sql(
                """UPDATE audit_trail SET detail = '{"rows":1}' WHERE seq = 4"""
            )
        async with sessions() as session:
            report = await trail.verify(session)
        assert not report.ok and report.first_bad_seq == 4 and report.head_seq == 3
    finally:
        await engine.dispose()
