"""Formal letters (LETTER): templates (ops create, the bank approves), generation for a case,
dispatch to a tracked carrier, delivery updates with proof."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal

from fastapi import APIRouter, Query, Response
from pydantic import AwareDatetime, BaseModel, Field

from collect_common.db import UnitOfWork
from collect_common.security.auth import Principal, Role
from collect_common.web.auth import require_roles
from collect_common.web.pagination import Page, PageQuery
from collect_common.web.problems import ProblemError
from contact_svc.domain.letter import (
    LETTER,
    REQUIRED_PLACEHOLDERS,
    DeliveryUpdate,
    LetterStateError,
    LetterStatus,
    ReturnReason,
)
from contact_svc.domain.sms import TemplateInvalid
from contact_svc.entrypoints.api.common import (
    ERRORS,
    ContextDep,
    PostDep,
    TemplateFields,
    TemplateOutFields,
    VersionPath,
    denied,
    json_response,
    state_conflict,
    unknown_case_as_404,
)
from contact_svc.service_layer.letters import (
    LETTER_TEMPLATES,
    UnknownLetter,
    dispatch_letter,
    generate_letter,
    get_letter,
    list_letters,
    update_delivery,
)
from contact_svc.service_layer.templates import TemplateRefused, UnknownTemplate

templates_router = APIRouter(prefix="/v1/letter-templates", tags=["letters"])
router = APIRouter(prefix="/v1/letters", tags=["letters"])
OpsOnly = Annotated[Principal, require_roles(Role.OPS)]
BankOnly = Annotated[Principal, require_roles(Role.BANK)]
Writers = Annotated[Principal, require_roles(Role.OPS, Role.AGENT)]
READERS = require_roles(Role.OPS, Role.AGENT, Role.BANK, Role.AUDITOR)
PLACEHOLDERS_DOC = ", ".join("{" + p + "}" for p in REQUIRED_PLACEHOLDERS)
BODY_EXAMPLE = (
    "{recipient_name}（{address}）：您在{creditor}的借款尚欠{overdue_amount}元，"
    "请于{deadline}前还清。{legal_consequences} 联系方式：{agency_contact}。"
)


class TemplateIn(TemplateFields):
    body: str = Field(
        min_length=1,
        max_length=10_000,
        description=f"Text with the placeholders {PLACEHOLDERS_DOC}, all required",
        examples=[BODY_EXAMPLE],
    )


class VersionIn(BaseModel):
    body: str = Field(min_length=1, max_length=10_000, examples=[BODY_EXAMPLE])


class ApprovalIn(BaseModel):
    approval_number: str = Field(min_length=1, max_length=64, pattern=r"^\S(.*\S)?$")


class TemplateOut(TemplateOutFields):
    number_field: ClassVar[str] = "approval_number"

    approval_number: str | None
    approved_at: datetime | None


class LetterIn(BaseModel):
    case_id: str = Field(min_length=1, max_length=36)
    template_id: str = Field(min_length=1, max_length=36)
    version: int = Field(ge=1)
    seal_ref: str = Field(
        min_length=1,
        max_length=128,
        description="The agency seal applied (its register entry): a formal letter is sealed",
        examples=["SEAL-2026-007"],
    )
    values: dict[str, str] = Field(
        description=f"The placeholders' values: {PLACEHOLDERS_DOC}",
        examples=[
            {
                "recipient_name": "张三",
                "address": "上海市浦东新区世纪大道100号",
                "overdue_amount": "5000.00",
                "creditor": "xxxx银行",
                "deadline": "2026-12-15",
                "legal_consequences": "逾期不还，我司将依法提起诉讼。",
                "agency_contact": "400-800-1234",
            }
        ],
    )


class DispatchIn(BaseModel):
    carrier: str = Field(min_length=1, max_length=32, examples=["registered_mail", "express"])
    tracking_number: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9-]+$")


class DeliveryIn(BaseModel):
    status: DeliveryUpdate
    at: AwareDatetime | None = Field(default=None, description="When it happened; default now")
    proof_ref: str | None = Field(
        default=None,
        min_length=1,
        max_length=500,
        description="The signed receipt (delivered, required) or return slip: id or URI",
    )
    return_reason: ReturnReason | None = Field(default=None, description="Required if returned")


class LetterOut(BaseModel):
    letter_id: str
    case_id: str
    debtor_id: str
    template_id: str
    template_version: int
    approval_number: str
    seal_ref: str
    text_sha256: str
    status: LetterStatus
    generated_by: str
    generated_at: datetime
    carrier: str | None
    tracking_number: str | None
    contact_id: str | None
    dispatched_at: datetime | None
    in_transit_at: datetime | None
    delivered_at: datetime | None
    returned_at: datetime | None
    return_reason: str | None
    proof_ref: str | None
    updated_by: str
    updated_at: datetime

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> LetterOut:
        return cls.model_validate({k: row[k] for k in cls.model_fields})


class LetterTextOut(BaseModel):
    letter_id: str
    text: str = Field(description="The rendered letter, with the debtor's name and address")
    text_sha256: str


@contextmanager
def _problems(template_id: str | None = None, letter_id: str | None = None) -> Iterator[None]:
    try:
        yield
    except TemplateInvalid as exc:
        raise ProblemError(422, exc.detail, rule=LETTER, field=exc.field) from None
    except UnknownTemplate as exc:
        raise ProblemError(404, f"no letter template {exc}", field="template_id") from None
    except UnknownLetter:
        raise ProblemError(404, f"no letter {letter_id}", field="letter_id") from None
    except TemplateRefused as exc:
        raise ProblemError(409, str(exc), rule=LETTER, field=exc.field) from None
    except LetterStateError as exc:
        raise state_conflict(exc, LETTER, "letter-state") from None


# -- templates ------------------------------------------------------------------------------


@templates_router.post(
    "",
    status_code=201,
    response_model=TemplateOut,
    responses=ERRORS,
    summary="Create a letter template (version 1, pending the bank's approval)",
)
async def post_template(
    body: TemplateIn,
    principal: OpsOnly,
    post: PostDep,
) -> Response:
    async def work(uow: UnitOfWork) -> Response:
        with _problems():
            created = await LETTER_TEMPLATES.create(
                uow,
                now=post.now(),
                bank_id=body.bank_id,
                name=body.name,
                body=body.body,
                by=principal.subject,
            )
        return json_response(TemplateOut.of(created), 201)

    return await post.run(principal, work)


@templates_router.get(
    "",
    response_model=Page[TemplateOut],
    summary="Letter template versions, oldest first",
    dependencies=[READERS],
)
async def get_templates(
    page: PageQuery,
    ctx: ContextDep,
    bank_id: Annotated[str | None, Query(max_length=64)] = None,
    status: Literal["pending", "approved"] | None = None,
) -> Page[TemplateOut]:
    async with ctx.uow_factory() as uow:
        items, cursor = await LETTER_TEMPLATES.list_versions(
            uow, page, bank_id=bank_id, status=status
        )
    return Page(items=[TemplateOut.of(t) for t in items], next_cursor=cursor)


@templates_router.post(
    "/{template_id}/versions",
    status_code=201,
    response_model=TemplateOut,
    responses=ERRORS,
    summary="A new body: a new version, pending the bank's approval",
)
async def post_version(
    template_id: str,
    body: VersionIn,
    principal: OpsOnly,
    post: PostDep,
) -> Response:
    async def work(uow: UnitOfWork) -> Response:
        with _problems(template_id):
            created = await LETTER_TEMPLATES.add_version(
                uow,
                now=post.now(),
                template_id=template_id,
                body=body.body,
                by=principal.subject,
            )
        return json_response(TemplateOut.of(created), 201)

    return await post.run(principal, work)


@templates_router.get(
    "/{template_id}/versions/{version}",
    response_model=TemplateOut,
    responses=ERRORS,
    summary="One letter template version and its approval",
    dependencies=[READERS],
)
async def get_template_version(
    template_id: str, version: VersionPath, ctx: ContextDep
) -> TemplateOut:
    with _problems(template_id):
        async with ctx.uow_factory() as uow:
            found = await LETTER_TEMPLATES.get(uow, template_id, version)
    return TemplateOut.of(found)


@templates_router.post(
    "/{template_id}/versions/{version}/approve",
    response_model=TemplateOut,
    responses=ERRORS,
    summary="The bank approves a version (LETTER): only then can letters be made from it",
)
async def post_approval(
    template_id: str,
    version: VersionPath,
    body: ApprovalIn,
    principal: BankOnly,
    post: PostDep,
) -> Response:
    async def work(uow: UnitOfWork) -> Response:
        with _problems(template_id):
            approved = await LETTER_TEMPLATES.approve(
                uow,
                now=post.now(),
                template_id=template_id,
                version=version,
                number=body.approval_number,
                by=principal.subject,
            )
        return json_response(TemplateOut.of(approved))

    return await post.run(principal, work)


# -- letters --------------------------------------------------------------------------------


@router.post(
    "",
    status_code=201,
    response_model=LetterOut,
    responses=ERRORS,
    summary="Generate a letter for a case from an approved template, if the policy allows "
    "the letter channel (409 naming the rules otherwise)",
)
async def post_letter(
    body: LetterIn,
    principal: Writers,
    post: PostDep,
) -> Response:
    async def work(uow: UnitOfWork) -> Response:
        with _problems(body.template_id), unknown_case_as_404(body.case_id):
            outcome = await generate_letter(
                uow,
                post.ctx.policies,
                now=post.now(),
                case_id=body.case_id,
                template_id=body.template_id,
                version=body.version,
                values=body.values,
                seal_ref=body.seal_ref,
                by=principal.subject,
            )
        if outcome.letter is None:
            return denied(post.request, outcome.decision, f"a letter on case {body.case_id}")
        return json_response(LetterOut.of(outcome.letter), 201)

    return await post.run(principal, work)


@router.get(
    "",
    response_model=Page[LetterOut],
    summary="Letters, oldest first, by case, debtor or status",
    dependencies=[READERS],
)
async def get_letters(
    page: PageQuery,
    ctx: ContextDep,
    case_id: Annotated[str | None, Query(max_length=36)] = None,
    debtor_id: Annotated[str | None, Query(max_length=64)] = None,
    status: LetterStatus | None = None,
) -> Page[LetterOut]:
    async with ctx.uow_factory() as uow:
        rows, cursor = await list_letters(
            uow, page, case_id=case_id, debtor_id=debtor_id, status=status
        )
    return Page(items=[LetterOut.of(r) for r in rows], next_cursor=cursor)


@router.get(
    "/{letter_id}",
    response_model=LetterOut,
    responses=ERRORS,
    summary="A letter: template, seal, dispatch, delivery status and proof",
    dependencies=[READERS],
)
async def get_one(letter_id: str, ctx: ContextDep) -> LetterOut:
    with _problems(letter_id=letter_id):
        async with ctx.uow_factory() as uow:
            row = await get_letter(uow, letter_id)
    return LetterOut.of(row)


@router.get(
    "/{letter_id}/text",
    response_model=LetterTextOut,
    responses=ERRORS,
    summary="The letter's text for printing (ops only: it holds the debtor's address)",
    dependencies=[require_roles(Role.OPS)],
)
async def get_text(letter_id: str, ctx: ContextDep) -> LetterTextOut:
    with _problems(letter_id=letter_id):
        async with ctx.uow_factory() as uow:
            row = await get_letter(uow, letter_id)
    return LetterTextOut(letter_id=letter_id, text=row["text"], text_sha256=row["text_sha256"])


@router.post(
    "/{letter_id}/dispatch",
    response_model=LetterOut,
    responses=ERRORS,
    summary="Hand a generated letter to a tracked carrier, if the policy allows it now",
)
async def post_dispatch(
    letter_id: str,
    body: DispatchIn,
    principal: OpsOnly,
    post: PostDep,
) -> Response:
    async def work(uow: UnitOfWork) -> Response:
        with _problems(letter_id=letter_id), unknown_case_as_404(None):
            outcome = await dispatch_letter(
                uow,
                post.ctx.policies,
                now=post.now(),
                letter_id=letter_id,
                carrier=body.carrier,
                tracking_number=body.tracking_number,
                by=principal.subject,
            )
        if not outcome.decision.decision.allowed:
            return denied(post.request, outcome.decision, f"dispatching letter {letter_id}")
        assert outcome.letter is not None
        return json_response(LetterOut.of(outcome.letter))

    return await post.run(principal, work)


@router.post(
    "/{letter_id}/delivery",
    response_model=LetterOut,
    responses=ERRORS,
    summary="The carrier's news: in_transit, delivered (with proof) or returned; "
    "a move the current state does not allow is 409 naming it",
)
async def post_delivery(
    letter_id: str,
    body: DeliveryIn,
    principal: OpsOnly,
    post: PostDep,
) -> Response:
    async def work(uow: UnitOfWork) -> Response:
        with _problems(letter_id=letter_id):
            row = await update_delivery(
                uow,
                now=post.now(),
                letter_id=letter_id,
                status=body.status,
                at=body.at,
                proof_ref=body.proof_ref,
                return_reason=body.return_reason,
                by=principal.subject,
            )
        return json_response(LetterOut.of(row))

    return await post.run(principal, work)
