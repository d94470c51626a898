"""Contact holds (CONTACT-CONDUCT): do-not-contact and complaint holds on a debtor.

An operator places a hold on a debtor (or on a case's debtor) with a reason and an
optional end, and lifts it; a complaint hold is also placed when complaint-svc opens a
ticket whose case the read model knows (``complaint.opened.v1``), one per ticket, and
lifted by complaint-svc when the ticket closes (``complaint.closed.v1``), unless an
operator lifted it before or its ``until`` passed: then it stays as it is. The decision
reads active holds in the statement that locks the debtor's row
(``service_layer.decisions``). Who placed and who lifted a hold, when and why, stays on
the row.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select, update

from collect_common.db import UnitOfWork, dialect_insert
from collect_common.web.pagination import PageParams
from contact_svc.adapters.tables import contact_cases, contact_holds, debtors
from contact_svc.domain.hold import (
    CONTACT_CONDUCT,
    HOLD_RULES,
    HoldInvalid,
    HoldStateError,
    check_until,
    hold_state,
)
from contact_svc.service_layer.decisions import UnknownCase, UnknownDebtor
from contact_svc.service_layer.rows import one_row, page_rows

COMPLAINT_SVC = "complaint-svc"
CLOSED_REASON = "ticket closed"


class UnknownHold(LookupError):
    pass


class DuplicateHold(Exception):
    """A complaint hold for this ticket exists already."""


async def place_hold(
    uow: UnitOfWork,
    *,
    now: datetime,
    kind: str,
    reason: str,
    debtor_id: str | None,
    case_id: str | None,
    ticket_id: str | None,
    until: datetime | None,
    by: str,
) -> Mapping[str, Any]:
    session = uow.session
    check_until(until, now)
    if kind == "complaint" and ticket_id is None:
        raise HoldInvalid("ticket_id", f"{CONTACT_CONDUCT}: a complaint hold names its ticket")
    if case_id is not None:
        found = await session.scalar(
            select(contact_cases.c.debtor_id).where(contact_cases.c.case_id == case_id)
        )
        if found is None:
            raise UnknownCase(case_id)
        if debtor_id is not None and debtor_id != found:
            raise HoldInvalid("debtor_id", f"case {case_id} is not debtor {debtor_id}'s")
        debtor_id = found
    if debtor_id is None:
        raise HoldInvalid("debtor_id", "name the debtor_id or a case_id")
    if (
        await session.scalar(select(debtors.c.debtor_id).where(debtors.c.debtor_id == debtor_id))
        is None
    ):
        raise UnknownDebtor(debtor_id)
    hold_id = await _insert(
        uow,
        debtor_id=debtor_id,
        kind=kind,
        reason=reason,
        case_id=case_id,
        ticket_id=ticket_id,
        until=until,
        by=by,
        now=now,
    )
    if hold_id is None:
        raise DuplicateHold(f"{CONTACT_CONDUCT}: ticket {ticket_id} already holds contact")
    return await _hold(uow, hold_id)


async def complaint_opened(
    uow: UnitOfWork, *, ticket_id: str, case_id: str | None, at: datetime
) -> str | None:
    """The hold of a newly opened complaint on its case's debtor; None when the complaint
    names no case, the read model does not know the case, or the ticket holds already."""
    if case_id is None:
        return None
    debtor_id = await uow.session.scalar(
        select(contact_cases.c.debtor_id).where(contact_cases.c.case_id == case_id)
    )
    if debtor_id is None:
        return None
    return await _insert(
        uow,
        debtor_id=debtor_id,
        kind="complaint",
        reason=f"complaint ticket {ticket_id} opened",
        case_id=case_id,
        ticket_id=ticket_id,
        until=None,
        by=COMPLAINT_SVC,
        now=at,
    )


async def complaint_closed(uow: UnitOfWork, *, ticket_id: str, at: datetime) -> str | None:
    """Lift the closed ticket's complaint hold (CONTACT-CONDUCT: the complaint is resolved);
    the hold's id, or None when the ticket has no active hold (none was placed, an operator
    lifted it, its ``until`` passed, or the event is redelivered)."""
    h = contact_holds.c
    lifted = await uow.session.execute(
        update(contact_holds)
        .where(
            h.ticket_id == ticket_id,
            h.kind == "complaint",
            h.lifted_at.is_(None),
            or_(h.until.is_(None), h.until > at),
        )
        .values(lifted_by=COMPLAINT_SVC, lifted_at=at, lift_reason=CLOSED_REASON)
        .returning(h.hold_id)
    )
    hold_id = lifted.scalar_one_or_none()
    return None if hold_id is None else str(hold_id)


async def lift_hold(
    uow: UnitOfWork, *, now: datetime, hold_id: str, reason: str, by: str
) -> Mapping[str, Any]:
    hold = await _hold(uow, hold_id, lock=True)
    state = hold_state(hold["lifted_at"], hold["until"], now)
    if state != "active":
        raise HoldStateError(hold_id, state)
    await uow.session.execute(
        update(contact_holds)
        .where(contact_holds.c.hold_id == hold_id)
        .values(lifted_by=by, lifted_at=now, lift_reason=reason)
    )
    return await _hold(uow, hold_id)


async def get_hold(uow: UnitOfWork, hold_id: str) -> Mapping[str, Any]:
    return await _hold(uow, hold_id)


async def list_holds(
    uow: UnitOfWork,
    page: PageParams,
    *,
    now: datetime,
    debtor_id: str | None,
    kind: str | None,
    active: bool | None,
) -> tuple[list[Mapping[str, Any]], str | None]:
    """Holds, most recently placed first."""
    h = contact_holds.c
    query = select(contact_holds)
    if debtor_id is not None:
        query = query.where(h.debtor_id == debtor_id)
    if kind is not None:
        query = query.where(h.kind == kind)
    in_force = and_(h.lifted_at.is_(None), or_(h.until.is_(None), h.until > now))
    if active is True:
        query = query.where(in_force)
    elif active is False:
        query = query.where(~in_force)
    return await page_rows(uow, page, query, (h.placed_at, h.hold_id), descending=True)


async def _insert(
    uow: UnitOfWork,
    *,
    debtor_id: str,
    kind: str,
    reason: str,
    case_id: str | None,
    ticket_id: str | None,
    until: datetime | None,
    by: str,
    now: datetime,
) -> str | None:
    hold_id = str(uuid.uuid4())
    ins = (
        dialect_insert(uow.session, contact_holds)
        .values(
            hold_id=hold_id,
            debtor_id=debtor_id,
            kind=kind,
            rule=HOLD_RULES[kind],
            reason=reason,
            case_id=case_id,
            ticket_id=ticket_id,
            until=until,
            placed_by=by,
            placed_at=now,
        )
        .on_conflict_do_nothing(index_elements=["ticket_id"])
        .returning(contact_holds.c.hold_id)
    )
    inserted = (await uow.session.execute(ins)).scalar_one_or_none()
    return None if inserted is None else str(inserted)


async def _hold(uow: UnitOfWork, hold_id: str, *, lock: bool = False) -> Mapping[str, Any]:
    return await one_row(uow, contact_holds, "hold_id", hold_id, UnknownHold, lock=lock)
