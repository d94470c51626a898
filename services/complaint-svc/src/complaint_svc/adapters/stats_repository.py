"""The SQL of the statistics (COMP-STATS) and the corrective actions' repository.

Every report is counted by the database (``GROUP BY``), never by loading tickets: the
periods arrive as UTC instants (``domain.stats``), months are told apart by a ``CASE`` over
their boundaries, and NULL dimensions are grouped as they are and named ``unknown`` by the
caller. The same statements run on PostgreSQL and SQLite.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    case,
    func,
    literal,
    or_,
    select,
    union_all,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from complaint_svc.adapters.stats_tables import (
    case_profiles,
    case_stages,
    corrective_action_changes,
    corrective_actions,
)
from complaint_svc.adapters.tables import metadata, ticket_steps, tickets
from complaint_svc.domain.stats import (
    ActionStatus,
    Change,
    CorrectiveAction,
    Finding,
    Period,
)

# -- reports ------------------------------------------------------------------------------


def _accepted_in(period: Period) -> ColumnElement[bool]:
    return and_(tickets.c.accepted_at >= period.start, tickets.c.accepted_at < period.end)


def _with_profiles() -> Any:
    return tickets.outerjoin(case_profiles, case_profiles.c.case_id == tickets.c.case_id)


async def _grouped(session: AsyncSession, query: Select[Any]) -> dict[Any, int]:
    """Rows ``(*key, count)`` as {key: count} (a one-column key unwrapped)."""
    out: dict[Any, int] = {}
    for row in (await session.execute(query)).all():
        *key, n = row
        out[key[0] if len(key) == 1 else tuple(key)] = int(n)
    return out


async def count_accepted(session: AsyncSession, period: Period) -> int:
    query = select(func.count()).select_from(tickets).where(_accepted_in(period))
    return int((await session.execute(query)).scalar_one())


async def weekly_counts(session: AsyncSession, period: Period) -> dict[str, dict[Any, int]]:
    """Complaints accepted in ``period`` by type, by channel and by case type."""
    where = _accepted_in(period)
    by_case_type = (
        select(case_profiles.c.case_type, func.count())
        .select_from(_with_profiles())
        .where(where)
        .group_by(case_profiles.c.case_type)
    )
    return {
        "type": await _grouped(
            session, select(tickets.c.type, func.count()).where(where).group_by(tickets.c.type)
        ),
        "channel": await _grouped(
            session,
            select(tickets.c.channel, func.count()).where(where).group_by(tickets.c.channel),
        ),
        "case_type": await _grouped(session, by_case_type),
    }


def _bucket_when_accepted() -> Any:
    """The case's bucket at the ticket's acceptance: its latest stage from before then."""
    return (
        select(case_stages.c.bucket)
        .where(
            case_stages.c.case_id == tickets.c.case_id,
            case_stages.c.since <= tickets.c.accepted_at,
        )
        .order_by(case_stages.c.since.desc())
        .limit(1)
        .correlate(tickets)
        .scalar_subquery()
    )


MONTHLY_DIMENSIONS = ("region", "customer_group", "bucket")


async def monthly_counts(
    session: AsyncSession, months: Sequence[Period]
) -> dict[str, dict[Any, int]]:
    """Complaints accepted in each of ``months`` by region, customer group and the case's
    collection stage (bucket) when the complaint was accepted: {dimension: {(month, key): n}}."""
    label = case(
        *[
            (
                and_(tickets.c.accepted_at >= m.start, tickets.c.accepted_at < m.end),
                literal(m.label),
            )
            for m in months
        ],
        else_=None,
    )
    inner = (
        select(
            label.label("month"),
            case_profiles.c.region.label("region"),
            case_profiles.c.customer_group.label("customer_group"),
            _bucket_when_accepted().label("bucket"),
        )
        .select_from(_with_profiles())
        .where(tickets.c.accepted_at >= months[0].start, tickets.c.accepted_at < months[-1].end)
        .subquery("accepted")
    )
    out: dict[str, dict[Any, int]] = {}
    for dimension in MONTHLY_DIMENSIONS:
        column = inner.c[dimension]
        query = select(inner.c.month, column, func.count()).group_by(inner.c.month, column)
        out[dimension] = await _grouped(session, query)
    return out


def _step_rows() -> Any:
    """Every step clock: the current cycle's, and the past cycles' kept by an escalation
    (``complaint_step_history``, when the schema has it)."""
    cols = ("step", "rule_id", "deadline", "completed_at", "breached_at")
    parts = [select(*(ticket_steps.c[c] for c in cols))]
    history = metadata.tables.get("complaint_step_history")
    if history is not None:
        parts.append(select(*(history.c[c] for c in cols)))
    return union_all(*parts).subquery("clocks")


async def sla_counts(session: AsyncSession, period: Period) -> dict[str, tuple[str, int, int, int]]:
    """Per step: (rule, completed in the period, of them within the deadline, breaches
    recorded in the period)."""
    clocks = _step_rows()
    completed = and_(clocks.c.completed_at >= period.start, clocks.c.completed_at < period.end)
    breached = and_(clocks.c.breached_at >= period.start, clocks.c.breached_at < period.end)
    query = (
        select(
            clocks.c.step,
            func.max(clocks.c.rule_id),
            func.sum(case((completed, 1), else_=0)),
            func.sum(
                case((and_(completed, clocks.c.completed_at <= clocks.c.deadline), 1), else_=0)
            ),
            func.sum(case((breached, 1), else_=0)),
        )
        .where(or_(completed, breached))
        .group_by(clocks.c.step)
    )
    rows = (await session.execute(query)).all()
    return {r[0]: (str(r[1]), int(r[2] or 0), int(r[3] or 0), int(r[4] or 0)) for r in rows}


# -- corrective actions -------------------------------------------------------------------


def _finding_json(finding: Finding | None) -> str | None:
    if finding is None:
        return None
    return json.dumps(finding.as_dict(), ensure_ascii=False, sort_keys=True)


def action_of(row: Any) -> CorrectiveAction:
    finding = None
    if row["finding"]:
        finding = Finding(**json.loads(row["finding"]))
    return CorrectiveAction(
        id=row["id"],
        ticket_id=row["ticket_id"],
        finding=finding,
        description=row["description"],
        owner=row["owner"],
        deadline=row["deadline"],
        status=ActionStatus(row["status"]),
        created_by=row["created_by"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        done_at=row["done_at"],
    )


def overdue_clause(now: datetime) -> ColumnElement[bool]:
    """Past the deadline and not done."""
    return and_(
        corrective_actions.c.status != ActionStatus.DONE.value,
        corrective_actions.c.deadline < now,
    )


@dataclass(frozen=True)
class ActionFilter:
    """What a listing of corrective actions keeps (None: no condition)."""

    overdue: bool | None = None
    status: ActionStatus | None = None
    owner: str | None = None
    ticket_id: str | None = None


LISTING_ORDER = (corrective_actions.c.created_at, corrective_actions.c.id)


def listing(where: ActionFilter, now: datetime) -> Select[Any]:
    """The corrective actions ``where`` keeps, ``now`` deciding which are overdue (page it by
    :data:`LISTING_ORDER`)."""
    query = select(corrective_actions)
    if where.overdue is not None:
        overdue = overdue_clause(now)
        query = query.where(overdue if where.overdue else ~overdue)
    if where.status is not None:
        query = query.where(corrective_actions.c.status == where.status.value)
    if where.owner is not None:
        query = query.where(corrective_actions.c.owner == where.owner)
    if where.ticket_id is not None:
        query = query.where(corrective_actions.c.ticket_id == where.ticket_id)
    return query


class CorrectiveActionRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def ticket_exists(self, ticket_id: str) -> bool:
        query = select(tickets.c.id).where(tickets.c.id == ticket_id)
        return (await self.session.execute(query)).first() is not None

    async def add(self, action: CorrectiveAction) -> None:
        await self.session.execute(
            corrective_actions.insert().values(
                id=action.id,
                source=action.source,
                ticket_id=action.ticket_id,
                finding=_finding_json(action.finding),
                **_state(action),
                created_by=action.created_by,
                created_at=action.created_at,
            )
        )
        await self._record_changes(action)

    async def get(self, action_id: str, *, for_update: bool = False) -> CorrectiveAction | None:
        query = select(corrective_actions).where(corrective_actions.c.id == action_id)
        if for_update:
            query = query.with_for_update()
        row = (await self.session.execute(query)).mappings().one_or_none()
        return None if row is None else action_of(row)

    async def history(self, action_id: str) -> list[Change]:
        query = (
            select(corrective_action_changes)
            .where(corrective_action_changes.c.action_id == action_id)
            .order_by(corrective_action_changes.c.id)
        )
        rows = (await self.session.execute(query)).mappings().all()
        return [
            Change(at=r["at"], actor=r["actor"], kind=r["kind"], fields=json.loads(r["changes"]))
            for r in rows
        ]

    async def save(self, action: CorrectiveAction) -> None:
        """Write the action's state and the changes it recorded since it was loaded."""
        await self.session.execute(
            update(corrective_actions)
            .where(corrective_actions.c.id == action.id)
            .values(**_state(action))
        )
        await self._record_changes(action)

    async def count_overdue(self, now: datetime) -> int:
        query = select(func.count()).select_from(corrective_actions).where(overdue_clause(now))
        return int((await self.session.execute(query)).scalar_one())

    async def _record_changes(self, action: CorrectiveAction) -> None:
        if action.changes:
            await self.session.execute(
                corrective_action_changes.insert(),
                [
                    {
                        "action_id": action.id,
                        "at": c.at,
                        "actor": c.actor,
                        "kind": c.kind,
                        "changes": json.dumps(c.fields, ensure_ascii=False, sort_keys=True),
                    }
                    for c in action.changes
                ],
            )
            action.changes.clear()


def _state(action: CorrectiveAction) -> dict[str, Any]:
    return {
        "description": action.description,
        "owner": action.owner,
        "deadline": action.deadline,
        "status": action.status.value,
        "updated_at": action.updated_at,
        "done_at": action.done_at,
    }
