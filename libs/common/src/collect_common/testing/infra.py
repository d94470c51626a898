"""Kafka and PostgreSQL for tests, benchmarks and ``make run``.

Where the infrastructure comes from (ARCHITECTURE.md, "Tests"):

1. ``KAFKA_BOOTSTRAP_SERVERS`` / ``DATABASE_URL`` when set. They are used as given and
   never replaced by something else: if they do not answer, that is an error.
2. Otherwise testcontainers, when a Docker engine answers.
3. Otherwise a local single-node broker (``deploy/kafka/kafka.sh``) and a throwaway
   PostgreSQL cluster (``deploy/postgres/pgcluster.sh``) on free ports in temp dirs.

If none of them works, :class:`InfrastructureUnavailable` says why. Every broker, cluster
and container started here is stopped when its context ends and, failing that, at
interpreter exit; the scripts also stop their process when this Python process dies.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

from sqlalchemy.engine import URL, make_url

from collect_common.bus.topics import TopicSpec, create_topics, platform_topics

__all__ = [
    "InfrastructureUnavailable",
    "KafkaEndpoint",
    "LocalKafka",
    "LocalPostgres",
    "PostgresEndpoint",
    "async_url",
    "check_postgres",
    "ci",
    "create_database",
    "database_url",
    "docker_available",
    "drop_database",
    "ensure_platform_topics",
    "ensure_topics",
    "free_port",
    "repo_root",
    "resolve_kafka",
    "resolve_postgres",
    "run_sync",
    "sync_url",
]

Kind = Literal["env", "docker", "local"]
T = TypeVar("T")

KAFKA_IMAGE = os.environ.get("COLLECT_KAFKA_IMAGE", "confluentinc/cp-kafka:7.6.0")
POSTGRES_IMAGE = os.environ.get("COLLECT_POSTGRES_IMAGE", "postgres:16-alpine")


class InfrastructureUnavailable(RuntimeError):
    """Kafka or PostgreSQL could not be had (from the environment, Docker, or locally)."""


@dataclass(frozen=True)
class KafkaEndpoint:
    bootstrap: str
    kind: Kind


@dataclass(frozen=True)
class PostgresEndpoint:
    url: str
    """Server URL, sync style (``postgresql://...``); see :func:`async_url`."""
    kind: Kind


# --- small helpers ---------------------------------------------------------------------------


def ci() -> bool:
    """True when running in CI (``CI`` set to a truthy value): missing infrastructure fails."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no", "off")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def repo_root() -> Path:
    """The monorepo root: ``COLLECT_REPO_ROOT``, else the ancestor holding deploy/kafka/kafka.sh."""
    env = os.environ.get("COLLECT_REPO_ROOT")
    if env:
        return Path(env).resolve()
    for parent in Path(__file__).resolve().parents:
        if (parent / "deploy" / "kafka" / "kafka.sh").is_file():
            return parent
    raise InfrastructureUnavailable(
        "cannot find the repository (deploy/kafka/kafka.sh) above "
        f"{Path(__file__).resolve()}; set COLLECT_REPO_ROOT"
    )


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion from sync code, also when an event loop is running here
    (then in a fresh loop on a worker thread, e.g. ``broker.start()`` inside an async test)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


def docker_available() -> bool:
    """Whether a Docker engine answers a ping within 2 s."""
    host = os.environ.get("DOCKER_HOST", "")
    socket_path = Path(host.removeprefix("unix://") or "/var/run/docker.sock")
    if (not host or host.startswith("unix://")) and not socket_path.exists():
        return False  # no socket, no engine (and the SDK would leak its half-opened socket)
    try:
        import docker

        client = docker.from_env(timeout=2)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:
        return False


def _exc_text(exc: BaseException) -> str:
    """``Type: message``, without repeating the type when the message already names it."""
    name = type(exc).__name__
    text = str(exc).strip()
    if not text:
        return name
    return text if text.startswith(name) else f"{name}: {text}"


def _tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


# --- PostgreSQL URLs and databases -----------------------------------------------------------

_PG_SCHEMES = ("postgresql", "postgres")


def _pg_url(url: str) -> URL:
    parsed = make_url(url)
    if parsed.drivername.split("+", 1)[0] not in _PG_SCHEMES:
        raise ValueError(f"not a PostgreSQL URL: {parsed.render_as_string()}")
    return parsed


def sync_url(url: str) -> str:
    """``postgresql://...`` (libpq/psycopg2 style) for any PostgreSQL URL."""
    return _pg_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def async_url(url: str) -> str:
    """``postgresql+asyncpg://...`` for any PostgreSQL URL."""
    return _pg_url(url).set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)


def database_url(server_url: str, name: str) -> str:
    """The sync URL of database ``name`` on the server of ``server_url``."""
    return (
        _pg_url(server_url)
        .set(drivername="postgresql", database=name)
        .render_as_string(hide_password=False)
    )


_DB_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def _connect(url: str, timeout: float) -> Any:
    import psycopg2

    conn = psycopg2.connect(sync_url(url), connect_timeout=max(1, int(timeout)))
    conn.autocommit = True
    return conn


def create_database(server_url: str, name: str, *, timeout: float = 10.0) -> str:
    """Create database ``name`` (lower-case identifier) and return its sync URL."""
    from psycopg2 import sql

    if not _DB_NAME.match(name):
        raise ValueError(f"bad database name: {name!r}")
    conn = _connect(server_url, timeout)
    try:
        with conn.cursor() as cur:
            cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    finally:
        conn.close()
    return database_url(server_url, name)


def drop_database(server_url: str, name: str, *, force: bool = True, timeout: float = 10.0) -> None:
    """Drop database ``name`` if it exists; ``force`` ends the sessions still connected."""
    from psycopg2 import sql

    if not _DB_NAME.match(name):
        raise ValueError(f"bad database name: {name!r}")
    conn = _connect(server_url, timeout)
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW server_version_num")
            version = int(cur.fetchone()[0])
            ident = sql.Identifier(name)
            if force and version >= 130000:
                cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))
                return
            if force:
                cur.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = %s AND pid <> pg_backend_pid()",
                    (name,),
                )
            cur.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(ident))
    finally:
        conn.close()


def check_postgres(url: str, *, timeout: float = 10.0) -> None:
    """Raise :class:`InfrastructureUnavailable` unless ``url`` accepts a query in time."""
    try:
        conn = _connect(url, timeout)
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT 1")
        finally:
            conn.close()
    except Exception as exc:
        raise InfrastructureUnavailable(
            f"PostgreSQL at {_redact(url)} does not answer: {exc}".strip()
        ) from exc


def _redact(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparseable URL>"


# --- Kafka topics ----------------------------------------------------------------------------


async def ensure_topics(
    bootstrap: str, specs: list[TopicSpec] | None = None, *, timeout: float = 30.0
) -> list[str]:
    """Create the missing topics (default: the platform's) and wait until every partition
    has a leader. Returns the names created."""
    from aiokafka.admin import AIOKafkaAdminClient

    specs = specs if specs is not None else platform_topics()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    created = await asyncio.wait_for(create_topics(bootstrap, specs), timeout)
    wanted = {s.name: s.partitions for s in specs}
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10000)
    try:
        await asyncio.wait_for(admin.start(), max(deadline - loop.time(), 1.0))
        while True:
            described = await admin.describe_topics(list(wanted))
            ready = {
                t["topic"]
                for t in described
                if t["error_code"] == 0
                and len(t["partitions"]) >= wanted.get(t["topic"], 1)
                and all(p["leader"] >= 0 for p in t["partitions"])
            }
            if ready >= set(wanted):
                return created
            if loop.time() > deadline:
                missing = sorted(set(wanted) - ready)
                raise TimeoutError(f"topics without leaders after {timeout}s: {missing}")
            await asyncio.sleep(0.05)
    finally:
        with contextlib.suppress(Exception):
            await admin.close()


def ensure_platform_topics(bootstrap: str, *, timeout: float = 30.0) -> None:
    """Sync :func:`ensure_topics` for the platform topics; InfrastructureUnavailable on failure."""
    try:
        run_sync(ensure_topics(bootstrap, timeout=timeout))
    except Exception as exc:
        raise InfrastructureUnavailable(
            f"Kafka at {bootstrap}: cannot create the platform topics: {_exc_text(exc)}"
        ) from exc


# --- local processes -------------------------------------------------------------------------

_live: set[_LocalService] = set()
_live_lock = threading.Lock()


@atexit.register
def _close_all() -> None:
    with _live_lock:
        services = list(_live)
    for service in services:
        with contextlib.suppress(Exception):
            service.close()


class _LocalService(ABC):
    """A process driven by one of the deploy/ scripts, in a data dir we may own."""

    name = "service"

    def __init__(self, port: int | None, data_dir: str | Path | None, prefix: str) -> None:
        self.port = port if port is not None else free_port()
        self._owns_dir = data_dir is None
        self.data_dir = (
            Path(tempfile.mkdtemp(prefix=prefix)) if data_dir is None else Path(data_dir).resolve()
        )
        self._closed = False

    def _run(self, script: Path, args: list[str], timeout: float, env: dict[str, str]) -> str:
        if not script.is_file():
            raise InfrastructureUnavailable(f"{script} is missing")
        full_env = {**os.environ, **env}
        try:
            done = subprocess.run(
                ["bash", str(script), *args],
                capture_output=True,
                text=True,
                timeout=timeout,
                env=full_env,
                stdin=subprocess.DEVNULL,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise InfrastructureUnavailable(
                f"{self.name}: `{script.name} {' '.join(args)}` took more than {timeout:.0f}s"
            ) from exc
        if done.returncode != 0:
            raise InfrastructureUnavailable(
                f"{self.name}: `{script.name} {' '.join(args)}` failed "
                f"(exit {done.returncode}):\n{_tail(done.stderr + done.stdout)}"
            )
        return done.stderr

    def _register(self) -> None:
        with _live_lock:
            _live.add(self)

    @abstractmethod
    def stop(self) -> None: ...

    def close(self) -> None:
        """Stop, and delete the data dir when it is a temp dir made here. Idempotent."""
        if self._closed:
            return
        try:
            self.stop()
        finally:
            self._closed = True
            with _live_lock:
                _live.discard(self)
            if self._owns_dir:
                shutil.rmtree(self.data_dir, ignore_errors=True)

    async def astart(self) -> None:
        await asyncio.to_thread(self.start)

    async def astop(self) -> None:
        await asyncio.to_thread(self.stop)

    @abstractmethod
    def start(self) -> None: ...


class LocalKafka(_LocalService):
    """A single-node KRaft broker on 127.0.0.1 (``deploy/kafka/kafka.sh``).

    ``stop()`` / ``start()`` keep the data dir, so topics and messages survive a restart;
    the broker comes back on the same port. ``start()`` also creates the platform topics.
    """

    name = "local Kafka"

    def __init__(
        self,
        port: int | None = None,
        data_dir: str | Path | None = None,
        *,
        controller_port: int | None = None,
        platform_topics: bool = True,
        start_timeout: float = 90.0,
    ) -> None:
        super().__init__(port, data_dir, "collect-kafka-")
        # In a temp dir: a free port. In a given data dir: left to kafka.sh (the port used
        # there last time, else port+1, else a free one), so it stays stable across runs.
        self.controller_port = controller_port
        if controller_port is None and self._owns_dir:
            self.controller_port = free_port()
            while self.controller_port == self.port:
                self.controller_port = free_port()
        self.platform_topics = platform_topics
        self.start_timeout = start_timeout
        self.kind: Kind = "local"

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _kafka(self, *args: str, timeout: float) -> str:
        env = {"KAFKA_WATCH_PID": str(os.getpid()), "PYTHON": sys.executable}
        return self._run(repo_root() / "deploy" / "kafka" / "kafka.sh", list(args), timeout, env)

    def start(self) -> None:
        if self._closed:
            raise RuntimeError("this LocalKafka is closed")
        self._kafka("fetch", timeout=900)
        self._register()
        args = ["--port", str(self.port), "--data-dir", str(self.data_dir)]
        if self.controller_port is not None:
            args += ["--controller-port", str(self.controller_port)]
        args += ["--timeout", str(int(self.start_timeout)), "--no-topics"]
        self._kafka("start", *args, timeout=self.start_timeout + 60)
        if self.platform_topics:
            try:
                ensure_platform_topics(self.bootstrap)
            except InfrastructureUnavailable:
                self.stop()
                raise

    def stop(self) -> None:
        if self.data_dir.exists():
            self._kafka("stop", "--data-dir", str(self.data_dir), timeout=90)

    def is_running(self) -> bool:
        try:
            self._kafka("status", "--data-dir", str(self.data_dir), timeout=30)
        except InfrastructureUnavailable:
            return False
        return True

    def __enter__(self) -> LocalKafka:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class LocalPostgres(_LocalService):
    """A throwaway PostgreSQL cluster on 127.0.0.1 (``deploy/postgres/pgcluster.sh``):
    trust auth, user ``postgres``, no durability (fsync off).

    As root the server runs as the ``postgres`` user, so a ``data_dir`` you pass must be
    reachable by that user (not below a root-only directory such as pytest's tmp_path).
    """

    name = "local PostgreSQL"

    def __init__(
        self,
        port: int | None = None,
        data_dir: str | Path | None = None,
        *,
        start_timeout: float = 60.0,
    ) -> None:
        super().__init__(port, data_dir, "collect-pg-")
        self.start_timeout = start_timeout
        self.kind: Kind = "local"

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _pg(self, *args: str, timeout: float) -> str:
        env = {"PG_WATCH_PID": str(os.getpid()), "PG_START_TIMEOUT": str(int(self.start_timeout))}
        script = repo_root() / "deploy" / "postgres" / "pgcluster.sh"
        return self._run(script, list(args), timeout, env)

    def start(self) -> None:
        if self._closed:
            raise RuntimeError("this LocalPostgres is closed")
        self._register()
        self._pg("start", str(self.data_dir), str(self.port), timeout=self.start_timeout + 60)

    def stop(self) -> None:
        if self.data_dir.exists():
            self._pg("stop", str(self.data_dir), timeout=90)

    def __enter__(self) -> LocalPostgres:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --- resolution ------------------------------------------------------------------------------


def _describe(exc: BaseException) -> str:
    if isinstance(exc, InfrastructureUnavailable):
        return str(exc).strip() or type(exc).__name__
    return _exc_text(exc)


def _kafka_from_docker(stack: contextlib.ExitStack, timeout: float) -> KafkaEndpoint:
    try:
        from testcontainers.community.kafka import KafkaContainer
    except ImportError:  # testcontainers < 4.15
        from testcontainers.kafka import KafkaContainer

    with contextlib.ExitStack() as attempt:
        container = KafkaContainer(KAFKA_IMAGE).with_kraft()
        container.start()
        attempt.callback(container.stop)
        bootstrap = str(container.get_bootstrap_server())
        ensure_platform_topics(bootstrap, timeout=timeout)
        stack.push(attempt.pop_all())
        return KafkaEndpoint(bootstrap, "docker")


def _kafka_local(stack: contextlib.ExitStack) -> KafkaEndpoint:
    broker = LocalKafka()
    try:
        broker.start()
    except BaseException:
        broker.close()
        raise
    stack.callback(broker.close)
    return KafkaEndpoint(broker.bootstrap, "local")


_E = TypeVar("_E")


def _first_available(
    stack: contextlib.ExitStack,
    missing: str,
    *,
    docker: Callable[[], _E],
    local: tuple[str, Callable[[], _E]],
) -> _E:
    """Containers when a Docker engine answers, else the local process; or say why neither."""
    errors: list[str] = []
    if docker_available():
        try:
            return docker()
        except Exception as exc:
            errors.append(f"docker: {_describe(exc)}")
    else:
        errors.append("docker: no Docker engine answers")
    label, start = local
    try:
        return start()
    except Exception as exc:
        errors.append(f"{label}: {_describe(exc)}")
    raise InfrastructureUnavailable(missing + "; " + "; ".join(errors))


@contextlib.contextmanager
def resolve_kafka(*, timeout: float = 30.0) -> Iterator[KafkaEndpoint]:
    """A Kafka broker with the platform topics, for as long as the context lasts."""
    env = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "").strip()
    if env:
        try:
            ensure_platform_topics(env, timeout=timeout)
        except InfrastructureUnavailable as exc:
            raise InfrastructureUnavailable(
                f"KAFKA_BOOTSTRAP_SERVERS={env} is set but not usable: {exc}"
            ) from exc
        yield KafkaEndpoint(env, "env")
        return
    with contextlib.ExitStack() as stack:
        yield _first_available(
            stack,
            "no Kafka broker: KAFKA_BOOTSTRAP_SERVERS is not set",
            docker=lambda: _kafka_from_docker(stack, timeout=max(timeout, 60.0)),
            local=("local broker", lambda: _kafka_local(stack)),
        )


def _postgres_from_docker(stack: contextlib.ExitStack, timeout: float) -> PostgresEndpoint:
    try:
        from testcontainers.community.postgres import PostgresContainer
    except ImportError:  # testcontainers < 4.15
        from testcontainers.postgres import PostgresContainer

    with contextlib.ExitStack() as attempt:
        container = PostgresContainer(
            POSTGRES_IMAGE,
            username="postgres",
            password="postgres",  # noqa: S106 throwaway
            dbname="postgres",
            driver=None,
        )
        container.start()
        attempt.callback(container.stop)
        url = sync_url(str(container.get_connection_url()))
        check_postgres(url, timeout=timeout)
        stack.push(attempt.pop_all())
        return PostgresEndpoint(url, "docker")


def _postgres_local(stack: contextlib.ExitStack, timeout: float) -> PostgresEndpoint:
    cluster = LocalPostgres()
    try:
        cluster.start()
        check_postgres(cluster.url, timeout=timeout)
    except BaseException:
        cluster.close()
        raise
    stack.callback(cluster.close)
    return PostgresEndpoint(cluster.url, "local")


@contextlib.contextmanager
def resolve_postgres(*, timeout: float = 10.0) -> Iterator[PostgresEndpoint]:
    """A PostgreSQL server (its ``.url`` is sync style), for as long as the context lasts."""
    env = os.environ.get("DATABASE_URL", "").strip()
    if env:
        try:
            url = sync_url(env)
        except Exception as exc:
            raise InfrastructureUnavailable(f"DATABASE_URL is not a PostgreSQL URL: {exc}") from exc
        try:
            check_postgres(url, timeout=timeout)
        except InfrastructureUnavailable as exc:
            raise InfrastructureUnavailable(f"DATABASE_URL is set but not usable: {exc}") from exc
        yield PostgresEndpoint(url, "env")
        return
    with contextlib.ExitStack() as stack:
        yield _first_available(
            stack,
            "no PostgreSQL: DATABASE_URL is not set",
            docker=lambda: _postgres_from_docker(stack, timeout=max(timeout, 30.0)),
            local=("local cluster", lambda: _postgres_local(stack, timeout)),
        )
