"""Contact holds (CONTACT-CONDUCT): do-not-contact and complaint holds, placed and lifted by
ops and complaint handling, listed for them and for auditors."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated, Any, Literal, Self

from fastapi import APIRouter, Query, Request, Response
from pydantic import AwareDatetime, BaseModel, Field, model_validator

from collect_common.db import UnitOfWork
from collect_common.security.auth import Principal, Role
from collect_common.security.masking import mask_text
from collect_common.web.auth import require_roles
from collect_common.web.pagination import Page, PageQuery
from collect_common.web.problems import ProblemError
from contact_svc.domain.hold import (
    CONTACT_CONDUCT,
    HoldInvalid,
    HoldKind,
    HoldStateError,
    hold_state,
)
from contact_svc.entrypoints.api.common import (
    ERRORS,
    ContextDep,
    PostDep,
    json_response,
    state_conflict,
    unknown_case_as_404,
)
from contact_svc.service_layer.holds import (
    DuplicateHold,
    UnknownHold,
    get_hold,
    lift_hold,
    list_holds,
    place_hold,
)

router = APIRouter(prefix="/v1/contact-holds", tags=["holds"])
Writers = Annotated[Principal, require_roles(Role.OPS, Role.COMPLAINT)]
Readers = Annotated[Principal, require_roles(Role.OPS, Role.COMPLAINT, Role.AUDITOR)]
CLEAR_REASON = frozenset({Role.OPS, Role.COMPLAINT})


class HoldIn(BaseModel):
    kind: HoldKind
    debtor_id: str | None = Field(default=None, min_length=1, max_length=64)
    case_id: str | None = Field(
        default=None, min_length=1, max_length=36, description="Or name the debtor by a case"
    )
    ticket_id: str | None = Field(
        default=None, min_length=1, max_length=64, description="The complaint (complaint holds)"
    )
    reason: str = Field(min_length=1, max_length=1000)
    until: AwareDatetime | None = Field(
        default=None, description="When the hold ends by itself; none: until lifted"
    )

    @model_validator(mode="after")
    def _a_debtor(self) -> Self:
        if self.debtor_id is None and self.case_id is None:
            raise ValueError("name the debtor_id or a case_id")
        return self


class LiftIn(BaseModel):
    reason: str = Field(min_length=1, max_length=1000)


class HoldOut(BaseModel):
    hold_id: str
    debtor_id: str
    kind: str
    rule: str = Field(examples=[CONTACT_CONDUCT])
    state: Literal["active", "lifted", "expired"]
    reason: str = Field(
        description="In clear for ops and complaint handling reading the hold; national IDs, "
        "phone and card numbers masked for others and in the answers to POSTs (SEC-PII)"
    )
    case_id: str | None
    ticket_id: str | None
    until: datetime | None
    placed_by: str
    placed_at: datetime
    lifted_by: str | None
    lifted_at: datetime | None
    lift_reason: str | None

    @classmethod
    def of(cls, row: Mapping[str, Any], principal: Principal | None, now: datetime) -> HoldOut:
        """``principal`` None: an answer that is stored (idempotency), never in clear."""
        data = {k: row[k] for k in cls.model_fields if k in row}
        data["state"] = hold_state(row["lifted_at"], row["until"], now)
        if principal is None or not principal.has_any(CLEAR_REASON):  # SEC-PII in free text
            data["reason"] = mask_text(row["reason"])
            data["lift_reason"] = mask_text(row["lift_reason"]) if row["lift_reason"] else None
        return cls.model_validate(data)


@contextmanager
def _problems(hold_id: str | None = None) -> Iterator[None]:
    try:
        yield
    except HoldInvalid as exc:
        raise ProblemError(422, exc.detail, rule=CONTACT_CONDUCT, field=exc.field) from None
    except UnknownHold:
        raise ProblemError(404, f"no hold {hold_id}", field="hold_id") from None
    except DuplicateHold as exc:
        raise ProblemError(409, str(exc), rule=CONTACT_CONDUCT, field="ticket_id") from None
    except HoldStateError as exc:
        raise state_conflict(exc, CONTACT_CONDUCT, "hold-state", field=None) from None


@router.post(
    "",
    status_code=201,
    response_model=HoldOut,
    responses=ERRORS,
    summary="Put a debtor on do-not-contact or a complaint hold: every channel is denied",
)
async def post_hold(
    body: HoldIn,
    principal: Writers,
    post: PostDep,
) -> Response:
    now = post.now()

    async def work(uow: UnitOfWork) -> Response:
        with _problems(), unknown_case_as_404(body.case_id, body.debtor_id):
            row = await place_hold(
                uow,
                now=now,
                kind=body.kind,
                reason=body.reason,
                debtor_id=body.debtor_id,
                case_id=body.case_id,
                ticket_id=body.ticket_id,
                until=body.until,
                by=principal.subject,
            )
        return json_response(HoldOut.of(row, None, now), 201)

    return await post.run(principal, work)


@router.get(
    "",
    response_model=Page[HoldOut],
    summary="Holds, most recently placed first, by debtor, kind, in force or not",
)
async def get_holds(
    request: Request,
    page: PageQuery,
    ctx: ContextDep,
    principal: Readers,
    debtor_id: Annotated[str | None, Query(max_length=64)] = None,
    kind: HoldKind | None = None,
    active: bool | None = None,
) -> Page[HoldOut]:
    now = request.app.state.runtime.clock.now()
    async with ctx.uow_factory() as uow:
        rows, cursor = await list_holds(
            uow, page, now=now, debtor_id=debtor_id, kind=kind, active=active
        )
    return Page(items=[HoldOut.of(r, principal, now) for r in rows], next_cursor=cursor)


@router.get(
    "/{hold_id}",
    response_model=HoldOut,
    responses=ERRORS,
    summary="One hold: who placed it, why, until when, who lifted it",
)
async def get_one(hold_id: str, request: Request, ctx: ContextDep, principal: Readers) -> HoldOut:
    with _problems(hold_id):
        async with ctx.uow_factory() as uow:
            row = await get_hold(uow, hold_id)
    return HoldOut.of(row, principal, request.app.state.runtime.clock.now())


@router.post(
    "/{hold_id}/lift",
    response_model=HoldOut,
    responses=ERRORS,
    summary="Lift an active hold (409 naming its state if lifted or expired)",
)
async def post_lift(
    hold_id: str,
    body: LiftIn,
    principal: Writers,
    post: PostDep,
) -> Response:
    now = post.now()

    async def work(uow: UnitOfWork) -> Response:
        with _problems(hold_id):
            row = await lift_hold(
                uow, now=now, hold_id=hold_id, reason=body.reason, by=principal.subject
            )
        return json_response(HoldOut.of(row, None, now))

    return await post.run(principal, work)
