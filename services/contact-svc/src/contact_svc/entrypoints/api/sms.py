"""SMS templates (ops create, the bank approves and files) and sending (agents, ops)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated, Any, ClassVar

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from collect_common.security.auth import Principal, Role
from collect_common.web.auth import require_roles
from collect_common.web.problems import PROBLEM_JSON, ProblemError
from contact_svc.adapters.sms import SmsSendFailed
from contact_svc.domain.sms import REQUIRED_PLACEHOLDERS, SMS_TEMPLATE, TemplateInvalid
from contact_svc.entrypoints.api.common import (
    ContextDep,
    TemplateFields,
    TemplateOutFields,
    VersionPath,
    unknown_case_as_404,
)
from contact_svc.entrypoints.api.decisions import DenialOut
from contact_svc.service_layer.sms import SMS_TEMPLATES, send_sms
from contact_svc.service_layer.templates import TemplateRefused, UnknownTemplate

templates_router = APIRouter(prefix="/v1/sms-templates", tags=["sms"])
router = APIRouter(prefix="/v1/sms", tags=["sms"])
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"content": {PROBLEM_JSON: {}}} for code in (404, 409, 422, 502)
}
OpsOnly = Annotated[Principal, require_roles(Role.OPS)]
BankOnly = Annotated[Principal, require_roles(Role.BANK)]
BODY_EXAMPLE = (
    "您的欠款{overdue_amount}元请于{deadline}前还款，还款方式：{payment_method}。"
    "如有疑问请联系{agency_contact}。"
)
PLACEHOLDERS_DOC = ", ".join("{" + p + "}" for p in REQUIRED_PLACEHOLDERS)


class TemplateIn(TemplateFields):
    body: str = Field(
        min_length=1,
        max_length=1000,
        description=f"Text with the placeholders {PLACEHOLDERS_DOC}, all required",
        examples=[BODY_EXAMPLE],
    )


class VersionIn(BaseModel):
    body: str = Field(min_length=1, max_length=1000, examples=[BODY_EXAMPLE])


class ApprovalIn(BaseModel):
    filing_number: str = Field(min_length=1, max_length=64, pattern=r"^\S(.*\S)?$")


class TemplateOut(TemplateOutFields):
    number_field: ClassVar[str] = "filing_number"

    filing_number: str | None
    approved_at: datetime | None


class SmsIn(BaseModel):
    case_id: str = Field(min_length=1, max_length=36)
    template_id: str = Field(min_length=1, max_length=36)
    version: int = Field(ge=1)
    agent_id: str | None = Field(default=None, min_length=1, max_length=64)
    values: dict[str, str] = Field(
        description=f"The placeholders' values: {PLACEHOLDERS_DOC}",
        examples=[
            {
                "overdue_amount": "5,000.00",
                "deadline": "2026-12-05",
                "payment_method": "银行转账至尾号1234账户",
                "agency_contact": "400-800-1234",
            }
        ],
    )


class SmsOut(BaseModel):
    decision_id: str
    allowed: bool
    denials: list[DenialOut]
    next_allowed_at: datetime | None
    debtor_id: str
    case_id: str | None
    message_id: str | None = Field(description="The SMS recorded; null when denied")
    provider_id: str | None


@contextmanager
def _problems(template_id: str | None = None, version: int | None = None) -> Iterator[None]:
    try:
        yield
    except TemplateInvalid as exc:
        raise ProblemError(422, exc.detail, rule=SMS_TEMPLATE, field=exc.field) from None
    except UnknownTemplate:
        what = f"template {template_id}" + (f" version {version}" if version else "")
        raise ProblemError(404, f"no {what}", field="template_id") from None
    except TemplateRefused as exc:
        raise ProblemError(409, str(exc), rule=SMS_TEMPLATE, field=exc.field) from None
    except SmsSendFailed as exc:
        raise ProblemError(502, str(exc)) from None


@templates_router.post(
    "",
    status_code=201,
    response_model=TemplateOut,
    responses=ERRORS,
    summary="Create an SMS template (version 1, pending the bank's approval)",
)
async def post_template(
    body: TemplateIn, request: Request, principal: OpsOnly, ctx: ContextDep
) -> TemplateOut:
    with _problems():
        async with ctx.uow_factory() as uow:
            created = await SMS_TEMPLATES.create(
                uow,
                now=request.app.state.runtime.clock.now(),
                bank_id=body.bank_id,
                name=body.name,
                body=body.body,
                by=principal.subject,
            )
            await uow.commit()
    return TemplateOut.of(created)


@templates_router.post(
    "/{template_id}/versions",
    status_code=201,
    response_model=TemplateOut,
    responses=ERRORS,
    summary="A new body: a new version, pending the bank's approval",
)
async def post_version(
    template_id: str, body: VersionIn, request: Request, principal: OpsOnly, ctx: ContextDep
) -> TemplateOut:
    with _problems(template_id):
        async with ctx.uow_factory() as uow:
            created = await SMS_TEMPLATES.add_version(
                uow,
                now=request.app.state.runtime.clock.now(),
                template_id=template_id,
                body=body.body,
                by=principal.subject,
            )
            await uow.commit()
    return TemplateOut.of(created)


@templates_router.get(
    "/{template_id}/versions/{version}",
    response_model=TemplateOut,
    responses=ERRORS,
    summary="One template version and its approval",
    dependencies=[require_roles(Role.OPS, Role.BANK, Role.AGENT, Role.AUDITOR)],
)
async def get_template_version(
    template_id: str, version: VersionPath, ctx: ContextDep
) -> TemplateOut:
    with _problems(template_id, version):
        async with ctx.uow_factory() as uow:
            found = await SMS_TEMPLATES.get(uow, template_id, version)
    return TemplateOut.of(found)


@templates_router.post(
    "/{template_id}/versions/{version}/approve",
    response_model=TemplateOut,
    responses=ERRORS,
    summary="The bank approves and files a version (SMS-TEMPLATE): only then can it be sent",
)
async def post_approval(
    template_id: str,
    version: VersionPath,
    body: ApprovalIn,
    request: Request,
    principal: BankOnly,
    ctx: ContextDep,
) -> TemplateOut:
    with _problems(template_id, version):
        async with ctx.uow_factory() as uow:
            approved = await SMS_TEMPLATES.approve(
                uow,
                now=request.app.state.runtime.clock.now(),
                template_id=template_id,
                version=version,
                number=body.filing_number,
                by=principal.subject,
            )
            await uow.commit()
    return TemplateOut.of(approved)


@router.post(
    "",
    response_model=SmsOut,
    responses=ERRORS,
    summary="Send an SMS from an approved template, if the contact policy allows it now",
    dependencies=[require_roles(Role.AGENT, Role.OPS)],
)
async def post_sms(body: SmsIn, request: Request, ctx: ContextDep) -> SmsOut:
    with _problems(body.template_id, body.version), unknown_case_as_404(body.case_id):
        async with ctx.uow_factory() as uow:
            outcome = await send_sms(
                uow,
                ctx.policies,
                request.app.state.sms_provider,
                now=request.app.state.runtime.clock.now(),
                case_id=body.case_id,
                template_id=body.template_id,
                version=body.version,
                agent_id=body.agent_id,
                values=body.values,
            )
            await uow.commit()
    d = outcome.decision.decision
    return SmsOut(
        decision_id=outcome.decision.decision_id,
        allowed=d.allowed,
        denials=[DenialOut(rule=x.rule, reason=x.reason) for x in d.denials],
        next_allowed_at=d.next_allowed_at,
        debtor_id=outcome.decision.debtor_id,
        case_id=outcome.decision.case_id,
        message_id=outcome.message_id,
        provider_id=outcome.provider_id,
    )
