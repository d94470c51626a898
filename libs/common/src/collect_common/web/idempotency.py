"""``Idempotency-Key`` for POSTs a remote system may retry (bulk imports, payments).

A client that sends the same request twice with the same key gets the first
answer again, byte for byte (status, body, content type, ``Location``), with
``Idempotent-Replayed: true``, and nothing is done a second time.

The key is claimed inside the endpoint's own unit of work, so the stored answer
commits in the same transaction as the state change, or neither does::

    idempotency = IdempotencyKeys(metadata.tables[IDEMPOTENCY_KEYS], runtime.clock)

    @router.post("/v1/payments", status_code=201, dependencies=[require_roles(Role.BANK)])
    async def pay(body: PaymentIn, request: Request, key: IdempotencyKeyHeader) -> Response:
        async with runtime.uow() as uow:
            replay = await idempotency.begin(uow, request, request.state.principal, key)
            if replay is not None:
                return replay
            ...  # the work, with uow
            response = JSONResponse(result, status_code=201)
            await idempotency.record(uow, response)
            await uow.commit()
            return response

How it behaves:

- ``begin`` claims ``(principal, key)`` by inserting the row with no answer yet
  (``INSERT ... ON CONFLICT DO NOTHING``). A concurrent duplicate's insert waits on
  the uncommitted claim (PostgreSQL row lock; SQLite's single writer), then finds
  the committed row and replays it, so the work never runs twice, not even at the
  same time. If the first request holds the key longer than ``wait`` (PostgreSQL
  ``lock_timeout``), the duplicate gets 409 with ``Retry-After``.
- Keys are scoped per principal (its subject): two clients may use the same key.
- The same key with a different request (method, path, query or body differ)
  is refused: 422, rule ``IDEMPOTENCY-KEY-REUSE``, field ``Idempotency-Key``.
- What is stored: every answer the endpoint itself returns and ``record``s after
  ``begin`` -- successes and 4xx business answers alike (return the problem as a
  response and record it, if a retry should get the same refusal). Never a 5xx:
  ``record`` refuses them. An exception (a raised ``ProblemError`` included) leaves
  the unit of work uncommitted, so the claim rolls back with everything else and a
  retry runs afresh. Requests refused before the endpoint runs (authentication,
  body validation) never touch the key.
- Rows live ``ttl`` (24 hours by default); an expired row is ignored (the key may
  be used again) and ``prune`` deletes them.
- A request without the header (where the route makes it optional) is not
  deduplicated: ``begin`` returns None and ``record`` does nothing.
"""

from __future__ import annotations

import hashlib
import json
import weakref
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, cast

from fastapi import Depends, Header, Request, Response
from fastapi.responses import StreamingResponse
from sqlalchemy import (
    Column,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    and_,
    select,
    text,
)
from sqlalchemy.engine import CursorResult
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from collect_common.clock import Clock
from collect_common.db import UnitOfWork, UtcDateTime, dialect_insert
from collect_common.security.auth import Principal
from collect_common.web.problems import ProblemError

IDEMPOTENCY_KEYS = "idempotency_keys"
HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
RULE_KEY = "IDEMPOTENCY-KEY"
RULE_REUSE = "IDEMPOTENCY-KEY-REUSE"
RULE_IN_PROGRESS = "IDEMPOTENCY-KEY-IN-PROGRESS"
MAX_KEY_LENGTH = 200
DEFAULT_TTL = timedelta(hours=24)
DEFAULT_WAIT = timedelta(seconds=5)
REPLAYED_RESPONSE_HEADERS = ("location", "content-location", "etag", "link")
"""Headers stored with the answer and replayed (besides ``Content-Type``)."""

_LOCK_NOT_AVAILABLE = "55P03"  # PostgreSQL: lock_timeout expired


def add_idempotency_table(metadata: MetaData) -> Table:
    """The ``idempotency_keys`` table in ``metadata`` (added once; returned if present).

    ``response_headers`` (JSON, nullable) keeps :data:`REPLAYED_RESPONSE_HEADERS`,
    so a replayed 201 still says where the resource is. A row whose
    ``status_code`` is NULL is a claim whose answer is not recorded (yet).
    """
    existing = metadata.tables.get(IDEMPOTENCY_KEYS)
    if existing is not None:
        return existing
    return Table(
        IDEMPOTENCY_KEYS,
        metadata,
        Column("principal", String(200), primary_key=True),
        Column("key", String(200), primary_key=True),
        Column("method", String(10), nullable=False),
        Column("path", String(500), nullable=False),
        Column("request_hash", String(64), nullable=False),
        Column("status_code", Integer, nullable=True),
        Column("response_body", LargeBinary, nullable=True),
        Column("content_type", String(100), nullable=True),
        Column("response_headers", Text, nullable=True),
        Column("created_at", UtcDateTime, nullable=False),
        Index("ix_idempotency_keys_created_at", "created_at"),
    )


# --- the header ------------------------------------------------------------------------


def _valid_key(value: str) -> bool:
    return 1 <= len(value) <= MAX_KEY_LENGTH and all(0x21 <= ord(c) <= 0x7E for c in value)


def _check_key(value: str | None, *, required: bool) -> str | None:
    if value is None:
        if required:
            raise ProblemError(
                428,
                f"this operation requires an {HEADER} header (1-{MAX_KEY_LENGTH} visible "
                "ASCII characters, e.g. a UUID), so a retry cannot apply it twice",
                title="Precondition required",
                slug="idempotency-key-required",
                rule=RULE_KEY,
                field=HEADER,
            )
        return None
    if not _valid_key(value):
        raise ProblemError(
            400,
            f"{HEADER} must be 1-{MAX_KEY_LENGTH} visible ASCII characters (no spaces)",
            slug="invalid-idempotency-key",
            rule=RULE_KEY,
            field=HEADER,
        )
    return value


_HEADER_DOC = (
    "A key of the client's choosing (1-200 visible ASCII characters, e.g. a UUID). "
    "A retry with the same key and the same request returns the first answer with "
    f"`{REPLAYED_HEADER}: true` and changes nothing; keys are kept 24 hours."
)
REQUIRED_NOTE = " Required here: without it the answer is 428."
"""Ends the header's description where the key is required (the OpenAPI document adds 428)."""
# what _valid_key accepts, in the document (the check itself stays _check_key's: 400)
_KEY_SCHEMA = {"minLength": 1, "maxLength": MAX_KEY_LENGTH, "pattern": "^[!-~]+$"}


async def _optional_key(
    idempotency_key: Annotated[
        str | None,
        Header(
            alias=HEADER,
            description=_HEADER_DOC + " Optional here.",
            examples=["7d0c2a4e-6f1b-4c1e-9a61-2f7d8a6b3c10"],
            json_schema_extra=_KEY_SCHEMA,
        ),
    ] = None,
) -> str | None:
    return _check_key(idempotency_key, required=False)


async def _required_key(
    idempotency_key: Annotated[
        str | None,
        Header(
            alias=HEADER,
            description=_HEADER_DOC + REQUIRED_NOTE,
            examples=["7d0c2a4e-6f1b-4c1e-9a61-2f7d8a6b3c10"],
            json_schema_extra=_KEY_SCHEMA,
        ),
    ] = None,
) -> str:
    key = _check_key(idempotency_key, required=True)
    assert key is not None
    return key


IdempotencyKeyHeader = Annotated[str | None, Depends(_optional_key)]
"""The ``Idempotency-Key`` header when sent (else None); 400 problem when malformed."""

RequiredIdempotencyKeyHeader = Annotated[str, Depends(_required_key)]
"""The ``Idempotency-Key`` header; 428 problem when missing, 400 when malformed."""


# --- claiming, recording, replaying ------------------------------------------------------


@dataclass(frozen=True)
class _Claim:
    principal: str
    key: str


def request_hash(method: str, path: str, query: str, body: bytes) -> str:
    """SHA-256 (hex) of what makes two requests "the same" for a key."""
    digest = hashlib.sha256()
    for part in (method.upper().encode(), path.encode(), query.encode()):
        digest.update(part)
        digest.update(b"\x00")
    digest.update(body)
    return digest.hexdigest()


def _utc(value: datetime) -> datetime:
    # SQLite gives back naive datetimes; everything stored is UTC
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _subject(principal: Principal | str) -> str:
    return principal if isinstance(principal, str) else principal.subject


class IdempotencyKeys:
    """Claims keys, records answers and replays them, on the ``idempotency_keys`` table.

    One instance per service (it holds no connection); ``table`` comes from
    :func:`add_idempotency_table`. ``wait`` bounds how long a duplicate waits for
    the request holding its key (PostgreSQL; None waits as long as it takes).
    """

    def __init__(
        self,
        table: Table,
        clock: Clock,
        ttl: timedelta = DEFAULT_TTL,
        *,
        wait: timedelta | None = DEFAULT_WAIT,
        retry_after_seconds: int = 2,
    ) -> None:
        if ttl <= timedelta(0):
            raise ValueError("ttl must be positive")
        self.table = table
        self.clock = clock
        self.ttl = ttl
        self.wait = wait
        self.retry_after_seconds = retry_after_seconds
        self._claims: weakref.WeakKeyDictionary[UnitOfWork, _Claim] = weakref.WeakKeyDictionary()

    async def begin(
        self,
        uow: UnitOfWork,
        request: Request,
        principal: Principal | str,
        key: str | None,
    ) -> Response | None:
        """Claim ``key`` in ``uow``'s transaction: None to go on, or the answer to return.

        Returns the stored answer when the key was used before with the same request.
        Raises ``ProblemError`` 422 (``IDEMPOTENCY-KEY-REUSE``) when it was used with a
        different request, 409 with ``Retry-After`` when another request holds the key
        and its answer cannot be read.
        """
        self._claims.pop(uow, None)
        if key is None:
            return None
        key = cast(str, _check_key(key, required=False))
        subject = _subject(principal)
        body = await request.body()
        query = request.url.query
        digest = request_hash(request.method, request.url.path, query, body)
        session = uow.session
        now = self.clock.now()
        row = {
            "principal": subject,
            "key": key,
            "method": request.method.upper(),
            "path": request.url.path[:500],
            "request_hash": digest,
            "status_code": None,
            "response_body": None,
            "content_type": None,
            "response_headers": None,
            "created_at": now,
        }
        if await self._claim(session, row):
            self._claims[uow] = _Claim(subject, key)
            return None

        t = self.table
        where = and_(t.c.principal == subject, t.c.key == key)
        stored = (await session.execute(select(t).where(where))).mappings().first()
        if stored is not None and _utc(stored["created_at"]) <= now - self.ttl:
            # expired: take the key over, unless someone else just did
            taken = await session.execute(
                t.update()
                .where(where, t.c.created_at == stored["created_at"])
                .values({k: v for k, v in row.items() if k not in ("principal", "key")})
            )
            if cast(CursorResult[Any], taken).rowcount == 1:
                self._claims[uow] = _Claim(subject, key)
                return None
            stored = (await session.execute(select(t).where(where))).mappings().first()
        if stored is None or _utc(stored["created_at"]) <= now - self.ttl:
            raise self._in_progress()
        if stored["request_hash"] != digest:
            raise ProblemError(
                422,
                f"this {HEADER} was already used for a different request "
                f"({stored['method']} {stored['path']}); use a new key for a new request",
                title="Idempotency key reused",
                slug="idempotency-key-reuse",
                rule=RULE_REUSE,
                field=HEADER,
            )
        if stored["status_code"] is None:
            raise self._in_progress()
        headers = dict(json.loads(stored["response_headers"] or "{}"))
        if stored["content_type"]:
            headers["content-type"] = stored["content_type"]
        headers[REPLAYED_HEADER] = "true"
        return Response(
            content=bytes(stored["response_body"] or b""),
            status_code=int(stored["status_code"]),
            headers=headers,
        )

    async def record(self, uow: UnitOfWork, response: Response) -> Response:
        """Store ``response`` as the answer to the key ``begin`` claimed in ``uow``.

        Call it before ``uow.commit()``: the answer commits with the work. Does
        nothing when the request carried no key. Refuses 5xx answers (they must roll
        back, so a retry runs again) and streamed bodies. Returns ``response``.
        """
        if response.status_code >= 500:
            raise ValueError("a 5xx answer is never stored: roll back instead")
        claim = self._claims.pop(uow, None)
        if claim is None:
            return response
        if isinstance(response, StreamingResponse) or not isinstance(
            getattr(response, "body", None), bytes | bytearray | memoryview
        ):
            raise TypeError("only responses with a rendered body can be recorded")
        kept = {
            name: response.headers[name]
            for name in REPLAYED_RESPONSE_HEADERS
            if name in response.headers
        }
        t = self.table
        await uow.session.execute(
            t.update()
            .where(t.c.principal == claim.principal, t.c.key == claim.key)
            .values(
                status_code=response.status_code,
                response_body=bytes(response.body),
                content_type=(response.headers.get("content-type") or "")[:100] or None,
                response_headers=json.dumps(kept) if kept else None,
            )
        )
        return response

    async def prune(self, session: AsyncSession, now: datetime) -> int:
        """Delete rows that expired by ``now``; returns how many. Commit is the caller's."""
        t = self.table
        result = await session.execute(t.delete().where(t.c.created_at <= now - self.ttl))
        return cast(CursorResult[Any], result).rowcount

    # -- internals ------------------------------------------------------------------------

    async def _claim(self, session: AsyncSession, row: dict[str, Any]) -> bool:
        """Insert the claim; True if this transaction now holds the key."""
        t = self.table
        insert = (
            dialect_insert(session, t)
            .values(row)
            .on_conflict_do_nothing(index_elements=[t.c.principal, t.c.key])
            .returning(t.c.key)
        )
        postgres = session.get_bind().dialect.name == "postgresql"
        previous: str | None = None
        if postgres and self.wait is not None:
            previous = (
                await session.execute(
                    text(
                        "SELECT current_setting('lock_timeout') AS previous, "
                        "set_config('lock_timeout', :wait, true)"
                    ),
                    {"wait": f"{max(1, int(self.wait.total_seconds() * 1000))}ms"},
                )
            ).scalar_one()
        try:
            inserted = (await session.execute(insert)).first() is not None
        except DBAPIError as exc:
            if _sqlstate(exc) == _LOCK_NOT_AVAILABLE:
                raise self._in_progress() from None
            raise
        if previous is not None:
            await session.execute(
                text("SELECT set_config('lock_timeout', :previous, true)"),
                {"previous": previous},
            )
        return inserted

    def _in_progress(self) -> ProblemError:
        return ProblemError(
            409,
            f"another request with this {HEADER} is in progress or its answer cannot be "
            "read yet; retry after the indicated time to get its answer",
            slug="idempotency-key-in-progress",
            rule=RULE_IN_PROGRESS,
            field=HEADER,
            headers={"Retry-After": str(self.retry_after_seconds)},
        )


def _sqlstate(exc: DBAPIError) -> str | None:
    orig = exc.orig
    for attr in ("sqlstate", "pgcode"):
        value = getattr(orig, attr, None)
        if isinstance(value, str):
            return value
    return None
