"""Field visits (VISIT-TEAM): plan, complete with outcome and recordings, cancel, list."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from pydantic import AwareDatetime, BaseModel, Field

from collect_common.db import UnitOfWork
from collect_common.security.auth import Principal, Role
from collect_common.security.masking import mask_address
from collect_common.web.auth import require_roles
from collect_common.web.pagination import Page, PageQuery
from collect_common.web.problems import ProblemError
from contact_svc.domain.visit import (
    VISIT_TEAM,
    VisitInvalid,
    VisitOutcome,
    VisitStateError,
    VisitStatus,
)
from contact_svc.entrypoints.api.common import (
    ERRORS,
    ContextDep,
    PostDep,
    denied,
    json_response,
    state_conflict,
    unknown_case_as_404,
)
from contact_svc.service_layer.visits import (
    UnknownVisit,
    cancel_visit,
    complete_visit,
    get_visit,
    list_visits,
    plan_visit,
)

router = APIRouter(prefix="/v1/visits", tags=["visits"])
Writers = Annotated[Principal, require_roles(Role.AGENT, Role.OPS)]
Readers = Annotated[Principal, require_roles(Role.AGENT, Role.OPS, Role.AUDITOR)]
CLEAR_PLACE = frozenset({Role.AGENT, Role.OPS})  # SEC-PII: the staff who go there, and ops


class VisitIn(BaseModel):
    case_id: str = Field(min_length=1, max_length=36)
    purpose: str = Field(min_length=1, max_length=500, examples=["negotiate a repayment plan"])
    planned_at: AwareDatetime = Field(description="When the team will be at the place")
    place: str = Field(min_length=1, max_length=500, examples=["上海市浦东新区世纪大道100号"])
    staff: list[str] = Field(
        min_length=1,
        max_length=10,
        description="Agent ids of the team: at least two (VISIT-TEAM), none suspended by QA",
        examples=[["a-1", "a-2"]],
    )


class CompleteIn(BaseModel):
    outcome: VisitOutcome
    recording_refs: list[str] = Field(
        min_length=1,
        max_length=20,
        description="The visit's audio/video recordings (ids or URIs): fully recorded",
        examples=[["rec://visits/2026/11/abc.mp4"]],
    )
    completed_at: AwareDatetime | None = Field(default=None, description="Default now")


class CancelIn(BaseModel):
    reason: str = Field(min_length=1, max_length=500)


class VisitOut(BaseModel):
    visit_id: str
    case_id: str
    debtor_id: str
    purpose: str
    planned_at: datetime
    place: str = Field(
        description="In clear for agents and ops reading the visit, masked for others and in "
        "the answers to POSTs, which are kept for retries (SEC-PII)"
    )
    staff: list[str]
    status: VisitStatus
    decision_id: str
    planned_by: str
    outcome: str | None
    recording_refs: list[str]
    contact_id: str | None
    completed_at: datetime | None
    cancel_reason: str | None
    cancelled_at: datetime | None
    updated_by: str
    updated_at: datetime

    @classmethod
    def of(cls, row: Mapping[str, Any], principal: Principal | None) -> VisitOut:
        """``principal`` None: an answer that is stored (idempotency), never in clear."""
        data = {k: row[k] for k in cls.model_fields if k in row}
        data["staff"] = row["staff"].split(",")
        data["recording_refs"] = json.loads(row["recording_refs"] or "[]")
        if principal is None or not principal.has_any(CLEAR_PLACE):
            data["place"] = mask_address(row["place"])
        return cls.model_validate(data)


@contextmanager
def _problems(visit_id: str | None = None) -> Iterator[None]:
    try:
        yield
    except VisitInvalid as exc:
        status = 409 if exc.rule != VISIT_TEAM else 422
        raise ProblemError(status, exc.detail, rule=exc.rule, field=exc.field) from None
    except UnknownVisit:
        raise ProblemError(404, f"no visit {visit_id}", field="visit_id") from None
    except VisitStateError as exc:
        raise state_conflict(exc, VISIT_TEAM, "visit-state") from None


@router.post(
    "",
    status_code=201,
    response_model=VisitOut,
    responses=ERRORS,
    summary="Plan a field visit: at least two staff in good standing, at a time the contact "
    "policy allows in the debtor's local time (409 naming the rules otherwise)",
)
async def post_visit(
    body: VisitIn,
    principal: Writers,
    post: PostDep,
) -> Response:
    async def work(uow: UnitOfWork) -> Response:
        with _problems(), unknown_case_as_404(body.case_id):
            outcome = await plan_visit(
                uow,
                post.ctx.policies,
                now=post.now(),
                case_id=body.case_id,
                purpose=body.purpose,
                planned_at=body.planned_at,
                place=body.place,
                staff=body.staff,
                by=principal.subject,
            )
        if outcome.visit is None:
            return denied(post.request, outcome.decision, f"a visit on case {body.case_id}")
        return json_response(VisitOut.of(outcome.visit, None), 201)

    return await post.run(principal, work)


@router.get(
    "",
    response_model=Page[VisitOut],
    summary="Visits by planned time, by case, debtor or status",
)
async def get_visits(
    page: PageQuery,
    ctx: ContextDep,
    principal: Readers,
    case_id: Annotated[str | None, Query(max_length=36)] = None,
    debtor_id: Annotated[str | None, Query(max_length=64)] = None,
    status: VisitStatus | None = None,
) -> Page[VisitOut]:
    async with ctx.uow_factory() as uow:
        rows, cursor = await list_visits(
            uow, page, case_id=case_id, debtor_id=debtor_id, status=status
        )
    return Page(items=[VisitOut.of(r, principal) for r in rows], next_cursor=cursor)


@router.get(
    "/{visit_id}",
    response_model=VisitOut,
    responses=ERRORS,
    summary="One visit: plan, team, outcome and recordings",
)
async def get_one(visit_id: str, ctx: ContextDep, principal: Readers) -> VisitOut:
    with _problems(visit_id):
        async with ctx.uow_factory() as uow:
            row = await get_visit(uow, visit_id)
    return VisitOut.of(row, principal)


@router.post(
    "/{visit_id}/complete",
    response_model=VisitOut,
    responses=ERRORS,
    summary="The visit happened: its outcome and recordings (it counts as a contact)",
)
async def post_complete(
    visit_id: str,
    body: CompleteIn,
    principal: Writers,
    post: PostDep,
) -> Response:
    async def work(uow: UnitOfWork) -> Response:
        with _problems(visit_id):
            row = await complete_visit(
                uow,
                post.ctx.policies,
                now=post.now(),
                visit_id=visit_id,
                outcome=body.outcome,
                recording_refs=body.recording_refs,
                completed_at=body.completed_at,
                by=principal.subject,
            )
        return json_response(VisitOut.of(row, None))

    return await post.run(principal, work)


@router.post(
    "/{visit_id}/cancel",
    response_model=VisitOut,
    responses=ERRORS,
    summary="Cancel a planned visit",
)
async def post_cancel(
    visit_id: str,
    body: CancelIn,
    principal: Writers,
    post: PostDep,
) -> Response:
    async def work(uow: UnitOfWork) -> Response:
        with _problems(visit_id):
            row = await cancel_visit(
                uow,
                now=post.now(),
                visit_id=visit_id,
                reason=body.reason,
                by=principal.subject,
            )
        return json_response(VisitOut.of(row, None))

    return await post.run(principal, work)
