"""SMS templates and sending (SMS-TEMPLATE, SMS-WEEKLY-CAP).

Templates are created by ops and approved and filed by the bank; each new body is a new
version, pending until the bank approves it. Sending runs the contact decision for the
``sms`` channel under the debtor's row lock (``decide_contact``), so concurrent sends to
one debtor cannot exceed the weekly cap; an allowed SMS is rendered, handed to the
provider and recorded (``contact_attempts`` + ``sms_messages``) in that same transaction.
A provider failure rolls the transaction back: nothing is counted. (A crash between the
provider's acceptance and the commit would leave a sent SMS unrecorded; the provider
gets our message id as idempotency reference, so a retry is not sent twice by it.)
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, insert, select, update

from collect_common.db import UnitOfWork
from collect_common.events.contact import SmsSent
from collect_common.policy import PolicyBook
from contact_svc.adapters.sms import SmsProvider
from contact_svc.adapters.tables import (
    contact_cases,
    sms_messages,
    sms_template_versions,
    sms_templates,
)
from contact_svc.domain.policy import ContactPolicy
from contact_svc.domain.sms import render, text_hash, validate_body
from contact_svc.service_layer.decisions import DecisionOutcome, UnknownCase, decide_contact

PENDING = "pending"
APPROVED = "approved"


class UnknownTemplate(LookupError):
    pass


class TemplateRefused(Exception):
    """The template version may not be used (SMS-TEMPLATE): not approved, another bank's,
    or already filed under another number."""


@dataclass(frozen=True)
class TemplateVersion:
    template_id: str
    bank_id: str
    name: str
    version: int
    body: str
    status: str
    filing_number: str | None
    approved_at: datetime | None


@dataclass(frozen=True)
class SmsOutcome:
    decision: DecisionOutcome
    message_id: str | None = None
    provider_id: str | None = None


async def create_template(
    uow: UnitOfWork, *, now: datetime, bank_id: str, name: str, body: str, created_by: str
) -> TemplateVersion:
    validate_body(body)
    template_id = str(uuid.uuid4())
    await uow.session.execute(
        insert(sms_templates).values(
            template_id=template_id,
            bank_id=bank_id,
            name=name,
            created_by=created_by,
            created_at=now,
        )
    )
    await _insert_version(uow, template_id, 1, body, created_by, now)
    return TemplateVersion(template_id, bank_id, name, 1, body, PENDING, None, None)


async def add_version(
    uow: UnitOfWork, *, now: datetime, template_id: str, body: str, created_by: str
) -> TemplateVersion:
    """A new body is a new version (pending the bank's approval); earlier versions stay."""
    validate_body(body)
    session = uow.session
    template = (
        (
            await session.execute(
                select(sms_templates)
                .where(sms_templates.c.template_id == template_id)
                .with_for_update()  # serialises version numbers
            )
        )
        .mappings()
        .one_or_none()
    )
    if template is None:
        raise UnknownTemplate(template_id)
    last = await session.scalar(
        select(func.max(sms_template_versions.c.version)).where(
            sms_template_versions.c.template_id == template_id
        )
    )
    version = (last or 0) + 1
    await _insert_version(uow, template_id, version, body, created_by, now)
    return TemplateVersion(
        template_id, template["bank_id"], template["name"], version, body, PENDING, None, None
    )


async def approve_version(
    uow: UnitOfWork,
    *,
    now: datetime,
    template_id: str,
    version: int,
    filing_number: str,
    approved_by: str,
) -> TemplateVersion:
    """The bank approves and files one version; approving again with the same filing
    number changes nothing, with another is refused."""
    found = await get_version(uow, template_id, version, lock=True)
    if found.status == APPROVED:
        if found.filing_number != filing_number:
            raise TemplateRefused(f"version {version} is already filed as {found.filing_number}")
        return found
    t = sms_template_versions.c
    await uow.session.execute(
        update(sms_template_versions)
        .where(t.template_id == template_id, t.version == version)
        .values(
            status=APPROVED, filing_number=filing_number, approved_by=approved_by, approved_at=now
        )
    )
    return TemplateVersion(
        template_id,
        found.bank_id,
        found.name,
        version,
        found.body,
        APPROVED,
        filing_number,
        now,
    )


async def get_version(
    uow: UnitOfWork, template_id: str, version: int, *, lock: bool = False
) -> TemplateVersion:
    t, v = sms_templates.c, sms_template_versions.c
    query = (
        select(t.template_id, t.bank_id, t.name, v.version, v.body, v.status)
        .add_columns(v.filing_number, v.approved_at)
        .join_from(sms_templates, sms_template_versions, v.template_id == t.template_id)
        .where(t.template_id == template_id, v.version == version)
    )
    if lock:
        query = query.with_for_update(of=sms_template_versions)
    row = (await uow.session.execute(query)).mappings().one_or_none()
    if row is None:
        raise UnknownTemplate(f"{template_id} v{version}")
    return TemplateVersion(**dict(row))


async def send_sms(
    uow: UnitOfWork,
    policies: PolicyBook[ContactPolicy],
    provider: SmsProvider,
    *,
    now: datetime,
    case_id: str,
    template_id: str,
    version: int,
    agent_id: str | None,
    values: Mapping[str, str],
) -> SmsOutcome:
    """Check the template (SMS-TEMPLATE), decide (SMS-WEEKLY-CAP and the rest), send and
    record; a denial is recorded and emitted by the decision and nothing is sent. The
    caller commits."""
    session = uow.session
    bank_id = await session.scalar(
        select(contact_cases.c.bank_id).where(contact_cases.c.case_id == case_id)
    )
    if bank_id is None:
        raise UnknownCase(case_id)
    template = await get_version(uow, template_id, version)
    # rule: SMS-TEMPLATE (only versions approved and filed by the case's bank are sent)
    if template.status != APPROVED:
        raise TemplateRefused(
            f"template {template_id} version {version} is not approved and filed by the bank"
        )
    if template.bank_id != bank_id:
        raise TemplateRefused(
            f"template {template_id} is filed for bank {template.bank_id}, "
            f"case {case_id} belongs to bank {bank_id}"
        )
    text = render(template.body, values)
    outcome = await decide_contact(
        uow,
        policies,
        now=now,
        channel="sms",
        case_id=case_id,
        agent_id=agent_id,
        record_attempt=True,
    )
    if not outcome.decision.allowed:
        return SmsOutcome(outcome)
    message_id = outcome.decision_id  # the attempt's id too
    provider_id = await provider.send(outcome.debtor_id, text, reference=message_id)
    await session.execute(
        insert(sms_messages).values(
            message_id=message_id,
            debtor_id=outcome.debtor_id,
            case_id=case_id,
            template_id=template_id,
            template_version=version,
            agent_id=agent_id,
            recipient_ref=outcome.debtor_id,
            text_sha256=text_hash(text),
            provider=provider.name,
            provider_id=provider_id,
            status="sent",
            sent_at=now,
        )
    )
    uow.emit(
        SmsSent(
            debtor_id=outcome.debtor_id,
            message_id=message_id,
            case_id=case_id,
            template_id=template_id,
            template_version=version,
            filing_number=template.filing_number or "",
            agent_id=agent_id,
            text_sha256=text_hash(text),
            provider=provider.name,
            provider_id=provider_id,
            sent_at=now,
        )
    )
    return SmsOutcome(outcome, message_id, provider_id)


async def _insert_version(
    uow: UnitOfWork, template_id: str, version: int, body: str, created_by: str, now: datetime
) -> None:
    await uow.session.execute(
        insert(sms_template_versions).values(
            template_id=template_id,
            version=version,
            body=body,
            status=PENDING,
            created_by=created_by,
            created_at=now,
        )
    )
