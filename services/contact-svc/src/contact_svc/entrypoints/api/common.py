"""What the template, letter, visit and hold routers share: their dependencies, the
idempotent POST, the template models, and the problems a contact-policy denial, a move
the current state does not allow and an unknown case are answered with."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Protocol, Self

from fastapi import Depends, Path, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from collect_common.db import UnitOfWork
from collect_common.security.auth import Principal
from collect_common.web.idempotency import IdempotencyKeyHeader, IdempotencyKeys
from collect_common.web.problems import PROBLEM_JSON, ProblemError, problem_response
from contact_svc.service_layer.decisions import (
    ContactContext,
    DecisionOutcome,
    UnknownCase,
    UnknownDebtor,
)
from contact_svc.service_layer.templates import TemplateVersion

ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"content": {PROBLEM_JSON: {}}} for code in (404, 409, 422)
}
MAX_VERSION = 2**31 - 1  # the versions are stored as 32-bit integers
VersionPath = Annotated[int, Path(ge=1, le=MAX_VERSION, description="The template version, from 1")]


def _context(request: Request) -> ContactContext:
    ctx: ContactContext = request.app.state.contact_context
    return ctx


def _keys(request: Request) -> IdempotencyKeys:
    keys: IdempotencyKeys = request.app.state.idempotency_keys
    return keys


ContextDep = Annotated[ContactContext, Depends(_context)]
IdempotencyDep = Annotated[IdempotencyKeys, Depends(_keys)]


@dataclass(frozen=True)
class Post:
    """What an idempotent POST runs with: the request, the context, the request's
    ``Idempotency-Key`` and where answers are kept for it."""

    request: Request
    ctx: ContactContext
    keys: IdempotencyKeys
    key: str | None

    def now(self) -> datetime:
        now: datetime = self.request.app.state.runtime.clock.now()
        return now

    async def run(
        self, principal: Principal, work: Callable[[UnitOfWork], Awaitable[Response]]
    ) -> Response:
        """Run ``work`` in one unit of work under the request's ``Idempotency-Key``: its
        answer (a success or a business refusal returned as a response) commits with the
        work, and a retry with the same key gets it again. A raised problem rolls
        everything back."""
        async with self.ctx.uow_factory() as uow:
            replay = await self.keys.begin(uow, self.request, principal, self.key)
            if replay is not None:
                return replay
            response = await work(uow)
            await self.keys.record(uow, response)
            await uow.commit()
        return response


def _post(
    request: Request, ctx: ContextDep, keys: IdempotencyDep, key: IdempotencyKeyHeader
) -> Post:
    return Post(request, ctx, keys, key)


PostDep = Annotated[Post, Depends(_post)]


class TemplateFields(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    bank_id: str = Field(min_length=1, max_length=64)


class TemplateOutFields(BaseModel):
    # Each channel's model adds the bank's number under its own name (``number_field``)
    # and ``approved_at``.
    number_field: ClassVar[str]

    template_id: str
    bank_id: str
    name: str
    version: int
    body: str
    status: str = Field(examples=["pending", "approved"])

    @classmethod
    def of(cls, t: TemplateVersion) -> Self:
        data = asdict(t)
        data[cls.number_field] = data.pop("number")
        return cls.model_validate(data)


def json_response(model: BaseModel, status_code: int = 200) -> JSONResponse:
    return JSONResponse(model.model_dump(mode="json"), status_code=status_code)


def _instant(at: datetime | None) -> str | None:
    """An instant as the models write it (UTC, ``Z``)."""
    return None if at is None else at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def denied(request: Request, outcome: DecisionOutcome, what: str) -> JSONResponse:
    """409 naming the rules the contact-policy engine denied ``what`` with, the recorded
    decision and when it would next be allowed (null: only a change of state can)."""
    d = outcome.decision
    return problem_response(
        request,
        409,
        title="Contact denied",
        detail=f"the contact policy denies {what}: "
        + "; ".join(f"{x.rule}: {x.reason}" for x in d.denials),
        slug="contact-denied",
        rule=d.rules[0],
        rules=d.rules,
        denials=[{"rule": x.rule, "reason": x.reason} for x in d.denials],
        decision_id=outcome.decision_id,
        next_allowed_at=_instant(d.next_allowed_at),
    )


class StateError(Protocol):
    current: str


def state_conflict(
    exc: StateError, rule: str, slug: str, field: str | None = "status"
) -> ProblemError:
    """409: the move the current state does not allow, naming that state."""
    return ProblemError(409, str(exc), rule=rule, field=field, slug=slug, current_state=exc.current)


@contextmanager
def unknown_case_as_404(case_id: str | None, debtor_id: str | None = None) -> Iterator[None]:
    try:
        yield
    except UnknownCase:
        raise ProblemError(404, f"no case {case_id}", field="case_id") from None
    except UnknownDebtor:
        if case_id is not None:
            raise ProblemError(404, f"no case {case_id}", field="case_id") from None
        raise ProblemError(404, f"no debtor {debtor_id}", field="debtor_id") from None
