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

Targets: the deployment's own (``FEED_PUSH_URL``) and any number registered by
ops per bank (``feed_push_targets``), each with its own cursor and its own retry
state: after ``n`` failures in a row its next attempt is due
``min(cap, base * 2**(n-1))`` seconds later on the service clock, and a success
clears it. A disabled target is skipped and keeps its cursor.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import select, text
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession

from case_svc.adapters.feed_tables import feed_push_state, feed_push_targets
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


# -- targets and their retry state ------------------------------------------------------

MAX_ERROR = 500


@dataclass(frozen=True)
class PushTarget:
    """Where one stream of changes goes: ``bank_id`` None pushes every bank's changes."""

    name: str
    url: str
    secret: bytes = field(repr=False)
    key_id: str
    bank_id: str | None
    enabled: bool = True


@dataclass(frozen=True)
class PushState:
    """A target's cursor and retry state (``next_attempt_at`` None: due now)."""

    last_seq: int = 0
    failures: int = 0
    next_attempt_at: datetime | None = None
    last_error: str | None = None

    def due(self, now: datetime) -> bool:
        return self.next_attempt_at is None or self.next_attempt_at <= now


class TargetConflict(ValueError):
    """A registered target may not take the deployment's own target's name."""


def backoff_seconds(failures: int, base: float, cap: float) -> float:
    """The wait after ``failures`` failures in a row: base, 2*base, 4*base ... up to cap."""
    if failures < 1:
        return 0.0
    return float(min(cap, base * 2 ** min(failures - 1, 62)))


async def registered_targets(session: AsyncSession, *, enabled_only: bool) -> list[PushTarget]:
    t = feed_push_targets
    query = select(t).order_by(t.c.target)
    if enabled_only:
        query = query.where(t.c.enabled.is_(True))
    return [
        PushTarget(
            name=r.target,
            url=r.url,
            secret=r.secret.encode(),
            key_id=r.key_id,
            bank_id=r.bank_id,
            enabled=r.enabled,
        )
        for r in (await session.execute(query)).all()
    ]


async def put_target(
    session: AsyncSession,
    name: str,
    *,
    bank_id: str,
    url: str,
    secret: str | None,
    key_id: str,
    enabled: bool,
    now: datetime,
    reserved: str | None = None,
) -> bool:
    """Register or change the target ``name``; True when it is new. A new target needs
    a ``secret``; an existing one keeps its secret unless a new one is given. Disabling
    keeps the cursor; enabling again clears the retry state (due at once)."""
    if reserved is not None and name == reserved:
        raise TargetConflict(f"target {name} is the deployment's own (FEED_PUSH_URL)")
    t = feed_push_targets
    current = (
        await session.execute(select(t.c.enabled).where(t.c.target == name).with_for_update())
    ).one_or_none()
    values: dict[str, Any] = {
        "bank_id": bank_id,
        "url": url,
        "key_id": key_id,
        "enabled": enabled,
        "updated_at": now,
    }
    if secret is not None:
        values["secret"] = secret
    if current is None:
        if secret is None:
            raise ValueError("a new push target needs its secret")
        await session.execute(t.insert().values(target=name, created_at=now, **values))
        return True
    await session.execute(t.update().where(t.c.target == name).values(**values))
    if enabled and not current.enabled:
        await session.execute(
            feed_push_state.update()
            .where(feed_push_state.c.target == name)
            .values(failures=0, next_attempt_at=None, last_error=None)
        )
    return False


async def load_states(session: AsyncSession, names: list[str]) -> dict[str, PushState]:
    """The cursor and retry state of each of ``names`` (absent: never pushed, due now)."""
    if not names:
        return {}
    s = feed_push_state
    rows = (await session.execute(select(s).where(s.c.target.in_(names)))).all()
    return {
        r.target: PushState(
            last_seq=int(r.last_seq),
            failures=r.failures,
            next_attempt_at=r.next_attempt_at,
            last_error=r.last_error,
        )
        for r in rows
    }


async def claim(session: AsyncSession, target: str, now: datetime, lease: float) -> bool:
    """Take the target for one delivery (``lease`` seconds at most); False when another
    pusher holds it. The caller commits; :func:`record_failure` or :func:`release` free it."""
    s = feed_push_state
    await session.execute(
        dialect_insert(session, s)
        .values(target=target, last_seq=0, updated_at=now, failures=0)
        .on_conflict_do_nothing(index_elements=[s.c.target])
    )
    taken = await session.execute(
        s.update()
        .where(s.c.target == target, (s.c.leased_until.is_(None)) | (s.c.leased_until <= now))
        .values(leased_until=now + timedelta(seconds=lease))
    )
    return cast(CursorResult[Any], taken).rowcount == 1


async def release(session: AsyncSession, target: str) -> None:
    await session.execute(
        feed_push_state.update().where(feed_push_state.c.target == target).values(leased_until=None)
    )


async def record_failure(
    session: AsyncSession, target: str, error: str, now: datetime, *, base: float, cap: float
) -> PushState:
    """One more failure in a row: the next attempt waits the backoff (on ``now``'s clock)."""
    s = feed_push_state
    await session.execute(
        dialect_insert(session, s)
        .values(target=target, last_seq=0, updated_at=now, failures=0)
        .on_conflict_do_nothing(index_elements=[s.c.target])
    )
    failures = (
        int(
            await session.scalar(select(s.c.failures).where(s.c.target == target).with_for_update())
            or 0
        )
        + 1
    )
    next_at = now + timedelta(seconds=backoff_seconds(failures, base, cap))
    await session.execute(
        s.update()
        .where(s.c.target == target)
        .values(
            failures=failures,
            next_attempt_at=next_at,
            last_error=error[:MAX_ERROR],
            leased_until=None,
        )
    )
    return PushState(failures=failures, next_attempt_at=next_at, last_error=error[:MAX_ERROR])


async def record_success(session: AsyncSession, target: str) -> None:
    """The target answered 2xx: no failures in a row any more, due whenever there is more."""
    s = feed_push_state
    await session.execute(
        s.update()
        .where(s.c.target == target, s.c.failures > 0)
        .values(failures=0, next_attempt_at=None, last_error=None)
    )


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
    "PushState",
    "PushTarget",
    "TargetConflict",
    "advance_cursor",
    "backoff_seconds",
    "batch_body",
    "claim",
    "load_cursor",
    "load_states",
    "next_batch",
    "put_target",
    "record_failure",
    "record_success",
    "registered_targets",
    "release",
]
