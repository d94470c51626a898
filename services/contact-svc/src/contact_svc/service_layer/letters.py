"""Formal letters (LETTER): bank-approved templates, generation, dispatch and delivery.

Templates are created by ops and approved by the bank (its approval number); each new
body is a new version, pending until approved. A letter is generated for a case from an
approved version of the case's bank: the contact-policy engine is asked first
(``decide_contact``, channel ``letter``: the case's track must allow letters and the case
must be contactable, no hold on the debtor), then the text is rendered and checked for
the required content and stored encrypted (it carries the debtor's name and address).
Dispatch asks the engine again (time has passed since generation) under the debtor's
lock: allowed, the letter counts as a contact (``contact_attempts``, ``contact.attempted``)
and goes to a tracked carrier with its tracking number. Delivery updates follow the
states of ``domain.letter``; a delivery keeps the proof (the signed receipt's reference).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update

from collect_common.db import UnitOfWork
from collect_common.events.contact import LetterDelivered, LetterDispatched, LetterReturned
from collect_common.policy import PolicyBook
from collect_common.web.pagination import PageParams
from contact_svc.adapters.tables import letter_template_versions, letter_templates, letters
from contact_svc.domain.letter import LETTER, LetterInvalid, move, render, validate_body
from contact_svc.domain.policy import ContactPolicy
from contact_svc.domain.sms import text_hash
from contact_svc.service_layer.decisions import DecisionOutcome, decide_contact
from contact_svc.service_layer.rows import case_bank, one_row, page_rows, where_given
from contact_svc.service_layer.templates import TemplateBook, TemplateRefused


class UnknownLetter(LookupError):
    pass


class LetterRefused(TemplateRefused):
    """LETTER refuses it: an unapproved or another bank's template, a template already
    approved under another number, a tracking number already used."""


# rule: LETTER (only versions approved by the case's bank are used)
LETTER_TEMPLATES = TemplateBook(
    templates=letter_templates,
    versions=letter_template_versions,
    number="approval_number",
    validate=validate_body,
    prefix=f"{LETTER}: ",
    verb="approved",
    usable_state="approved",
)


@dataclass(frozen=True)
class LetterOutcome:
    """The engine's decision and, when it allowed the letter, the letter's row."""

    decision: DecisionOutcome
    letter: Mapping[str, Any] | None = None


async def generate_letter(
    uow: UnitOfWork,
    policies: PolicyBook[ContactPolicy],
    *,
    now: datetime,
    case_id: str,
    template_id: str,
    version: int,
    values: Mapping[str, str],
    seal_ref: str,
    by: str,
) -> LetterOutcome:
    """Check the template (LETTER), ask the engine for the letter channel, render and store;
    a denial is recorded and emitted by the decision and no letter is made. The caller
    commits."""
    bank_id = await case_bank(uow, case_id)
    template = await LETTER_TEMPLATES.usable(
        uow, template_id, version, case_id=case_id, bank_id=bank_id
    )
    text = render(template.body, values)
    outcome = await decide_contact(
        uow, policies, now=now, channel="letter", case_id=case_id, record_attempt=False
    )
    if not outcome.decision.allowed:
        return LetterOutcome(outcome)
    row: dict[str, Any] = {
        "letter_id": str(uuid.uuid4()),
        "case_id": case_id,
        "debtor_id": outcome.debtor_id,
        "bank_id": bank_id,
        "template_id": template_id,
        "template_version": version,
        "approval_number": template.number or "",
        "seal_ref": seal_ref,
        "text": text,
        "text_sha256": text_hash(text),
        "status": "generated",
        "generated_by": by,
        "generated_at": now,
        "updated_by": by,
        "updated_at": now,
    }
    await uow.session.execute(insert(letters).values(**row))
    return LetterOutcome(outcome, await _letter(uow, row["letter_id"]))


async def dispatch_letter(
    uow: UnitOfWork,
    policies: PolicyBook[ContactPolicy],
    *,
    now: datetime,
    letter_id: str,
    carrier: str,
    tracking_number: str,
    by: str,
) -> LetterOutcome:
    """Hand a generated letter to a tracked carrier, if the engine allows the letter channel
    now; the allowed dispatch is recorded as the contact (``decide_contact``)."""
    letter = await _letter(uow, letter_id, lock=True)
    move(letter["status"], "dispatched")
    policy = policies.for_contract(letter["bank_id"], now.date())
    # rule: LETTER (registered mail or express: tracked)
    if carrier not in policy.letter_carriers:
        raise LetterInvalid(
            "carrier",
            f"{LETTER}: carrier must be one of {', '.join(policy.letter_carriers)} "
            "(tracked delivery)",
        )
    taken = await uow.session.scalar(
        select(letters.c.letter_id).where(
            letters.c.carrier == carrier, letters.c.tracking_number == tracking_number
        )
    )
    if taken is not None:
        raise LetterRefused(
            f"{LETTER}: {carrier} tracking number {tracking_number} is already letter {taken}'s",
            "tracking_number",
        )
    outcome = await decide_contact(
        uow,
        policies,
        now=now,
        channel="letter",
        case_id=letter["case_id"],
        record_attempt=True,
    )
    if not outcome.decision.allowed:
        return LetterOutcome(outcome, letter)
    await uow.session.execute(
        update(letters)
        .where(letters.c.letter_id == letter_id)
        .values(
            status="dispatched",
            carrier=carrier,
            tracking_number=tracking_number,
            contact_id=outcome.decision_id,
            dispatched_by=by,
            dispatched_at=now,
            updated_by=by,
            updated_at=now,
        )
    )
    uow.emit(
        LetterDispatched(
            debtor_id=letter["debtor_id"],
            case_id=letter["case_id"],
            letter_id=letter_id,
            contact_id=outcome.decision_id,
            template_id=letter["template_id"],
            template_version=letter["template_version"],
            approval_number=letter["approval_number"],
            text_sha256=letter["text_sha256"],
            carrier=carrier,
            tracking_number=tracking_number,
            dispatched_at=now,
        )
    )
    return LetterOutcome(outcome, await _letter(uow, letter_id))


async def update_delivery(
    uow: UnitOfWork,
    *,
    now: datetime,
    letter_id: str,
    status: str,
    at: datetime | None,
    proof_ref: str | None,
    return_reason: str | None,
    by: str,
) -> Mapping[str, Any]:
    """The carrier's news: in transit, delivered (with the signed receipt's reference) or
    returned (with the reason). ``at`` is when it happened (default now)."""
    letter = await _letter(uow, letter_id, lock=True)
    after = move(letter["status"], status)
    when = at or now
    if when > now:
        raise LetterInvalid("at", f"{LETTER}: a delivery status cannot be in the future")
    if letter["dispatched_at"] is not None and when < letter["dispatched_at"]:
        raise LetterInvalid("at", f"{LETTER}: the letter was dispatched after {when}")
    values: dict[str, Any] = {"status": after, "updated_by": by, "updated_at": now}
    if after == "in_transit":
        values["in_transit_at"] = when
    elif after == "delivered":
        # rule: LETTER (delivery is tracked and proof kept)
        if not proof_ref:
            raise LetterInvalid(
                "proof_ref", f"{LETTER}: a delivery needs its proof (the signed receipt)"
            )
        values.update(delivered_at=when, proof_ref=proof_ref)
    else:
        if not return_reason:
            raise LetterInvalid("return_reason", f"{LETTER}: a returned letter needs a reason")
        values.update(returned_at=when, return_reason=return_reason, proof_ref=proof_ref)
    await uow.session.execute(
        update(letters).where(letters.c.letter_id == letter_id).values(**values)
    )
    common = {
        "debtor_id": letter["debtor_id"],
        "case_id": letter["case_id"],
        "letter_id": letter_id,
        "carrier": letter["carrier"],
        "tracking_number": letter["tracking_number"],
    }
    if after == "delivered":
        assert proof_ref is not None
        uow.emit(LetterDelivered(**common, proof_ref=proof_ref, delivered_at=when))
    elif after == "returned":
        uow.emit(
            LetterReturned(**common, reason=return_reason, proof_ref=proof_ref, returned_at=when)
        )
    return await _letter(uow, letter_id)


async def get_letter(uow: UnitOfWork, letter_id: str) -> Mapping[str, Any]:
    return await _letter(uow, letter_id)


async def list_letters(
    uow: UnitOfWork,
    page: PageParams,
    *,
    case_id: str | None,
    debtor_id: str | None,
    status: str | None,
) -> tuple[list[Mapping[str, Any]], str | None]:
    """Letters, oldest first; the text is not read (``get_letter`` gives it)."""
    c = letters.c
    query = select(*(col for col in c if col.name != "text"))
    query = where_given(query, {c.case_id: case_id, c.debtor_id: debtor_id, c.status: status})
    return await page_rows(uow, page, query, (c.generated_at, c.letter_id))


async def _letter(uow: UnitOfWork, letter_id: str, *, lock: bool = False) -> Mapping[str, Any]:
    return await one_row(uow, letters, "letter_id", letter_id, UnknownLetter, lock=lock)
