"""Bank-approved templates, as SMS (SMS-TEMPLATE) and letters (LETTER) both keep them.

Templates are created by ops; each new body is a new version, pending until the bank
approves it under its number (an SMS version's filing number, a letter version's approval
number); earlier versions stay. Only a version the case's own bank approved is used for
the case. One ``TemplateBook`` per channel names its tables, its number and its wording.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import Select, Table, func, insert, select, update

from collect_common.db import UnitOfWork
from collect_common.web.pagination import PageParams
from contact_svc.service_layer.rows import page_rows

PENDING = "pending"
APPROVED = "approved"


class UnknownTemplate(LookupError):
    pass


class TemplateRefused(Exception):
    """The version may not be used or approved as asked: not approved, another bank's, or
    already approved under another number; ``field`` names what."""

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
    number: str | None  # the bank's filing or approval number
    approved_at: datetime | None


@dataclass(frozen=True)
class TemplateBook:
    """One channel's templates: its tables, the column of the bank's number, the body's
    check, and how refusals read (``prefix`` before each; a version the bank approved is
    ``verb`` (filed, approved); a usable one is ``usable_state`` by the bank)."""

    templates: Table
    versions: Table
    number: str
    validate: Callable[[str], object]
    prefix: str
    verb: str
    usable_state: str

    async def create(
        self, uow: UnitOfWork, *, now: datetime, bank_id: str, name: str, body: str, by: str
    ) -> TemplateVersion:
        self.validate(body)
        template_id = str(uuid.uuid4())
        await uow.session.execute(
            insert(self.templates).values(
                template_id=template_id, bank_id=bank_id, name=name, created_by=by, created_at=now
            )
        )
        await self._insert_version(uow, template_id, 1, body, by, now)
        return TemplateVersion(template_id, bank_id, name, 1, body, PENDING, None, None)

    async def add_version(
        self, uow: UnitOfWork, *, now: datetime, template_id: str, body: str, by: str
    ) -> TemplateVersion:
        """A new body is a new version (pending the bank's approval); earlier versions stay."""
        self.validate(body)
        session = uow.session
        template = (
            (
                await session.execute(
                    select(self.templates)
                    .where(self.templates.c.template_id == template_id)
                    .with_for_update()  # serialises version numbers
                )
            )
            .mappings()
            .one_or_none()
        )
        if template is None:
            raise UnknownTemplate(template_id)
        last = await session.scalar(
            select(func.max(self.versions.c.version)).where(
                self.versions.c.template_id == template_id
            )
        )
        version = (last or 0) + 1
        await self._insert_version(uow, template_id, version, body, by, now)
        return TemplateVersion(
            template_id, template["bank_id"], template["name"], version, body, PENDING, None, None
        )

    async def approve(
        self,
        uow: UnitOfWork,
        *,
        now: datetime,
        template_id: str,
        version: int,
        number: str,
        by: str,
    ) -> TemplateVersion:
        """The bank approves one version under ``number``; approving again with the same
        number changes nothing, with another is refused."""
        found = await self.get(uow, template_id, version, lock=True)
        if found.status == APPROVED:
            if found.number != number:
                raise TemplateRefused(
                    f"{self.prefix}version {version} is already {self.verb} as {found.number}",
                    self.number,
                )
            return found
        v = self.versions.c
        await uow.session.execute(
            update(self.versions)
            .where(v.template_id == template_id, v.version == version)
            .values(**{self.number: number}, status=APPROVED, approved_by=by, approved_at=now)
        )
        return TemplateVersion(
            template_id, found.bank_id, found.name, version, found.body, APPROVED, number, now
        )

    async def get(
        self, uow: UnitOfWork, template_id: str, version: int, *, lock: bool = False
    ) -> TemplateVersion:
        v = self.versions.c
        query = self._query().where(v.template_id == template_id, v.version == version)
        if lock:
            query = query.with_for_update(of=self.versions)
        row = (await uow.session.execute(query)).mappings().one_or_none()
        if row is None:
            raise UnknownTemplate(f"{template_id} v{version}")
        return TemplateVersion(**dict(row))

    async def usable(
        self, uow: UnitOfWork, template_id: str, version: int, *, case_id: str, bank_id: str
    ) -> TemplateVersion:
        """The version, if the case's bank approved it (refused naming ``template_id``)."""
        template = await self.get(uow, template_id, version)
        if template.status != APPROVED:
            raise TemplateRefused(
                f"{self.prefix}template {template_id} version {version} is not "
                f"{self.usable_state} by the bank",
                "template_id",
            )
        if template.bank_id != bank_id:
            raise TemplateRefused(
                f"{self.prefix}template {template_id} is {self.verb} for bank "
                f"{template.bank_id}, case {case_id} belongs to bank {bank_id}",
                "template_id",
            )
        return template

    async def list_versions(
        self, uow: UnitOfWork, page: PageParams, *, bank_id: str | None, status: str | None
    ) -> tuple[list[TemplateVersion], str | None]:
        """Template versions, oldest template first (then by version)."""
        v = self.versions.c
        query = self._query()
        if bank_id is not None:
            query = query.where(self.templates.c.bank_id == bank_id)
        if status is not None:
            query = query.where(v.status == status)
        query = query.add_columns(v.created_at.label("created_at"))
        rows, cursor = await page_rows(uow, page, query, (v.created_at, v.template_id, v.version))
        names = [f.name for f in fields(TemplateVersion)]
        return [TemplateVersion(**{k: r[k] for k in names}) for r in rows], cursor

    def _query(self) -> Select[Any]:
        t, v = self.templates.c, self.versions.c
        return (
            select(t.template_id, t.bank_id, t.name, v.version, v.body, v.status)
            .add_columns(v[self.number].label("number"), v.approved_at)
            .join_from(self.templates, self.versions, v.template_id == t.template_id)
        )

    async def _insert_version(
        self, uow: UnitOfWork, template_id: str, version: int, body: str, by: str, now: datetime
    ) -> None:
        await uow.session.execute(
            insert(self.versions).values(
                template_id=template_id,
                version=version,
                body=body,
                status=PENDING,
                created_by=by,
                created_at=now,
            )
        )
