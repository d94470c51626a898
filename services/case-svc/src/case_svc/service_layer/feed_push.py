"""Pushing the change feed to the bank: cursor, batches, gaps (CASE-FEEDBACK).

``case_changes.seq`` comes from a sequence, so a change that commits late can
carry a lower ``seq`` than one already visible, and a rolled-back write leaves a
hole for good. The push must never skip the first kind, so a batch ends at the
first hole unless the hole is known to be permanent:

- on PostgreSQL, when no other transaction holds a write lock on
  ``case_changes`` (checked *before* the rows are read), every write that took a
  lower ``seq`` has committed or rolled back, so the holes below what is visible
  are permanent (SQLite has a single writer and no lasting holes);
- otherwise (busy writers) a hole is passed once it has stayed open
  for ``gap_grace`` seconds, which no real transaction of this service lasts.

The cursor (``feed_push_state``) is advanced only after the target answered
2xx, with a compare-and-set on the old value, so deliveries are at least once,
in ``seq`` order, and never skip; the receiver deduplicates by ``seq``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import select, text
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession

from case_svc.adapters.feed_tables import feed_push_state
from case_svc.adapters.tables import case_changes
from collect_common.db import dialect_insert

_WRITERS_IN_FLIGHT = text(
    "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'relation' "
    "AND relation = 'case_changes'::regclass AND mode = 'RowExclusiveLock' "
    "AND pid <> pg_backend_pid())"
)


@dataclass(frozen=True)
class Change:
    seq: int
    bank_id: str
    case_id: str
    contract_no: str
    change: str
    data: Any
    at: datetime

    def as_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "case_id": self.case_id,
            "contract_no": self.contract_no,
            "change": self.change,
            "data": self.data,
            "at": self.at.isoformat(),
        }


@dataclass(frozen=True)
class Batch:
    """Changes to deliver, and the cursor to store once they are acknowledged.

    ``last_seq`` may be past the last change (other banks' rows, permanent holes);
    a batch with no changes is only a cursor move.
    """

    first_cursor: int
    last_seq: int
    changes: list[Change]


@dataclass
class GapWatch:
    """When each hole in the sequence was first seen (monotonic seconds)."""

    grace: float
    now: Callable[[], float] = time.monotonic
    first_seen: dict[int, float] = field(default_factory=dict)

    def expired(self, seq: int) -> bool:
        seen = self.first_seen.setdefault(seq, self.now())
        return self.now() - seen >= self.grace

    def forget_below(self, seq: int) -> None:
        for k in [k for k in self.first_seen if k <= seq]:
            del self.first_seen[k]


async def load_cursor(session: AsyncSession, target: str) -> int:
    """The last acknowledged ``seq`` of ``target`` (0 when it never got anything)."""
    value = await session.scalar(
        select(feed_push_state.c.last_seq).where(feed_push_state.c.target == target)
    )
    return int(value) if value is not None else 0


async def next_batch(
    session: AsyncSession,
    cursor: int,
    limit: int,
    gaps: GapWatch,
    bank_id: str | None = None,
) -> Batch | None:
    """The next changes after ``cursor`` that can be delivered without skipping any."""
    # SQLite has one writer and reuses a rolled-back rowid, so its holes never fill later
    settled = True
    if session.get_bind().dialect.name == "postgresql":
        settled = not bool(await session.scalar(_WRITERS_IN_FLIGHT))
    rows = (
        await session.execute(
            select(case_changes)
            .where(case_changes.c.seq > cursor)
            .order_by(case_changes.c.seq)
            .limit(limit)
        )
    ).all()
    expected = cursor + 1
    last = cursor
    changes: list[Change] = []
    for r in rows:
        if r.seq != expected and not settled and not gaps.expired(expected):
            break  # a hole that may still fill: stop before it
        last = r.seq
        expected = r.seq + 1
        if bank_id is None or r.bank_id == bank_id:
            changes.append(
                Change(
                    seq=r.seq,
                    bank_id=r.bank_id,
                    case_id=r.case_id,
                    contract_no=r.contract_no,
                    change=r.change,
                    data=json.loads(r.data),
                    at=r.at,
                )
            )
    if last == cursor:
        return None
    return Batch(cursor, last, changes)


async def advance_cursor(
    session: AsyncSession, target: str, old: int, new: int, now: datetime
) -> bool:
    """Move ``target``'s cursor from ``old`` to ``new``; False if someone else moved it."""
    t = feed_push_state
    if old == 0:
        inserted = await session.execute(
            dialect_insert(session, t)
            .values(target=target, last_seq=new, updated_at=now)
            .on_conflict_do_nothing(index_elements=[t.c.target])
        )
        if cast(CursorResult[Any], inserted).rowcount == 1:
            return True
    updated = await session.execute(
        t.update()
        .where(t.c.target == target, t.c.last_seq == old)
        .values(last_seq=new, updated_at=now)
    )
    return cast(CursorResult[Any], updated).rowcount == 1


def batch_body(target: str, batch: Batch) -> bytes:
    """The JSON body of one push: the changes, in ``seq`` order, and the new cursor."""
    return json.dumps(
        {
            "target": target,
            "after": batch.first_cursor,
            "cursor": batch.last_seq,
            "changes": [c.as_json() for c in batch.changes],
        },
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode()


__all__ = [
    "Batch",
    "Change",
    "GapWatch",
    "advance_cursor",
    "batch_body",
    "load_cursor",
    "next_batch",
]
