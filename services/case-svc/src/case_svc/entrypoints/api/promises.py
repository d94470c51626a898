"""Promises to pay (CASE-PROMISE) and hardship repayment plans (CASE-HARDSHIP) on one case.

The agency's collectors and ops take them; the bank and its auditors read them
(the bank its own cases only). Deadlines are the debtor's calendar days: a
promise is broken, an installment missed, when that day (plus the contract's
grace days) ends unpaid.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any, Self

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field, model_validator

from case_svc.domain.plans import Plan
from case_svc.domain.promises import Promise
from case_svc.entrypoints.api.deps import ContextDep, RuntimeDep
from case_svc.entrypoints.api.errors import ERRORS, as_problems, bank_scope
from case_svc.service_layer.intake import retrying
from case_svc.service_layer.promises import create_plan, list_plans, list_promises, make_promise
from collect_common.security.auth import Role
from collect_common.web.auth import require_roles
from collect_common.web.problems import PROBLEM_JSON

router = APIRouter(prefix="/v1/cases", tags=["promises"])
ERRORS_422: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    422: {"content": {PROBLEM_JSON: {}}},
}


# -- bodies ----------------------------------------------------------------------------


class PromiseRequest(BaseModel):
    amount: Decimal = Field(gt=0, decimal_places=2, max_digits=18, examples=["1500.00"])
    due_date: date = Field(description="The debtor's calendar day", examples=["2026-12-05"])


class PromiseOut(BaseModel):
    id: str
    case_id: str
    amount: Decimal
    due_date: date
    due_at: datetime = Field(description="The deadline: end of due_date plus grace, debtor-local")
    paid: Decimal
    status: str
    agent_id: str | None
    made_at: datetime
    resolved_at: datetime | None

    @classmethod
    def of(cls, p: Promise) -> Self:
        return cls(
            id=p.id,
            case_id=p.case_id,
            amount=p.amount,
            due_date=p.due_date,
            due_at=p.due_at,
            paid=p.paid,
            status=str(p.status),
            agent_id=p.agent_id,
            made_at=p.made_at,
            resolved_at=p.resolved_at,
        )


class InstallmentIn(BaseModel):
    due_date: date
    amount: Decimal = Field(gt=0, decimal_places=2, max_digits=18)


class PlanRequest(BaseModel):
    """Either ``installments``, or ``count`` equal installments ``interval_days`` apart from
    ``first_due_date`` that pay the whole balance. ``agreement_ref``: the signed agreement."""

    agreement_ref: str = Field(min_length=1, max_length=64, examples=["AGR-2026-0042"])
    installments: list[InstallmentIn] | None = Field(default=None, min_length=1)
    count: int | None = Field(default=None, ge=1)
    first_due_date: date | None = None
    interval_days: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _one_form(self) -> Self:
        if self.installments is not None and self.count is not None:
            raise ValueError("give installments or count, not both")
        return self


class InstallmentOut(BaseModel):
    no: int
    due_date: date
    amount: Decimal
    paid: Decimal
    status: str


class PlanOut(BaseModel):
    id: str
    case_id: str
    agreement_ref: str
    status: str
    total: Decimal
    created_at: datetime
    installments: list[InstallmentOut]

    @classmethod
    def of(cls, plan: Plan) -> Self:
        return cls(
            id=plan.id,
            case_id=plan.case_id,
            agreement_ref=plan.agreement_ref,
            status=str(plan.status),
            total=plan.total,
            created_at=plan.created_at,
            installments=[
                InstallmentOut(
                    no=i.no, due_date=i.due_date, amount=i.amount, paid=i.paid, status=str(i.status)
                )
                for i in plan.installments
            ],
        )


# -- helpers ---------------------------------------------------------------------------


def _agent(request: Request) -> str | None:
    principal = request.state.principal
    return str(principal.subject) if Role.AGENT in principal.roles else None


# -- routes ----------------------------------------------------------------------------


@router.post(
    "/{case_id}/promises",
    response_model=PromiseOut,
    status_code=201,
    responses=ERRORS_422,
    summary="Record the debtor's promise to pay (CASE-PROMISE)",
    dependencies=[require_roles(Role.AGENT, Role.OPS)],
)
async def post_promise(
    case_id: str, body: PromiseRequest, request: Request, ctx: ContextDep, runtime: RuntimeDep
) -> PromiseOut:
    """Only on a case in collection (409 naming its state). Kept when payments recorded
    by the end of ``due_date`` (debtor-local, plus grace) cover ``amount``; broken otherwise."""

    async def attempt() -> Promise:
        async with runtime.uow() as uow:
            promise = await make_promise(
                ctx,
                uow,
                case_id,
                amount=body.amount,
                due_date=body.due_date,
                agent_id=_agent(request),
                now=runtime.clock.now(),
            )
            await uow.commit()
        return promise

    with as_problems(case_id):
        promise: Promise = await retrying(attempt)
    return PromiseOut.of(promise)


@router.get(
    "/{case_id}/promises",
    response_model=list[PromiseOut],
    responses=ERRORS_422,
    summary="The case's promises to pay, oldest first",
    dependencies=[require_roles(Role.BANK, Role.AGENT, Role.OPS, Role.AUDITOR)],
)
async def get_promises(
    case_id: str, request: Request, ctx: ContextDep, runtime: RuntimeDep
) -> list[PromiseOut]:
    with as_problems(case_id):
        async with runtime.uow() as uow:
            found = await list_promises(ctx, uow, case_id, bank_scope(request))
    return [PromiseOut.of(p) for p in found]


@router.post(
    "/{case_id}/plans",
    response_model=PlanOut,
    status_code=201,
    responses=ERRORS_422,
    summary="Start a signed hardship repayment plan (CASE-HARDSHIP)",
    dependencies=[require_roles(Role.AGENT, Role.OPS)],
)
async def post_plan(
    case_id: str, body: PlanRequest, ctx: ContextDep, runtime: RuntimeDep
) -> PlanOut:
    """The installments must add up to the balance or less (422, rule CASE-HARDSHIP); the
    case moves to ``plan`` (409 naming its state when it cannot)."""
    given = (
        None if body.installments is None else [(i.due_date, i.amount) for i in body.installments]
    )

    async def attempt() -> Plan:
        async with runtime.uow() as uow:
            plan = await create_plan(
                ctx,
                uow,
                case_id,
                installments=given,
                count=body.count,
                first_due_date=body.first_due_date,
                interval_days=body.interval_days,
                agreement_ref=body.agreement_ref,
                now=runtime.clock.now(),
            )
            await uow.commit()
        return plan

    with as_problems(case_id, state_rule="CASE-HARDSHIP"):
        plan: Plan = await retrying(attempt)
    return PlanOut.of(plan)


@router.get(
    "/{case_id}/plans",
    response_model=list[PlanOut],
    responses=ERRORS_422,
    summary="The case's repayment plans, oldest first",
    dependencies=[require_roles(Role.BANK, Role.AGENT, Role.OPS, Role.AUDITOR)],
)
async def get_plans(
    case_id: str, request: Request, ctx: ContextDep, runtime: RuntimeDep
) -> list[PlanOut]:
    with as_problems(case_id):
        async with runtime.uow() as uow:
            found = await list_plans(ctx, uow, case_id, bank_scope(request))
    return [PlanOut.of(p) for p in found]
