"""The idempotent POST of the ticket and corrective-action routers: the work and its answer
commit together under the request's ``Idempotency-Key``, and a retry with the same key
gets that answer again."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request, Response

from collect_common.db import UnitOfWork
from collect_common.runtime import ServiceRuntime
from collect_common.security.auth import Principal
from collect_common.web.idempotency import IdempotencyKeyHeader, IdempotencyKeys
from complaint_svc.entrypoints.api.deps import IdempotencyDep, RuntimeDep


@dataclass(frozen=True)
class Post:
    request: Request
    runtime: ServiceRuntime
    keys: IdempotencyKeys
    key: str | None

    async def run(
        self, principal: Principal, work: Callable[[UnitOfWork], Awaitable[Response]]
    ) -> Response:
        """``work``'s answer, or the first answer to this key (a raised problem rolls
        everything back and records nothing)."""
        async with self.runtime.uow() as uow:
            replay = await self.keys.begin(uow, self.request, principal, self.key)
            if replay is not None:
                return replay
            response = await work(uow)
            await self.keys.record(uow, response)
            await uow.commit()
        return response


def _post(
    request: Request, runtime: RuntimeDep, keys: IdempotencyDep, key: IdempotencyKeyHeader
) -> Post:
    return Post(request, runtime, keys, key)


PostDep = Annotated[Post, Depends(_post)]
