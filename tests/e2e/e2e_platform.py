"""The four services as processes on one moved clock, and the clients that drive them.

:class:`Platform` starts case-, contact-, complaint- and qa-svc as separate processes
(each on a fresh PostgreSQL database, all on the session's Kafka) sharing one clock
file, so a test moves time for the whole platform (``CLOCK_FILE``). :class:`Actor`
holds the credentials of each role: the development API keys of the machine clients
and signed tokens, minted on the platform's clock, for people.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from collect_common.clock import OffsetFile, OffsetFileClock
from collect_common.security.auth import Role, TokenService
from collect_common.security.webhooks import sign
from collect_common.settings import DEV_API_KEYS, DEV_TOKEN_SECRET, DEV_WEBHOOK_SECRETS
from collect_common.testing.infra import async_url, create_database, free_port
from collect_common.testing.processes import ServiceProcess

SERVICES = ("case", "contact", "complaint", "qa")
BANK = {"X-API-Key": DEV_API_KEYS["bank-core"][1]}
DIALER = {"X-API-Key": DEV_API_KEYS["dialer"][1]}
OPS = {"X-API-Key": DEV_API_KEYS["ops-dashboard"][1]}
AUDITOR = {"X-API-Key": DEV_API_KEYS["bank-auditor"][1]}
WEBHOOK_KEY_ID, _, _WEBHOOK_SECRET = DEV_WEBHOOK_SECRETS.partition(":")
WEBHOOK_SECRET = _WEBHOOK_SECRET.encode()


def mobile(rng: random.Random) -> str:
    return f"13{rng.randrange(10)}{rng.randrange(10**8):08d}"


@dataclass
class Platform:
    """The running platform: service URLs, the shared clock and its file."""

    urls: dict[str, str]
    clock_file: Path
    procs: list[ServiceProcess]
    run: str = field(default_factory=lambda: uuid.uuid4().hex[:6])

    def __post_init__(self) -> None:
        self.offset = OffsetFile(self.clock_file)
        self.clock = OffsetFileClock(self.clock_file)
        self._tokens = TokenService(DEV_TOKEN_SECRET, "collect-platform", self.clock)

    # -- time ------------------------------------------------------------------------------
    def now(self) -> datetime:
        return self.clock.now()

    def move_to(self, instant: datetime) -> datetime:
        """Every process's clock reads ``instant`` from now on (never moved backwards)."""
        if instant > self.now():
            self.offset.write((instant - datetime.now(UTC)).total_seconds())
        return self.now()

    def advance(self, delta: timedelta) -> datetime:
        return self.move_to(self.now() + delta)

    # -- credentials --------------------------------------------------------------------------
    def person(self, subject: str, role: Role) -> dict[str, str]:
        """A person's headers: a token signed now, on the platform's clock."""
        return {"Authorization": f"Bearer {self._tokens.issue(subject, [role])}"}

    def signed_call(self, payload: Mapping[str, Any]) -> tuple[bytes, dict[str, str]]:
        """A dialer webhook body and its HMAC headers, timestamped on the platform's clock."""
        raw = json.dumps(payload).encode()
        headers = sign(
            WEBHOOK_SECRET,
            int(self.now().timestamp()),
            str(payload["delivery_id"]),
            raw,
            key_id=WEBHOOK_KEY_ID,
        )
        return raw, {**headers, **DIALER, "Content-Type": "application/json"}

    def log_tails(self) -> str:
        return "\n\n".join(f"== {p.name}-svc\n{p.log_tail(30)}" for p in self.procs)


def start_platform(
    postgres_server: str, kafka_bootstrap: str, workdir: Path, start_at: datetime
) -> Platform:
    clock_file = workdir / "platform-clock"
    OffsetFile(clock_file).write((start_at - datetime.now(UTC)).total_seconds())
    procs = []
    urls = {}
    for name in SERVICES:
        db = f"e2e_{name}_{uuid.uuid4().hex[:8]}"
        create_database(postgres_server, db)
        env = {
            "DATABASE_URL": async_url(postgres_server.rsplit("/", 1)[0] + "/" + db),
            "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
            "ENVIRONMENT": "test",
            "CLOCK_FILE": str(clock_file),
            "SCHEDULER_POLL_SECONDS": "0.2",
            "LOG_JSON": "false",
        }
        proc = ServiceProcess(name, free_port(), env, workdir)
        procs.append(proc)
        urls[name] = proc.url
    platform = Platform(urls=urls, clock_file=clock_file, procs=procs)
    try:
        for p in procs:
            p.start()
    except BaseException:
        stop_platform(platform)
        raise
    return platform


def stop_platform(platform: Platform) -> list[int | None]:
    return [p.stop() for p in platform.procs]


def client(platform: Platform, service: str, **kwargs: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=platform.urls[service], timeout=30, **kwargs)
