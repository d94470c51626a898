"""The read model of case-svc's and QA's events: debtors (time zone), cases (status, track,
channels) and agents (suspended or not). Writes only; the consumer's unit of work commits."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from collect_common.db import dialect_insert
from contact_svc.adapters.tables import contact_agents, contact_cases, debtors


async def case_imported(
    session: AsyncSession,
    *,
    case_id: str,
    debtor_id: str,
    bank_id: str,
    timezone: str,
    at: datetime,
) -> None:
    """The debtor becomes known (with their time zone) and the case active."""
    ins = dialect_insert(session, debtors).values(
        debtor_id=debtor_id, timezone=timezone, updated_at=at
    )
    await session.execute(
        ins.on_conflict_do_update(
            index_elements=["debtor_id"], set_={"timezone": timezone, "updated_at": at}
        )
    )
    ins = dialect_insert(session, contact_cases).values(
        case_id=case_id,
        debtor_id=debtor_id,
        bank_id=bank_id,
        status="active",
        track=None,
        channels=None,
        updated_at=at,
    )
    await session.execute(ins.on_conflict_do_nothing(index_elements=["case_id"]))


async def case_track(
    session: AsyncSession, case_id: str, track: str, channels: Sequence[str], at: datetime
) -> None:
    await session.execute(
        update(contact_cases)
        .where(contact_cases.c.case_id == case_id)
        .values(track=track, channels=",".join(channels), updated_at=at)
    )


async def case_status(session: AsyncSession, case_id: str, status: str, at: datetime) -> None:
    await session.execute(
        update(contact_cases)
        .where(contact_cases.c.case_id == case_id)
        .values(status=status, updated_at=at)
    )


async def agent_suspension(
    session: AsyncSession, agent_id: str, *, suspended: bool, at: datetime
) -> None:
    ins = dialect_insert(session, contact_agents).values(
        agent_id=agent_id, suspended=suspended, updated_at=at
    )
    await session.execute(
        ins.on_conflict_do_update(
            index_elements=["agent_id"], set_={"suspended": suspended, "updated_at": at}
        )
    )
