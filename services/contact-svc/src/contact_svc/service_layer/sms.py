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

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert

from collect_common.db import UnitOfWork
from collect_common.events.contact import SmsSent
from collect_common.policy import PolicyBook
from contact_svc.adapters.sms import SmsProvider
from contact_svc.adapters.tables import sms_messages, sms_template_versions, sms_templates
from contact_svc.domain.policy import ContactPolicy
from contact_svc.domain.sms import render, text_hash, validate_body
from contact_svc.service_layer.decisions import DecisionOutcome, decide_contact
from contact_svc.service_layer.rows import case_bank
from contact_svc.service_layer.templates import TemplateBook

# rule: SMS-TEMPLATE (only versions approved and filed by the case's bank are sent)
SMS_TEMPLATES = TemplateBook(
    templates=sms_templates,
    versions=sms_template_versions,
    number="filing_number",
    validate=validate_body,
    prefix="",
    verb="filed",
    usable_state="approved and filed",
)


@dataclass(frozen=True)
class SmsOutcome:
    decision: DecisionOutcome
    message_id: str | None = None
    provider_id: str | None = None


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
    bank_id = await case_bank(uow, case_id)
    template = await SMS_TEMPLATES.usable(
        uow, template_id, version, case_id=case_id, bank_id=bank_id
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
    await uow.session.execute(
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
            filing_number=template.number or "",
            agent_id=agent_id,
            text_sha256=text_hash(text),
            provider=provider.name,
            provider_id=provider_id,
            sent_at=now,
        )
    )
    return SmsOutcome(outcome, message_id, provider_id)
