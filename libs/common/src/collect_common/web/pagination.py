"""Cursor (keyset) pagination for list endpoints.

A page is ``{"items": [...], "next_cursor": "..."}``; the client passes
``next_cursor`` back as ``?cursor=`` until it is null. The cursor is the sort key
of the last item, so pages neither skip nor repeat rows when rows are added or
removed between requests, and every page costs one index range scan::

    @router.get("/v1/cases", response_model=Page[CaseOut], dependencies=[require_roles(...)])
    async def list_cases(page: PageQuery) -> Page[CaseOut]:
        cols = (cases.c.opened_at, cases.c.id)            # the last one must be unique
        async with runtime.uow() as uow:
            rows = (await uow.session.execute(page.keyset(select(cases), cols))).all()
        items, next_cursor = page.page_of(rows, lambda r: (r.opened_at, r.id))
        return Page(items=[CaseOut.from_row(r) for r in items], next_cursor=next_cursor)

The cursor is opaque to clients (base64url of typed JSON), not secret: a forged
one can only start the listing somewhere else among rows the caller may list.
Malformed cursors, or ones that do not fit the listing, are a 400 problem naming
``cursor`` (rule ``PAGINATION``).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import ColumnElement, Select, literal, tuple_

from collect_common.web.problems import ProblemError

CursorValue = str | int | datetime | date | Decimal
T = TypeVar("T")
R = TypeVar("R")
S = TypeVar("S", bound=Select[Any])

RULE = "PAGINATION"
DEFAULT_LIMIT = 50
MAX_LIMIT = 500
MAX_CURSOR_LENGTH = 2048
_INT64 = (-(2**63), 2**63 - 1)


# --- the cursor ------------------------------------------------------------------------


def _tagged(value: CursorValue) -> list[str | int]:
    if isinstance(value, bool):  # an int subclass; no sort key needs it
        raise TypeError("bool is not a cursor value")
    if isinstance(value, str):
        return ["s", value]
    if isinstance(value, int):
        return ["i", value]
    if isinstance(value, datetime):
        return ["t", value.isoformat()]
    if isinstance(value, date):
        return ["d", value.isoformat()]
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError("a cursor decimal must be finite")
        return ["n", str(value)]
    raise TypeError(f"{type(value).__name__} is not a cursor value")


def encode_cursor(values: Sequence[CursorValue]) -> str:
    """An opaque, URL-safe cursor for the sort key ``values`` (types round-trip)."""
    payload = json.dumps([_tagged(v) for v in values], separators=(",", ":"))
    return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")


def _bad_cursor(detail: str) -> ProblemError:
    return ProblemError(
        400,
        f"invalid cursor: {detail}; pass back a next_cursor this listing returned",
        slug="invalid-cursor",
        rule=RULE,
        field="cursor",
    )


def _untagged(item: Any) -> CursorValue:
    if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], str)):
        raise ValueError("not a tagged value")
    tag, raw = item
    if tag == "s" and isinstance(raw, str):
        return raw
    if tag == "i" and isinstance(raw, int) and not isinstance(raw, bool):
        if not _INT64[0] <= raw <= _INT64[1]:
            raise ValueError("integer out of range")
        return raw
    if tag == "t" and isinstance(raw, str):
        return datetime.fromisoformat(raw)
    if tag == "d" and isinstance(raw, str):
        return date.fromisoformat(raw)
    if tag == "n" and isinstance(raw, str):
        number = Decimal(raw)
        if not number.is_finite():
            raise ValueError("decimal not finite")
        return number
    raise ValueError(f"unknown tag {tag!r}")


def decode_cursor(text: str) -> list[CursorValue]:
    """The sort key in a cursor; ``ProblemError`` 400 (field ``cursor``) if it is not one."""
    if not text or len(text) > MAX_CURSOR_LENGTH:
        raise _bad_cursor("empty or too long")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        items = json.loads(raw.decode("utf-8"))
        if not isinstance(items, list) or not items:
            raise ValueError("not a list of values")
        return [_untagged(item) for item in items]
    except (binascii.Error, UnicodeDecodeError, ValueError, InvalidOperation, RecursionError):
        raise _bad_cursor("not a cursor of this API") from None


# --- queries ---------------------------------------------------------------------------


def _expected_type(column: ColumnElement[Any]) -> type | None:
    try:
        python_type = column.type.python_type
    except NotImplementedError:
        return None
    return python_type if isinstance(python_type, type) else None


def _fits(value: CursorValue, expected: type | None) -> bool:
    if expected is None:
        return True
    if expected is date:  # a datetime is a date, but not a DATE column's value
        return isinstance(value, date) and not isinstance(value, datetime)
    if expected is float:  # Float columns: any number
        return isinstance(value, int | Decimal)
    return isinstance(value, expected)


def keyset(
    query: S,
    order_columns: Sequence[ColumnElement[Any]],
    cursor: str | None,
    limit: int,
    *,
    descending: bool = False,
) -> S:
    """``query`` from after ``cursor``: ``WHERE (c1, c2) > (v1, v2) ORDER BY c1, c2 LIMIT n+1``.

    The last of ``order_columns`` must make the order total (a unique id). Any
    ORDER BY and LIMIT already on ``query`` are replaced. ``descending`` walks
    the same key backwards (``<`` and ``DESC`` on every column). A cursor with the
    wrong number or types of values is a 400 problem naming ``cursor``.
    """
    if not order_columns:
        raise ValueError("keyset pagination needs at least one order column")
    if limit < 1:
        raise ValueError("limit must be at least 1")
    if cursor is not None:
        values = decode_cursor(cursor)
        if len(values) != len(order_columns):
            raise _bad_cursor("it belongs to another listing")
        for column, value in zip(order_columns, values, strict=True):
            if not _fits(value, _expected_type(column)):
                raise _bad_cursor("it belongs to another listing")
        key = tuple_(*order_columns)
        after = tuple_(
            *(literal(v, type_=c.type) for c, v in zip(order_columns, values, strict=True))
        )
        query = query.where(key < after if descending else key > after)
    ordering = [c.desc() if descending else c.asc() for c in order_columns]
    return query.order_by(None).order_by(*ordering).limit(limit + 1)


def page_of(
    rows: Sequence[R], order_values: Callable[[R], Sequence[CursorValue]], limit: int
) -> tuple[list[R], str | None]:
    """The page (at most ``limit`` rows) and the cursor of the next one, if any.

    ``rows`` come from a :func:`keyset` query (``limit + 1`` fetched, so one more
    than ``limit`` means another page follows). ``order_values`` gives a row's
    values of the order columns, in the same order.
    """
    items = list(rows[:limit])
    if len(rows) <= limit or not items:
        return items, None
    return items, encode_cursor(order_values(items[-1]))


# --- the API shapes --------------------------------------------------------------------

_EXAMPLE_CURSOR = encode_cursor([datetime.fromisoformat("2026-01-05T09:00:00+00:00"), 1234])


def _page_schema_extra(schema: dict[str, Any], cls: type[Any]) -> None:
    item_example: Any = None
    annotation = getattr(cls, "model_fields", {}).get("items")
    args = getattr(getattr(annotation, "annotation", None), "__args__", ())
    item_type = args[0] if args else None
    if isinstance(item_type, type) and issubclass(item_type, BaseModel):
        examples = item_type.model_json_schema().get("examples") or []
        item_example = examples[0] if examples else None
    schema["examples"] = [
        {
            "items": [] if item_example is None else [item_example],
            "next_cursor": _EXAMPLE_CURSOR,
        }
    ]


class Page(BaseModel, Generic[T]):
    """One page of a listing; ask for the next with ``?cursor=<next_cursor>``."""

    model_config = ConfigDict(json_schema_extra=_page_schema_extra)

    items: list[T] = Field(description="At most `limit` items, in the listing's order.")
    next_cursor: str | None = Field(
        default=None,
        description="Pass as `cursor` to get the next page; null on the last page.",
        examples=[_EXAMPLE_CURSOR],
    )


class PageParams:
    """``?cursor=&limit=`` of a listing (a FastAPI dependency; see :data:`PageQuery`)."""

    def __init__(
        self,
        cursor: Annotated[
            str | None,
            Query(
                description="The `next_cursor` of the previous page; omit for the first page.",
                examples=[_EXAMPLE_CURSOR],
            ),
        ] = None,
        limit: Annotated[
            int,
            Query(
                ge=1,
                le=MAX_LIMIT,
                description=f"Items per page, 1 to {MAX_LIMIT}.",
                examples=[DEFAULT_LIMIT],
            ),
        ] = DEFAULT_LIMIT,
    ) -> None:
        self.cursor = cursor
        self.limit = limit

    def keyset(
        self, query: S, order_columns: Sequence[ColumnElement[Any]], *, descending: bool = False
    ) -> S:
        return keyset(query, order_columns, self.cursor, self.limit, descending=descending)

    def page_of(
        self, rows: Sequence[R], order_values: Callable[[R], Sequence[CursorValue]]
    ) -> tuple[list[R], str | None]:
        return page_of(rows, order_values, self.limit)


PageQuery = Annotated[PageParams, Depends(PageParams)]
"""``page: PageQuery`` in a route's signature; a bad ``limit`` is a 422 naming ``query.limit``."""
