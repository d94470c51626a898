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

from sqlalchemy import Select, func, insert, select, update

from collect_common.db import UnitOfWork
from collect_common.events.contact import LetterDelivered, LetterDispatched, LetterReturned
from collect_common.policy import PolicyBook
from collect_common.web.pagination import PageParams
from contact_svc.adapters.tables import (
    contact_cases,
    letter_template_versions,
    letter_templates,
    letters,
)
from contact_svc.domain.letter import LETTER, LetterInvalid, move, render, validate_body
from contact_svc.domain.policy import ContactPolicy
from contact_svc.domain.sms import text_hash
from contact_svc.service_layer.decisions import DecisionOutcome, UnknownCase, decide_contact

PENDING = "pending"
APPROVED = "approved"


class UnknownTemplate(LookupError):
    pass


class UnknownLetter(LookupError):
    pass


class LetterRefused(Exception):
    """LETTER refuses it: an unapproved or another bank's template, a template already
    approved under another number, a tracking number already used."""

    def __init__(self, detail: str, field: str) -> None:
        super().__init__(detail)
        self.field = field


@dataclass(frozen=True)
class TemplateVersion:
    template_id: str
    bank_id: str
    name: str
    version: int
    body: str
    status: str
    approval_number: str | None
    approved_at: datetime | None


@dataclass(frozen=True)
class LetterOutcome:
    """The engine's decision and, when it allowed the letter, the letter's row."""

    decision: DecisionOutcome
    letter: Mapping[str, Any] | None = None


# -- templates ------------------------------------------------------------------------------


async def create_template(
    uow: UnitOfWork, *, now: datetime, bank_id: str, name: str, body: str, created_by: str
) -> TemplateVersion:
    validate_body(body)
    template_id = str(uuid.uuid4())
    await uow.session.execute(
        insert(letter_templates).values(
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
                select(letter_templates)
                .where(letter_templates.c.template_id == template_id)
                .with_for_update()  # serialises version numbers
            )
        )
        .mappings()
        .one_or_none()
    )
    if template is None:
        raise UnknownTemplate(template_id)
    last = await session.scalar(
        select(func.max(letter_template_versions.c.version)).where(
            letter_template_versions.c.template_id == template_id
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
    approval_number: str,
    approved_by: str,
) -> TemplateVersion:
    """The bank approves one version; approving again with the same number changes nothing,
    with another is refused."""
    found = await get_version(uow, template_id, version, lock=True)
    if found.status == APPROVED:
        if found.approval_number != approval_number:
            raise LetterRefused(
                f"{LETTER}: version {version} is already approved as {found.approval_number}",
                "approval_number",
            )
        return found
    t = letter_template_versions.c
    await uow.session.execute(
        update(letter_template_versions)
        .where(t.template_id == template_id, t.version == version)
        .values(
            status=APPROVED,
            approval_number=approval_number,
            approved_by=approved_by,
            approved_at=now,
        )
    )
    return TemplateVersion(
        template_id, found.bank_id, found.name, version, found.body, APPROVED, approval_number, now
    )


def _versions_query() -> Select[Any]:
    t, v = letter_templates.c, letter_template_versions.c
    return (
        select(t.template_id, t.bank_id, t.name, v.version, v.body, v.status)
        .add_columns(v.approval_number, v.approved_at)
        .join_from(letter_templates, letter_template_versions, v.template_id == t.template_id)
    )


async def get_version(
    uow: UnitOfWork, template_id: str, version: int, *, lock: bool = False
) -> TemplateVersion:
    v = letter_template_versions.c
    query = _versions_query().where(v.template_id == template_id, v.version == version)
    if lock:
        query = query.with_for_update(of=letter_template_versions)
    row = (await uow.session.execute(query)).mappings().one_or_none()
    if row is None:
        raise UnknownTemplate(f"{template_id} v{version}")
    return TemplateVersion(**dict(row))


async def list_versions(
    uow: UnitOfWork, page: PageParams, *, bank_id: str | None, status: str | None
) -> tuple[list[TemplateVersion], str | None]:
    """Template versions, oldest template first (then by version)."""
    v = letter_template_versions.c
    query = _versions_query()
    if bank_id is not None:
        query = query.where(letter_templates.c.bank_id == bank_id)
    if status is not None:
        query = query.where(v.status == status)
    order = (v.created_at, v.template_id, v.version)
    query = query.add_columns(v.created_at.label("created_at"))
    rows = (await uow.session.execute(page.keyset(query, order))).mappings().all()
    items, cursor = page.page_of(rows, lambda r: (r["created_at"], r["template_id"], r["version"]))
    out = [
        TemplateVersion(**{k: r[k] for k in TemplateVersion.__dataclass_fields__}) for r in items
    ]
    return out, cursor


# -- letters --------------------------------------------------------------------------------


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
    session = uow.session
    bank_id = await session.scalar(
        select(contact_cases.c.bank_id).where(contact_cases.c.case_id == case_id)
    )
    if bank_id is None:
        raise UnknownCase(case_id)
    template = await get_version(uow, template_id, version)
    # rule: LETTER (only versions approved by the case's bank are used)
    if template.status != APPROVED:
        raise LetterRefused(
            f"{LETTER}: template {template_id} version {version} is not approved by the bank",
            "template_id",
        )
    if template.bank_id != bank_id:
        raise LetterRefused(
            f"{LETTER}: template {template_id} is approved for bank {template.bank_id}, "
            f"case {case_id} belongs to bank {bank_id}",
            "template_id",
        )
    text = render(template.body, values)
    outcome = await decide_contact(
        uow, policies, now=now, channel="letter", case_id=case_id, record_attempt=False
    )
    if not outcome.decision.allowed:
        return LetterOutcome(outcome)
    row = {
        "letter_id": str(uuid.uuid4()),
        "case_id": case_id,
        "debtor_id": outcome.debtor_id,
        "bank_id": bank_id,
        "template_id": template_id,
        "template_version": version,
        "approval_number": template.approval_number or "",
        "seal_ref": seal_ref,
        "text": text,
        "text_sha256": text_hash(text),
        "status": "generated",
        "generated_by": by,
        "generated_at": now,
        "updated_by": by,
        "updated_at": now,
    }
    await session.execute(insert(letters).values(**row))
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
    query = select(*(col for col in letters.c if col.name != "text"))
    if case_id is not None:
        query = query.where(c.case_id == case_id)
    if debtor_id is not None:
        query = query.where(c.debtor_id == debtor_id)
    if status is not None:
        query = query.where(c.status == status)
    rows = (
        (await uow.session.execute(page.keyset(query, (c.generated_at, c.letter_id))))
        .mappings()
        .all()
    )
    return page.page_of([dict(r) for r in rows], lambda r: (r["generated_at"], r["letter_id"]))


async def _letter(uow: UnitOfWork, letter_id: str, *, lock: bool = False) -> Mapping[str, Any]:
    query = select(letters).where(letters.c.letter_id == letter_id)
    if lock:
        query = query.with_for_update()
    row = (await uow.session.execute(query)).mappings().one_or_none()
    if row is None:
        raise UnknownLetter(letter_id)
    return dict(row)


async def _insert_version(
    uow: UnitOfWork, template_id: str, version: int, body: str, created_by: str, now: datetime
) -> None:
    await uow.session.execute(
        insert(letter_template_versions).values(
            template_id=template_id,
            version=version,
            body=body,
            status=PENDING,
            created_by=created_by,
            created_at=now,
        )
    )
