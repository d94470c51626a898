"""Agency-facing commands on one case: promises to pay (CASE-PROMISE) and hardship
repayment plans (CASE-HARDSHIP).

Each runs in the caller's unit of work: the case, its promise or plan, their
timers, the change-feed rows and the events commit together.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal

from case_svc.adapters.repository import CaseRepository
from case_svc.domain.lifecycle import CaseStatus, require_open, transition
from case_svc.domain.model import Case
from case_svc.domain.plans import RULE, Plan, equal_installments
from case_svc.domain.promises import Promise
from case_svc.domain.validation import FieldError, InvalidField
from case_svc.service_layer.intake import CaseContext, CaseNotFound
from case_svc.service_layer.schedule import schedule_installments, schedule_promise
from collect_common.db import UnitOfWork


async def _case(repo: CaseRepository, case_id: str, bank_id: str | None, *, lock: bool) -> Case:
    case = await repo.get(case_id, for_update=lock)
    if case is None or (bank_id is not None and case.bank_id != bank_id):
        raise CaseNotFound(case_id)
    return case


async def make_promise(
    ctx: CaseContext,
    uow: UnitOfWork,
    case_id: str,
    *,
    amount: Decimal,
    due_date: date,
    agent_id: str | None,
    now: datetime,
) -> Promise:
    """PromiseMade, and the ``promise:<id>`` timer at its deadline."""
    repo = CaseRepository(uow.session, ctx.cipher)
    case = await _case(repo, case_id, None, lock=True)
    version = case.version
    promise = case.make_promise(
        str(uuid.uuid4()), amount, due_date, now=now, policy=ctx.policy, agent_id=agent_id
    )
    await repo.save(case, now, expected_version=version)
    await schedule_promise(uow.session, promise, now)
    uow.track(case)
    return promise


async def list_promises(
    ctx: CaseContext, uow: UnitOfWork, case_id: str, bank_id: str | None
) -> list[Promise]:
    repo = CaseRepository(uow.session, ctx.cipher)
    await _case(repo, case_id, bank_id, lock=False)
    return await repo.promises_of(case_id)


async def create_plan(
    ctx: CaseContext,
    uow: UnitOfWork,
    case_id: str,
    *,
    installments: Sequence[tuple[date, Decimal]] | None = None,
    count: int | None = None,
    first_due_date: date | None = None,
    interval_days: int | None = None,
    agreement_ref: str,
    now: datetime,
) -> Plan:
    """PlanCreated, the case in ``plan``, and one timer per installment.

    The installments are given, or ``count`` equal ones ``interval_days`` apart from
    ``first_due_date`` that together pay the whole balance.
    """
    repo = CaseRepository(uow.session, ctx.cipher)
    case = await _case(repo, case_id, None, lock=True)
    version = case.version
    if installments is None:
        require_open(case.status, "start a repayment plan")
        transition(case.status, CaseStatus.PLAN)
        if count is None or first_due_date is None or interval_days is None:
            raise InvalidField(
                FieldError(
                    "installments",
                    RULE,
                    "give installments, or count, first_due_date and interval_days",
                )
            )
        installments = equal_installments(case.balance, count, first_due_date, interval_days)
    plan = case.create_plan(
        str(uuid.uuid4()), list(installments), agreement_ref, now=now, policy=ctx.policy
    )
    await repo.save(case, now, expected_version=version)
    await schedule_installments(uow.session, plan, case.debtor_timezone, ctx.policy, now)
    uow.track(case)
    return plan


async def list_plans(
    ctx: CaseContext, uow: UnitOfWork, case_id: str, bank_id: str | None
) -> list[Plan]:
    repo = CaseRepository(uow.session, ctx.cipher)
    await _case(repo, case_id, bank_id, lock=False)
    return await repo.plans_of(case_id)
