"""The test-infrastructure harness: restartable broker, per-test databases, failure modes."""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Iterator
from typing import ClassVar

import asyncpg  # type: ignore[import-untyped]
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import TopicPartition

from collect_common.bus.topics import TopicSpec, platform_topics
from collect_common.testing import infra
from collect_common.testing.infra import (
    InfrastructureUnavailable,
    LocalKafka,
    async_url,
    ci,
    create_database,
    drop_database,
    ensure_topics,
    free_port,
    resolve_kafka,
    resolve_postgres,
    sync_url,
)
from collect_common.testing.pytest_plugin import MakeTopic

pytest_plugins = ["pytester"]


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts TCP connections and never answers: a hung server."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        yield server.getsockname()[1]


@pytest.fixture
def no_docker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(infra, "docker_available", lambda: False)


# --- Kafka -----------------------------------------------------------------------------------


async def test_restartable_kafka_keeps_messages_across_stop_and_start(
    restartable_kafka: LocalKafka,
) -> None:
    broker = restartable_kafka
    topic = "harness.restart"
    await ensure_topics(broker.bootstrap, [TopicSpec(topic, 2)])
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, acks="all")
    await producer.start()
    try:
        sent = await producer.send_and_wait(topic, b"survives a restart", key=b"debtor-1")
    finally:
        await producer.stop()
    bootstrap = broker.bootstrap

    broker.stop()
    assert not _port_open(broker.port)
    assert not broker.is_running()
    broker.start()

    assert broker.bootstrap == bootstrap
    consumer = AIOKafkaConsumer(
        bootstrap_servers=broker.bootstrap, group_id=None, enable_auto_commit=False
    )
    await consumer.start()
    try:
        partition = TopicPartition(topic, sent.partition)
        consumer.assign([partition])
        await consumer.seek_to_beginning(partition)
        records = await consumer.getmany(partition, timeout_ms=30000)
    finally:
        await consumer.stop()
    got = [(r.offset, r.key, r.value) for r in records.get(partition, [])]
    assert got == [(sent.offset, b"debtor-1", b"survives a restart")]

    admin = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap)
    await admin.start()
    try:
        topics = set(await admin.list_topics())
    finally:
        await admin.close()
    assert {s.name for s in platform_topics()} | {topic} <= topics


async def test_unique_topic_makes_a_fresh_topic_and_its_dead_letter_topic(
    kafka_bootstrap: str, unique_topic: MakeTopic
) -> None:
    first = await unique_topic(partitions=3)
    second = await unique_topic(partitions=1)
    assert first != second
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        described = {t["topic"]: t for t in await admin.describe_topics([first, first + ".dlq"])}
    finally:
        await admin.close()
    assert len(described[first]["partitions"]) == 3
    assert len(described[first + ".dlq"]["partitions"]) == 1


def test_kafka_from_the_environment_that_does_not_answer_fails_promptly(
    monkeypatch: pytest.MonkeyPatch, silent_port: int
) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", f"127.0.0.1:{silent_port}")
    monkeypatch.setattr(infra, "docker_available", _must_not_fall_back)
    started = time.monotonic()
    with (
        pytest.raises(InfrastructureUnavailable, match="KAFKA_BOOTSTRAP_SERVERS"),
        resolve_kafka(timeout=2),
    ):
        pass
    assert time.monotonic() - started < 15


def test_without_env_docker_or_a_local_broker_kafka_is_unavailable(
    monkeypatch: pytest.MonkeyPatch, no_docker: None
) -> None:
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    monkeypatch.setenv("JAVA", "/nonexistent/java")
    with pytest.raises(InfrastructureUnavailable) as caught, resolve_kafka():
        pass
    message = str(caught.value)
    assert "docker" in message
    assert "java not found" in message


# --- PostgreSQL ------------------------------------------------------------------------------


@pytest.mark.parametrize("run", [1, 2])
async def test_pg_url_is_a_fresh_database_of_the_test_own(pg_url: str, run: int) -> None:
    # Both runs create the same table: only possible if each gets a database of its own.
    assert pg_url.startswith("postgresql+asyncpg://")
    conn = await asyncpg.connect(sync_url(pg_url))
    try:
        tables = await conn.fetchval("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
        await conn.execute("CREATE TABLE marker (run int NOT NULL)")
        await conn.execute("INSERT INTO marker VALUES ($1)", run)
        database = await conn.fetchval("SELECT current_database()")
    finally:
        await conn.close()
    assert tables == 0
    assert database != "postgres"
    assert pg_url.endswith("/" + database)


async def test_databases_are_dropped_even_while_connected(postgres_server: str) -> None:
    name = "harness_" + uuid.uuid4().hex[:12]
    url = create_database(postgres_server, name)
    lingering = await asyncpg.connect(url)  # a test that forgot to dispose its engine
    try:
        drop_database(postgres_server, name)
    finally:
        lingering.terminate()
    server = await asyncpg.connect(postgres_server)
    try:
        left = await server.fetchval("SELECT count(*) FROM pg_database WHERE datname = $1", name)
    finally:
        await server.close()
    assert left == 0


def test_database_url_that_does_not_answer_fails_promptly(
    monkeypatch: pytest.MonkeyPatch, silent_port: int
) -> None:
    url = f"postgresql+asyncpg://postgres@127.0.0.1:{silent_port}/postgres"
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setattr(infra, "docker_available", _must_not_fall_back)
    started = time.monotonic()
    with (
        pytest.raises(InfrastructureUnavailable, match="DATABASE_URL"),
        resolve_postgres(timeout=2),
    ):
        pass
    assert time.monotonic() - started < 15


def test_without_env_docker_or_a_local_cluster_postgres_is_unavailable(
    monkeypatch: pytest.MonkeyPatch, no_docker: None
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("PG_BINDIR", "/nonexistent")
    with pytest.raises(InfrastructureUnavailable) as caught, resolve_postgres():
        pass
    assert "PG_BINDIR" in str(caught.value)


def test_url_helpers() -> None:
    url = "postgresql://app:p%40ss@db.internal:6432/cases?sslmode=disable"
    assert (
        async_url(url) == "postgresql+asyncpg://app:p%40ss@db.internal:6432/cases?sslmode=disable"
    )
    assert sync_url(async_url(url)) == url
    assert sync_url("postgresql+psycopg2://u@h/d") == "postgresql://u@h/d"
    with pytest.raises(ValueError, match="PostgreSQL"):
        async_url("mysql://u@h/d")


# --- the Docker path, with stand-ins for the testcontainers classes ---------------------------


class _FakeContainer:
    """Stands in for a testcontainers container; "runs" the server it is pointed at."""

    instances: ClassVar[list[_FakeContainer]] = []
    target = ""
    fail_start = False

    def __init__(self, image: str, **kwargs: object) -> None:
        self.image = image
        self.kwargs = kwargs
        self.started = self.stopped = False
        type(self).instances.append(self)

    def with_kraft(self) -> _FakeContainer:
        return self

    def start(self) -> _FakeContainer:
        if self.fail_start:
            raise RuntimeError("image pull failed")
        self.started = True
        return self

    def stop(self) -> None:
        self.stopped = True

    def get_bootstrap_server(self) -> str:
        return self.target

    def get_connection_url(self) -> str:
        return self.target


@pytest.fixture
def fake_docker(monkeypatch: pytest.MonkeyPatch) -> type[_FakeContainer]:
    import testcontainers.community.kafka
    import testcontainers.community.postgres

    fake = type("FakeContainer", (_FakeContainer,), {"instances": []})
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setattr(infra, "docker_available", lambda: True)
    monkeypatch.setattr(testcontainers.community.kafka, "KafkaContainer", fake)
    monkeypatch.setattr(testcontainers.community.postgres, "PostgresContainer", fake)
    return fake


def test_kafka_from_docker_gets_the_platform_topics_and_is_stopped_after(
    fake_docker: type[_FakeContainer], kafka_bootstrap: str
) -> None:
    fake_docker.target = kafka_bootstrap
    with resolve_kafka() as kafka:
        assert (kafka.kind, kafka.bootstrap) == ("docker", kafka_bootstrap)
        (container,) = fake_docker.instances
        assert container.started
        assert not container.stopped
    assert container.stopped


def test_postgres_from_docker_is_stopped_after(
    fake_docker: type[_FakeContainer], postgres_server: str
) -> None:
    fake_docker.target = async_url(postgres_server)
    with resolve_postgres() as postgres:
        assert (postgres.kind, postgres.url) == ("docker", postgres_server)
        (container,) = fake_docker.instances
        assert container.kwargs["driver"] is None
    assert container.stopped


def test_postgres_falls_back_to_a_local_cluster_when_docker_fails(
    fake_docker: type[_FakeContainer],
) -> None:
    fake_docker.fail_start = True
    with resolve_postgres() as postgres:
        assert postgres.kind == "local"
        infra.check_postgres(postgres.url)
        url = postgres.url
    with pytest.raises(InfrastructureUnavailable):
        infra.check_postgres(url, timeout=2)  # stopped with the context


# --- the pytest plugin: skip locally, fail in CI, markers --------------------------------------

INNER_TESTS = """
def test_needs_postgres(postgres_server):
    pass

def test_needs_kafka(kafka_bootstrap):
    pass

def test_plain():
    pass
"""


@pytest.fixture
def inner(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    pytester.makeconftest('pytest_plugins = ["collect_common.testing.pytest_plugin"]')
    pytester.makepyfile(test_inner=INNER_TESTS)
    dead = free_port()
    monkeypatch.setenv("DATABASE_URL", f"postgresql://postgres@127.0.0.1:{dead}/postgres")
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", f"127.0.0.1:{dead}")
    return pytester


def test_missing_infrastructure_skips_outside_ci(
    inner: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CI", raising=False)
    result = inner.runpytest_subprocess("-p", "no:cacheprovider", "-rs")
    result.assert_outcomes(passed=1, skipped=2)
    result.stdout.fnmatch_lines(["*DATABASE_URL is set but not usable*"])


def test_missing_infrastructure_fails_in_ci(
    inner: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CI", "true")
    assert ci()
    result = inner.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, errors=2)
    result.stdout.fnmatch_lines(["*CI is set, so missing infrastructure is an error*"])


def test_fixtures_mark_tests_so_they_can_be_deselected(inner: pytest.Pytester) -> None:
    result = inner.runpytest_subprocess(
        "-p", "no:cacheprovider", "--strict-markers", "-m", "not kafka and not postgres"
    )
    result.assert_outcomes(passed=1, deselected=2)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("1", True), ("true", True), ("yes", True), ("0", False), ("false", False), ("", False)],
)
def test_ci_flag(monkeypatch: pytest.MonkeyPatch, value: str, expected: bool) -> None:
    monkeypatch.setenv("CI", value)
    assert ci() is expected


def _must_not_fall_back() -> bool:
    pytest.fail("a configured URL that does not answer must not fall back to Docker")
