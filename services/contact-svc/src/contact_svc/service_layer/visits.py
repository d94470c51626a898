"""Field visits (VISIT-TEAM): planning, completion, cancellation.

Planning checks the team (at least two distinct staff, none suspended by QA: the read
model of QA's events knows), then asks the contact-policy engine about the visit's
planned instant (``decide_contact`` with ``at``: the case's track must allow visits, the
case be contactable, no hold on the debtor, and the time outside the quiet periods in the
debtor's local time). A denial is recorded and emitted by the decision and no visit is
planned. The place is stored encrypted (an address). Completion records the outcome and
the recordings and counts as a contact (``contact_attempts``, ``contact.attempted``), so
QA's weekly sample can draw it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update

from collect_common.db import UnitOfWork
from collect_common.events.contact import VisitCompleted, VisitPlanned
from collect_common.events.types import ContactAttempted
from collect_common.policy import PolicyBook
from collect_common.web.pagination import PageParams
from contact_svc.adapters.tables import contact_agents, contact_attempts, contact_cases, visits
from contact_svc.domain.policy import ContactPolicy
from contact_svc.domain.visit import (
    VISIT_TEAM,
    VisitInvalid,
    VisitOutcome,
    move,
    recordings,
    refuse_suspended,
    team,
)
from contact_svc.service_layer.decisions import DecisionOutcome, decide_contact
from contact_svc.service_layer.rows import case_bank, one_row, page_rows, where_given


class UnknownVisit(LookupError):
    pass


@dataclass(frozen=True)
class PlannedVisit:
    decision: DecisionOutcome
    visit: Mapping[str, Any] | None = None


async def plan_visit(
    uow: UnitOfWork,
    policies: PolicyBook[ContactPolicy],
    *,
    now: datetime,
    case_id: str,
    purpose: str,
    planned_at: datetime,
    place: str,
    staff: Sequence[str],
    by: str,
) -> PlannedVisit:
    session = uow.session
    bank_id = await case_bank(uow, case_id)
    if planned_at <= now:
        raise VisitInvalid("planned_at", f"{VISIT_TEAM}: a visit is planned ahead of time")
    policy = policies.for_contract(bank_id, planned_at.date())
    members = team(staff, policy)  # rule: VISIT-TEAM
    suspended = await session.scalars(
        select(contact_agents.c.agent_id).where(
            contact_agents.c.agent_id.in_(members), contact_agents.c.suspended.is_(True)
        )
    )
    refuse_suspended(suspended)  # rule: QA-SANCTION
    outcome = await decide_contact(
        uow,
        policies,
        now=now,
        at=planned_at,
        channel="visit",
        case_id=case_id,
        record_attempt=False,
    )
    if not outcome.decision.allowed:
        return PlannedVisit(outcome)
    visit_id = str(uuid.uuid4())
    await session.execute(
        insert(visits).values(
            visit_id=visit_id,
            case_id=case_id,
            debtor_id=outcome.debtor_id,
            purpose=purpose,
            planned_at=planned_at,
            place=place,
            staff=",".join(members),
            status="planned",
            decision_id=outcome.decision_id,
            planned_by=by,
            created_at=now,
            updated_by=by,
            updated_at=now,
        )
    )
    uow.emit(
        VisitPlanned(
            debtor_id=outcome.debtor_id,
            case_id=case_id,
            visit_id=visit_id,
            staff=members,
            planned_at=planned_at,
            decision_id=outcome.decision_id,
        )
    )
    return PlannedVisit(outcome, await _visit(uow, visit_id))


async def complete_visit(
    uow: UnitOfWork,
    policies: PolicyBook[ContactPolicy],
    *,
    now: datetime,
    visit_id: str,
    outcome: VisitOutcome,
    recording_refs: Sequence[str],
    completed_at: datetime | None,
    by: str,
) -> Mapping[str, Any]:
    visit = await _visit(uow, visit_id, lock=True)
    after = move(visit["status"], "complete")
    when = completed_at or now
    if when > now:
        raise VisitInvalid("completed_at", f"{VISIT_TEAM}: a visit cannot complete in the future")
    bank_id = await uow.session.scalar(
        select(contact_cases.c.bank_id).where(contact_cases.c.case_id == visit["case_id"])
    )
    policy = policies.for_contract(bank_id or "", when.date())
    refs = recordings(recording_refs, policy)  # rule: VISIT-TEAM (fully recorded)
    staff = visit["staff"].split(",")
    contact_id = str(uuid.uuid4())
    await uow.session.execute(
        insert(contact_attempts).values(
            id=contact_id,
            decision_id=visit["decision_id"],
            debtor_id=visit["debtor_id"],
            case_id=visit["case_id"],
            channel="visit",
            agent_id=staff[0],
            answered=None,
            attempted_at=when,
        )
    )
    await uow.session.execute(
        update(visits)
        .where(visits.c.visit_id == visit_id)
        .values(
            status=after,
            outcome=outcome,
            recording_refs=json.dumps(refs),
            contact_id=contact_id,
            completed_at=when,
            updated_by=by,
            updated_at=now,
        )
    )
    uow.emit(
        ContactAttempted(
            debtor_id=visit["debtor_id"],
            case_id=visit["case_id"],
            contact_id=contact_id,
            channel="visit",
            agent_id=staff[0],
            attempted_at=when,
        ),
        VisitCompleted(
            debtor_id=visit["debtor_id"],
            case_id=visit["case_id"],
            visit_id=visit_id,
            contact_id=contact_id,
            staff=staff,
            outcome=outcome,
            recording_refs=refs,
            completed_at=when,
        ),
    )
    return await _visit(uow, visit_id)


async def cancel_visit(
    uow: UnitOfWork, *, now: datetime, visit_id: str, reason: str, by: str
) -> Mapping[str, Any]:
    visit = await _visit(uow, visit_id, lock=True)
    after = move(visit["status"], "cancel")
    await uow.session.execute(
        update(visits)
        .where(visits.c.visit_id == visit_id)
        .values(status=after, cancel_reason=reason, cancelled_at=now, updated_by=by, updated_at=now)
    )
    return await _visit(uow, visit_id)


async def get_visit(uow: UnitOfWork, visit_id: str) -> Mapping[str, Any]:
    return await _visit(uow, visit_id)


async def list_visits(
    uow: UnitOfWork,
    page: PageParams,
    *,
    case_id: str | None,
    debtor_id: str | None,
    status: str | None,
) -> tuple[list[Mapping[str, Any]], str | None]:
    """Visits by planned time, earliest first."""
    c = visits.c
    query = where_given(
        select(visits), {c.case_id: case_id, c.debtor_id: debtor_id, c.status: status}
    )
    return await page_rows(uow, page, query, (c.planned_at, c.visit_id))


async def _visit(uow: UnitOfWork, visit_id: str, *, lock: bool = False) -> Mapping[str, Any]:
    return await one_row(uow, visits, "visit_id", visit_id, UnknownVisit, lock=lock)
