"""What the template, letter, visit and hold services share: a case's bank, one row by its
id, optional equality filters, and a keyset page of rows."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Column, Select, Table, select

from collect_common.db import UnitOfWork
from collect_common.web.pagination import PageParams
from contact_svc.adapters.tables import contact_cases
from contact_svc.service_layer.decisions import UnknownCase


async def case_bank(uow: UnitOfWork, case_id: str) -> str:
    """The bank of a case the read model knows; ``UnknownCase`` otherwise."""
    bank_id = await uow.session.scalar(
        select(contact_cases.c.bank_id).where(contact_cases.c.case_id == case_id)
    )
    if bank_id is None:
        raise UnknownCase(case_id)
    return str(bank_id)


async def one_row(
    uow: UnitOfWork,
    table: Table,
    key: str,
    value: str,
    missing: type[LookupError],
    *,
    lock: bool = False,
) -> dict[str, Any]:
    """The row of ``table`` whose ``key`` column is ``value`` (``lock``: FOR UPDATE);
    ``missing(value)`` is raised when there is none."""
    query = select(table).where(table.c[key] == value)
    if lock:
        query = query.with_for_update()
    row = (await uow.session.execute(query)).mappings().one_or_none()
    if row is None:
        raise missing(value)
    return dict(row)


def where_given(query: Select[Any], equal: Mapping[Column[Any], object | None]) -> Select[Any]:
    """``query`` filtered on each column whose value is given (not None)."""
    for column, value in equal.items():
        if value is not None:
            query = query.where(column == value)
    return query


async def page_rows(
    uow: UnitOfWork,
    page: PageParams,
    query: Select[Any],
    order: Sequence[Column[Any]],
    *,
    descending: bool = False,
) -> tuple[list[Mapping[str, Any]], str | None]:
    """One page of ``query``'s rows in the keyset ``order`` (the columns are read back from
    each row by name) and the next page's cursor."""
    names = [column.name for column in order]
    rows = (
        (await uow.session.execute(page.keyset(query, order, descending=descending)))
        .mappings()
        .all()
    )
    found: list[Mapping[str, Any]] = [dict(r) for r in rows]
    return page.page_of(found, lambda r: tuple(r[n] for n in names))
