"""Authentication and role checks for FastAPI routes (SEC-ACCESS).

Machine clients (the bank's core system, the dialer) send an API key in
``X-API-Key``; people (agents, complaint handlers, QA staff) send a signed token
as ``Authorization: Bearer <token>``. Every route declares the roles it admits
with :func:`require_roles` (or :data:`PUBLIC` for the few open ones), and the app
factory refuses to build an app with a route that declares neither.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from collect_common.security.auth import (
    ApiKeyRegistry,
    AuthenticationError,
    Principal,
    Role,
    TokenService,
)
from collect_common.web.problems import ProblemError

ROLES_ATTR = "__collect_roles__"
PUBLIC_ATTR = "__collect_public__"


class Authenticator:
    def __init__(self, api_keys: ApiKeyRegistry, tokens: TokenService) -> None:
        self.api_keys = api_keys
        self.tokens = tokens

    def authenticate(self, request: Request) -> Principal:
        key = request.headers.get("x-api-key")
        if key:
            principal = self.api_keys.authenticate(key)
            if principal is None:
                raise _unauthenticated("unknown API key")
            return principal
        header = request.headers.get("authorization", "")
        scheme, _, credentials = header.partition(" ")
        if scheme.lower() == "bearer" and credentials:
            try:
                return self.tokens.verify(credentials.strip())
            except AuthenticationError as exc:
                raise _unauthenticated(str(exc)) from None
        raise _unauthenticated("no credentials: send X-API-Key or Authorization: Bearer")


def _unauthenticated(detail: str) -> ProblemError:
    return ProblemError(
        401,
        detail,
        rule="SEC-ACCESS",
        slug="unauthenticated",
        headers={"WWW-Authenticate": 'Bearer realm="collect"'},
    )


def require_roles(*roles: Role | str) -> Any:
    """A dependency admitting only callers with one of ``roles``; yields the Principal."""
    wanted = frozenset(Role(r) for r in roles)
    if not wanted:
        raise ValueError("a route must admit at least one role")

    async def _check(request: Request) -> Principal:
        auth: Authenticator = request.app.state.authenticator
        principal = auth.authenticate(request)
        if not principal.has_any(wanted):
            raise ProblemError(
                403,
                f"this operation admits roles {sorted(r.value for r in wanted)}",
                rule="SEC-ACCESS",
                slug="forbidden",
            )
        request.state.principal = principal
        return principal

    setattr(_check, ROLES_ATTR, wanted)
    return Depends(_check)


async def _public() -> None:
    return None


setattr(_public, PUBLIC_ATTR, True)
PUBLIC = Depends(_public)
"""Declares a route open to anyone (health checks, the complaint portal form)."""


def principal_of(*roles: Role | str) -> Any:
    """``Annotated`` alias helper: ``caller: principal_of(Role.BANK)``."""
    return Annotated[Principal, require_roles(*roles)]


def _walk(dependant: Dependant) -> Iterable[Callable[..., Any]]:
    for sub in dependant.dependencies:
        if sub.call is not None:
            yield sub.call
        yield from _walk(sub)


def route_roles(route: APIRoute, inherited: Iterable[Any] = ()) -> frozenset[Role] | None:
    """The roles a route admits; an empty set for a public route; None if undeclared."""
    calls = [*(getattr(d, "dependency", None) for d in inherited), *_walk(route.dependant)]
    roles: set[Role] = set()
    public = False
    for call in calls:
        roles |= getattr(call, ROLES_ATTR, frozenset())
        public = public or bool(getattr(call, PUBLIC_ATTR, False))
    if roles:
        return frozenset(roles)
    return frozenset() if public else None


def iter_api_routes(
    routes: Iterable[Any], inherited: tuple[Any, ...] = ()
) -> Iterable[tuple[APIRoute, tuple[Any, ...]]]:
    """Every APIRoute below ``routes``, with the dependencies added where it was included.

    Recent FastAPI keeps an included router as one node (``original_router`` plus an
    include context) instead of copying its routes, so the walk goes into it.
    """
    for route in routes:
        if isinstance(route, APIRoute):
            yield route, inherited
            continue
        original = getattr(route, "original_router", None)
        if original is not None:
            context = getattr(route, "include_context", None)
            extra = tuple(getattr(context, "dependencies", None) or ())
            yield from iter_api_routes(original.routes, inherited + extra)


def assert_every_route_declares_roles(app: FastAPI) -> None:
    missing = [
        f"{sorted(r.methods or [])} {r.path}"
        for r, inherited in iter_api_routes(app.router.routes)
        if route_roles(r, inherited) is None
    ]
    if missing:
        raise RuntimeError(f"routes that declare no roles (SEC-ACCESS): {missing}")
