"""Request bodies read up to a limit (413 beyond, rule COMP-CHANNELS)."""

from __future__ import annotations

from fastapi import Request

from collect_common.web.problems import ProblemError


async def bounded_body(request: Request, limit: int, what: str = "the form") -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large(limit, what)
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > limit:
            raise too_large(limit, what)
    return bytes(body)


def too_large(limit: int, what: str = "the form") -> ProblemError:
    return ProblemError(413, f"{what} may be at most {limit} bytes", rule="COMP-CHANNELS")
