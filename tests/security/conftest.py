"""The four services in-process, each on a PostgreSQL database of its own, and callers."""

from __future__ import annotations

import importlib
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI

from collect_common.clock import FrozenClock
from collect_common.security.auth import Role, TokenService
from collect_common.settings import DEV_API_KEYS, DEV_TOKEN_SECRET
from collect_common.testing.apps import offline_settings, service_client
from collect_common.testing.infra import async_url, create_database, drop_database
from collect_common.web.problems import PROBLEM_JSON

SERVICES = ["case", "contact", "complaint", "qa"]
NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
API_KEY_OF = {roles: key for roles, key in DEV_API_KEYS.values()}
PERSON_ROLES = (Role.AGENT, Role.COMPLAINT, Role.QA)


def app_of(client: httpx.AsyncClient) -> FastAPI:
    app: FastAPI = client.app  # type: ignore[attr-defined]
    return app


def credentials(client: httpx.AsyncClient) -> dict[str, dict[str, str]]:
    """Headers per caller: one per role (API keys for machines, tokens for people), none,
    an unknown API key and a token signed with another secret."""
    runtime = app_of(client).state.runtime
    issuer, clock = runtime.settings.token_issuer, runtime.clock
    tokens = TokenService(DEV_TOKEN_SECRET, issuer, clock)
    forged = TokenService("not-the-platform-secret-" + "x" * 32, issuer, clock)
    out: dict[str, dict[str, str]] = {}
    for role in Role:
        if role in PERSON_ROLES:
            out[role.value] = {"Authorization": f"Bearer {tokens.issue(f'sec-{role}', [role])}"}
        else:
            out[role.value] = {"X-API-Key": API_KEY_OF[role.value]}
    out["anonymous"] = {}
    out["unknown-key"] = {"X-API-Key": "ck_00000000_" + "z" * 43}
    out["forged-token"] = {"Authorization": f"Bearer {forged.issue('sec-ops', [Role.OPS])}"}
    return out


def is_problem(response: httpx.Response) -> bool:
    """``application/problem+json`` whose ``status`` is the response's."""
    if response.headers.get("content-type", "").split(";")[0] != PROBLEM_JSON:
        return False
    body = response.json()
    return isinstance(body, dict) and body.get("status") == response.status_code


@asynccontextmanager
async def running_services(
    postgres_server: str, directory: Path
) -> AsyncIterator[dict[str, httpx.AsyncClient]]:
    """name -> a client of that service's app (``client.app``), each on its own database."""
    clock = FrozenClock(NOW)
    clients: dict[str, httpx.AsyncClient] = {}
    databases = []
    try:
        async with AsyncExitStack() as stack:
            for name in SERVICES:
                database = f"sec_{name}_{uuid.uuid4().hex[:12]}"
                url = async_url(create_database(postgres_server, database))
                databases.append(database)
                settings_mod = importlib.import_module(f"{name}_svc.settings")
                main = importlib.import_module(f"{name}_svc.main")
                overrides: dict[str, Any] = {}
                if name == "contact":
                    overrides["sms_file_path"] = directory / "sms.jsonl"
                settings = offline_settings(settings_mod.Settings, url, **overrides)
                context = service_client(main.create_app, settings, clock)
                clients[name] = await stack.enter_async_context(context)
            yield clients
    finally:
        for database in databases:
            drop_database(postgres_server, database, force=True)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def security_apps(
    postgres_server: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[dict[str, httpx.AsyncClient]]:
    """The four apps, shared by the tests of a module (their tests use ids of their own);
    tests using it run on the module's event loop (``pytest.mark.asyncio(loop_scope=...)``)."""
    async with running_services(postgres_server, tmp_path_factory.mktemp("security")) as apps:
        yield apps
