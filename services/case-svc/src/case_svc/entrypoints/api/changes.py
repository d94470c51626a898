"""The change feed the bank pulls: what changed on its cases since a cursor; and the
endpoints it is pushed to, several per bank, each with its own cursor (CASE-FEEDBACK)."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Path, Request
from sqlalchemy import Select, select

from case_svc.adapters.feed_tables import feed_push_state, feed_push_targets
from case_svc.adapters.tables import case_changes
from case_svc.entrypoints.api.deps import RuntimeDep
from case_svc.entrypoints.api.errors import ERRORS
from case_svc.entrypoints.api.schemas import ChangeOut, FeedTargetIn, FeedTargetOut
from case_svc.service_layer.feed_push import TargetConflict, put_target
from case_svc.settings import Settings
from collect_common.security.auth import Role
from collect_common.web.auth import require_roles
from collect_common.web.pagination import Page, PageQuery
from collect_common.web.problems import ProblemError

router = APIRouter(prefix="/v1", tags=["changes"])
FEED_RULE = "CASE-FEEDBACK"
TargetName = Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")


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


def _targets_query() -> Select[Any]:
    t, st = feed_push_targets, feed_push_state
    return select(
        t.c.target,
        t.c.bank_id,
        t.c.url,
        t.c.key_id,
        t.c.enabled,
        t.c.created_at,
        t.c.updated_at,
        st.c.last_seq,
        st.c.failures,
        st.c.next_attempt_at,
        st.c.last_error,
    ).select_from(t.outerjoin(st, st.c.target == t.c.target))


@router.put(
    "/feed-targets/{target}",
    response_model=FeedTargetOut,
    responses=ERRORS,
    summary="Register or change an endpoint the bank's changes are pushed to",
    dependencies=[require_roles(Role.OPS)],
)
async def put_feed_target(
    body: FeedTargetIn, runtime: RuntimeDep, target: str = TargetName
) -> FeedTargetOut:
    """A bank may have several targets; each has its own cursor and retry state. A new
    target needs ``secret`` (422 otherwise) and starts from the bank's first change.
    ``enabled: false`` stops pushing to it and keeps its cursor; enabling it again
    resumes from there, due at once. The secret is never returned."""
    settings = runtime.settings
    own = isinstance(settings, Settings) and settings.feed_push_url
    reserved = settings.feed_push_target if isinstance(settings, Settings) and own else None
    secret = None if body.secret is None else body.secret.get_secret_value()
    try:
        async with runtime.uow() as uow:
            await put_target(
                uow.session,
                target,
                bank_id=body.bank_id,
                url=str(body.url),
                secret=secret,
                key_id=body.key_id,
                enabled=body.enabled,
                now=runtime.clock.now(),
                reserved=reserved,
            )
            row = (
                await uow.session.execute(
                    _targets_query().where(feed_push_targets.c.target == target)
                )
            ).one()
            await uow.commit()
    except TargetConflict as exc:
        raise ProblemError(409, str(exc), rule=FEED_RULE, field="target") from None
    except ValueError as exc:
        raise ProblemError(422, str(exc), rule=FEED_RULE, field="secret") from None
    return FeedTargetOut.of(row)


@router.get(
    "/feed-targets",
    response_model=Page[FeedTargetOut],
    summary="The registered push targets, with cursor and retry state; by name",
    dependencies=[require_roles(Role.OPS, Role.AUDITOR)],
)
async def list_feed_targets(page: PageQuery, runtime: RuntimeDep) -> Page[FeedTargetOut]:
    query = page.keyset(_targets_query(), [feed_push_targets.c.target])
    async with runtime.sessions() as session:
        rows = (await session.execute(query)).all()
    items, next_cursor = page.page_of(rows, lambda r: (r.target,))
    return Page[FeedTargetOut](items=[FeedTargetOut.of(r) for r in items], next_cursor=next_cursor)
