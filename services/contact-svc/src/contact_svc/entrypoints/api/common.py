"""What the letter, visit and hold routers share: their dependencies, the idempotent POST,
and the problem a contact-policy denial is answered with."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from collect_common.db import UnitOfWork
from collect_common.security.auth import Principal
from collect_common.web.idempotency import IdempotencyKeys
from collect_common.web.problems import PROBLEM_JSON, ProblemError, problem_response
from contact_svc.service_layer.decisions import (
    ContactContext,
    DecisionOutcome,
    UnknownCase,
    UnknownDebtor,
)

ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"content": {PROBLEM_JSON: {}}} for code in (404, 409, 422)
}


def _context(request: Request) -> ContactContext:
    ctx: ContactContext = request.app.state.contact_context
    return ctx


def _keys(request: Request) -> IdempotencyKeys:
    keys: IdempotencyKeys = request.app.state.idempotency_keys
    return keys


ContextDep = Annotated[ContactContext, Depends(_context)]
IdempotencyDep = Annotated[IdempotencyKeys, Depends(_keys)]


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


async def idempotent(
    request: Request,
    ctx: ContactContext,
    keys: IdempotencyKeys,
    principal: Principal,
    key: str | None,
    work: Callable[[UnitOfWork], Awaitable[Response]],
) -> Response:
    """Run ``work`` in one unit of work under the request's ``Idempotency-Key``: its answer
    (a success or a business refusal returned as a response) commits with the work, and a
    retry with the same key gets it again. A raised problem rolls everything back."""
    async with ctx.uow_factory() as uow:
        replay = await keys.begin(uow, request, principal, key)
        if replay is not None:
            return replay
        response = await work(uow)
        await keys.record(uow, response)
        await uow.commit()
    return response


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
