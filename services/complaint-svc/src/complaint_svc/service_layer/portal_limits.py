"""The portal form's rate limit per client address (COMP-CHANNELS).

A fixed window held in the database (``complaint_portal_rate``), so every replica counts
against the same figure: each request adds one to its client's row of the current window
in a single ``INSERT ... ON CONFLICT DO UPDATE ... RETURNING`` (atomic on PostgreSQL and
SQLite) and commits at once, whatever becomes of the form. Beyond the policy's
``portal_rate_limit`` in ``portal_rate_window_seconds`` the request is refused until the
window ends (``Retry-After``). Windows are aligned on the epoch, so all replicas agree on
them; a fixed window lets a client send up to twice the limit across one boundary, which a
complaint form can bear.

The address is kept only as a keyed hash (the runtime's blind index, SEC-PII). The first
request of a client in a window removes past windows' rows, skipping rows another
transaction holds, so cleaning never blocks nor deadlocks a request.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import structlog
from sqlalchemy import delete, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from collect_common.db import dialect_insert
from complaint_svc.adapters.stats_tables import portal_rate

log = structlog.get_logger("complaint_svc.portal")
PURPOSE = "complaint.portal.client"
PURGE_BATCH = 500


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    hits: int
    limit: int
    retry_after_seconds: int


def window_start(now: datetime, seconds: int) -> datetime:
    """The start of the fixed window ``now`` falls in (windows aligned on the epoch)."""
    epoch = int(now.timestamp())
    return datetime.fromtimestamp(epoch - epoch % seconds, UTC)


def decide(hits: int, limit: int, start: datetime, seconds: int, now: datetime) -> RateDecision:
    """The ``hits``-th request of a window: allowed up to ``limit``; else wait to its end."""
    wait = (start + timedelta(seconds=seconds) - now).total_seconds()
    return RateDecision(
        allowed=hits <= limit,
        hits=hits,
        limit=limit,
        retry_after_seconds=max(1, math.ceil(wait)),
    )


async def take(
    sessions: async_sessionmaker[AsyncSession],
    client: str,
    now: datetime,
    *,
    limit: int,
    window_seconds: int,
) -> RateDecision:
    """Count one request of ``client`` (a keyed hash) and decide (its own transaction)."""
    start = window_start(now, window_seconds)
    async with sessions() as session:
        stmt = dialect_insert(session, portal_rate).values(
            client=client, window_start=start, hits=1
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=[portal_rate.c.client, portal_rate.c.window_start],
            set_={"hits": portal_rate.c.hits + 1},
        ).returning(portal_rate.c.hits)
        hits = int((await session.execute(stmt)).scalar_one())
        await session.commit()
        if hits == 1:
            try:
                await _purge_before(session, start)
            except Exception as exc:  # cleaning is best effort; the decision stands
                await session.rollback()
                log.warning("cannot purge past portal rate windows", error=repr(exc))
    return decide(hits, limit, start, window_seconds, now)


async def _purge_before(session: AsyncSession, start: datetime) -> None:
    stale = (
        select(portal_rate.c.client, portal_rate.c.window_start)
        .where(portal_rate.c.window_start < start)
        .limit(PURGE_BATCH)
        .with_for_update(skip_locked=True)
    )
    await session.execute(
        delete(portal_rate).where(
            tuple_(portal_rate.c.client, portal_rate.c.window_start).in_(stale)
        )
    )
    await session.commit()
