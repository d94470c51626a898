"""The change feed the bank pulls: what changed on its cases since a cursor (CASE-FEEDBACK)."""

from __future__ import annotations

import json

from fastapi import APIRouter, Request
from sqlalchemy import select

from case_svc.adapters.tables import case_changes
from case_svc.entrypoints.api.deps import RuntimeDep
from case_svc.entrypoints.api.schemas import ChangeOut
from collect_common.security.auth import Role
from collect_common.web.auth import require_roles
from collect_common.web.pagination import Page, PageQuery

router = APIRouter(prefix="/v1", tags=["changes"])


@router.get(
    "/changes",
    response_model=Page[ChangeOut],
    summary="Changes to the bank's cases in commit order; pass next_cursor to go on",
    dependencies=[require_roles(Role.BANK)],
)
async def list_changes(request: Request, page: PageQuery, runtime: RuntimeDep) -> Page[ChangeOut]:
    """Imports, updates, bucket and strategy changes, payments, settlements, recalls:
    ids, codes, amounts and dates only. An empty page with ``next_cursor`` null means
    the bank is up to date; keep the last cursor and ask again later."""
    bank_id = request.state.principal.subject
    query = page.keyset(
        select(case_changes).where(case_changes.c.bank_id == bank_id), [case_changes.c.seq]
    )
    async with runtime.sessions() as session:
        rows = (await session.execute(query)).all()
    items, next_cursor = page.page_of(rows, lambda r: (r.seq,))
    return Page[ChangeOut](
        items=[
            ChangeOut(
                seq=r.seq,
                case_id=r.case_id,
                contract_no=r.contract_no,
                change=r.change,
                data=json.loads(r.data),
                at=r.at,
            )
            for r in items
        ],
        next_cursor=next_cursor,
    )
