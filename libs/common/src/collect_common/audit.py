"""A tamper-evident audit trail: who did what, when, in which role and why (SEC-EXPORT, SEC-AUDIT).

Each record holds the actor (the principal's subject), the role it acted in, the instant,
the action and the resource it concerned, the purpose the actor gave, and a JSON
``detail`` (for an export: its scope and row count). Records are chained::

    hash(n) = sha256(hash(n-1) || canonical JSON of record n)      hash(0) = GENESIS

where the canonical JSON (sorted keys, no spaces, UTF-8) covers every field of the record,
its sequence number included. Editing a record, deleting one or swapping two changes the
hash the verifier recomputes from that point on: :meth:`AuditTrail.verify` walks the chain
in order and names the first record whose stored hash is not the recomputed one.

Appending is serialised, so two replicas over one database never fork the chain: on
PostgreSQL the appending transaction takes a transaction-scoped advisory lock before it
reads the head, and holds it until it commits; the next appender then reads the new head.
On SQLite (one writer at a time) the primary key on ``seq`` refuses a second record with
the same number. The append happens inside the caller's transaction, so the record commits
with the work it describes, or neither does.

Known limit: a chain whose newest records were deleted is still a valid (shorter) chain.
Whoever must detect truncation keeps the head (``Verification.head_seq`` and
``head_hash``) somewhere else, a report or the bank's copy, and compares.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, Column, Integer, MetaData, String, Table, Text, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from collect_common.db import UtcDateTime

AUDIT_TRAIL = "audit_trail"
GENESIS = "0" * 64
"""The hash before the first record."""

ADVISORY_LOCK_KEY = int.from_bytes(hashlib.sha256(b"collect_common.audit").digest()[:8], "big") - (
    1 << 63
)
"""The PostgreSQL advisory lock (a signed 64-bit key) that serialises appends."""

_VERIFY_BATCH = 1000

SeqType = BigInteger().with_variant(Integer, "sqlite")


def add_audit_table(metadata: MetaData) -> Table:
    """The ``audit_trail`` table in ``metadata`` (added once; returned if present)."""
    existing = metadata.tables.get(AUDIT_TRAIL)
    if existing is not None:
        return existing
    return Table(
        AUDIT_TRAIL,
        metadata,
        Column("seq", SeqType, primary_key=True, autoincrement=False),
        Column("actor", String(200), nullable=False),
        Column("role", String(32), nullable=False),
        Column("at", UtcDateTime, nullable=False),
        Column("action", String(100), nullable=False),
        Column("resource", String(500), nullable=False),
        Column("purpose", Text, nullable=False),
        Column("detail", Text, nullable=False),  # canonical JSON
        Column("hash", String(64), nullable=False),
    )


def create_audit_table() -> None:
    """Alembic: create the table :func:`add_audit_table` describes (in a service's revision)."""
    import sqlalchemy as sa
    from alembic import op

    op.create_table(
        AUDIT_TRAIL,
        sa.Column("seq", SeqType, nullable=False, autoincrement=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("action", sa.String(100), nullable=False),
        sa.Column("resource", sa.String(500), nullable=False),
        sa.Column("purpose", sa.Text, nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_audit_trail"),
    )


def drop_audit_table() -> None:
    from alembic import op

    op.drop_table(AUDIT_TRAIL)


# --- records and their hashes ---------------------------------------------------------


def canonical_json(value: Any) -> str:
    """Sorted keys, no insignificant spaces, non-ASCII kept: one spelling per value."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _instant(at: datetime) -> str:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("naive datetime: an audit record's instant must carry its time zone")
    return at.astimezone(UTC).isoformat(timespec="microseconds")


@dataclass(frozen=True)
class AuditRecord:
    seq: int
    actor: str
    role: str
    at: datetime
    action: str
    resource: str
    purpose: str
    detail: str  # canonical JSON
    hash: str

    def details(self) -> dict[str, Any]:
        value = json.loads(self.detail)
        return value if isinstance(value, dict) else {"value": value}


def record_hash(
    previous_hash: str,
    *,
    seq: int,
    actor: str,
    role: str,
    at: datetime,
    action: str,
    resource: str,
    purpose: str,
    detail: str,
) -> str:
    """``sha256(previous_hash || canonical JSON of the record)`` as lowercase hex."""
    body = canonical_json(
        {
            "seq": seq,
            "actor": actor,
            "role": role,
            "at": _instant(at),
            "action": action,
            "resource": resource,
            "purpose": purpose,
            "detail": detail,
        }
    )
    return hashlib.sha256(previous_hash.encode("ascii") + body.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Verification:
    """What walking the chain found: ``ok``, or the first record that does not match."""

    ok: bool
    records: int  # how many records were checked (up to and including the bad one)
    head_seq: int | None  # the last record of an intact chain
    head_hash: str
    first_bad_seq: int | None = None
    reason: str | None = None


class AuditTrail:
    """Appends to and verifies the chained ``audit_trail`` table of one database."""

    def __init__(self, table: Table) -> None:
        self.table = table

    async def append(
        self,
        session: AsyncSession,
        *,
        actor: str,
        role: str,
        at: datetime,
        action: str,
        resource: str,
        purpose: str,
        detail: Mapping[str, Any] | None = None,
    ) -> AuditRecord:
        """Append one record inside ``session``'s open transaction (the caller commits).

        On PostgreSQL the transaction holds the trail's advisory lock from here until it
        ends, so keep the rest of it short."""
        if session.get_bind().dialect.name == "postgresql":
            await session.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK_KEY}
            )
        t = self.table
        head = (
            await session.execute(select(t.c.seq, t.c.hash).order_by(t.c.seq.desc()).limit(1))
        ).first()
        seq, previous = (1, GENESIS) if head is None else (int(head.seq) + 1, str(head.hash))
        detail_json = canonical_json(dict(detail or {}))
        at = datetime.fromisoformat(_instant(at))  # UTC; a naive instant is refused
        digest = record_hash(
            previous,
            seq=seq,
            actor=actor,
            role=role,
            at=at,
            action=action,
            resource=resource,
            purpose=purpose,
            detail=detail_json,
        )
        record = AuditRecord(seq, actor, role, at, action, resource, purpose, detail_json, digest)
        await session.execute(
            t.insert().values(
                seq=seq,
                actor=actor,
                role=role,
                at=at,
                action=action,
                resource=resource,
                purpose=purpose,
                detail=detail_json,
                hash=digest,
            )
        )
        return record

    async def verify(self, session: AsyncSession) -> Verification:
        """Walk the chain from the first record; stop at the first one that does not match.

        A record matches when its number follows the previous one's and its stored hash is
        the hash of the previous stored hash and its own fields. An edited record fails
        itself; a deleted one makes the next record fail (numbers skip, and the next hash
        was made over the deleted one's); swapped records fail at the first of them."""
        t = self.table
        previous, expected_seq, checked, last = GENESIS, 1, 0, 0
        while True:
            rows = (
                await session.execute(
                    select(t).where(t.c.seq > last).order_by(t.c.seq).limit(_VERIFY_BATCH)
                )
            ).all()
            for row in rows:
                checked += 1
                seq = int(row.seq)
                if seq != expected_seq:
                    return Verification(
                        ok=False,
                        records=checked,
                        head_seq=expected_seq - 1 or None,
                        head_hash=previous,
                        first_bad_seq=seq,
                        reason=f"record {seq} follows record {expected_seq - 1}: "
                        f"{seq - expected_seq} record(s) before it are missing",
                    )
                recomputed = record_hash(
                    previous,
                    seq=seq,
                    actor=row.actor,
                    role=row.role,
                    at=row.at,
                    action=row.action,
                    resource=row.resource,
                    purpose=row.purpose,
                    detail=row.detail,
                )
                if recomputed != row.hash:
                    return Verification(
                        ok=False,
                        records=checked,
                        head_seq=seq - 1 or None,
                        head_hash=previous,
                        first_bad_seq=seq,
                        reason=f"record {seq}'s hash does not match its contents and the "
                        "record before it: it was changed, or records were reordered",
                    )
                previous, expected_seq, last = row.hash, seq + 1, seq
            if len(rows) < _VERIFY_BATCH:
                return Verification(
                    ok=True, records=checked, head_seq=last or None, head_hash=previous
                )

    @staticmethod
    def of_row(row: Any) -> AuditRecord:
        return AuditRecord(
            seq=int(row.seq),
            actor=row.actor,
            role=row.role,
            at=row.at,
            action=row.action,
            resource=row.resource,
            purpose=row.purpose,
            detail=row.detail,
            hash=row.hash,
        )
