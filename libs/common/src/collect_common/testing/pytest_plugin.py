"""Pytest fixtures for Kafka and PostgreSQL (see :mod:`collect_common.testing.infra`).

Enabled from the root ``conftest.py``::

    pytest_plugins = ["collect_common.testing.pytest_plugin"]

Fixtures:

- ``kafka_bootstrap`` (session): ``host:port`` of a broker that has the platform topics.
- ``postgres_server`` (session): sync URL of a PostgreSQL server.
- ``pg_url``: a fresh database for the test, as a ``postgresql+asyncpg://`` URL; dropped after.
- ``restartable_kafka``: a broker of the test's own (:class:`LocalKafka`) that it may
  ``stop()`` and ``start()`` (or ``await astop()`` / ``astart()``); see ``.bootstrap``.
- ``restartable_postgres``: a PostgreSQL cluster of the test's own (:class:`LocalPostgres`)
  that it may ``stop()`` and ``start()``; data and port survive; see ``.url``.
- ``unique_topic``: ``await unique_topic(partitions=3)`` creates a fresh topic and its
  ``.dlq`` topic on ``kafka_bootstrap`` and returns the topic name.

Infrastructure is started lazily, when a selected test first needs it. When it cannot be
had, those tests are skipped with the reason, unless ``CI`` is set: then they fail.
Tests using these fixtures get the ``kafka`` / ``postgres`` markers automatically, so
``-m "not kafka"`` deselects them.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import ExitStack, suppress
from typing import NoReturn

import pytest

from collect_common.bus.topics import TopicSpec, dead_letter_topic
from collect_common.testing.infra import (
    InfrastructureUnavailable,
    KafkaEndpoint,
    LocalKafka,
    LocalPostgres,
    PostgresEndpoint,
    async_url,
    ci,
    create_database,
    drop_database,
    ensure_topics,
    resolve_kafka,
    resolve_postgres,
    run_sync,
)

KAFKA_FIXTURES = frozenset({"kafka_infra", "kafka_bootstrap", "restartable_kafka", "unique_topic"})
POSTGRES_FIXTURES = frozenset(
    {"postgres_infra", "postgres_server", "pg_url", "restartable_postgres"}
)

MakeTopic = Callable[..., Awaitable[str]]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "kafka: needs a Kafka broker")
    config.addinivalue_line("markers", "postgres: needs PostgreSQL")


@pytest.hookimpl(tryfirst=True)  # before -m deselects anything
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        if names & KAFKA_FIXTURES and item.get_closest_marker("kafka") is None:
            item.add_marker(pytest.mark.kafka)
        if names & POSTGRES_FIXTURES and item.get_closest_marker("postgres") is None:
            item.add_marker(pytest.mark.postgres)


def _unavailable(what: str, exc: BaseException) -> NoReturn:
    reason = f"{what} unavailable: {exc}"
    if ci():
        pytest.fail(f"{reason}\n(CI is set, so missing infrastructure is an error)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def kafka_infra() -> Iterator[KafkaEndpoint]:
    """The session's broker: ``.bootstrap`` and ``.kind`` ("env", "docker" or "local")."""
    with ExitStack() as stack:
        try:
            endpoint = stack.enter_context(resolve_kafka())
        except InfrastructureUnavailable as exc:
            _unavailable("Kafka", exc)
        yield endpoint


@pytest.fixture(scope="session")
def kafka_bootstrap(kafka_infra: KafkaEndpoint) -> str:
    return kafka_infra.bootstrap


@pytest.fixture(scope="session")
def postgres_infra() -> Iterator[PostgresEndpoint]:
    """The session's PostgreSQL server: ``.url`` (sync style) and ``.kind``."""
    with ExitStack() as stack:
        try:
            endpoint = stack.enter_context(resolve_postgres())
        except InfrastructureUnavailable as exc:
            _unavailable("PostgreSQL", exc)
        yield endpoint


@pytest.fixture(scope="session")
def postgres_server(postgres_infra: PostgresEndpoint) -> str:
    return postgres_infra.url


@pytest.fixture
def pg_url(postgres_server: str) -> Iterator[str]:
    """A database of the test's own (``postgresql+asyncpg://``), force-dropped afterwards."""
    name = "test_" + uuid.uuid4().hex[:20]
    url = create_database(postgres_server, name)
    try:
        yield async_url(url)
    finally:
        drop_database(postgres_server, name, force=True)


@pytest.fixture
def restartable_kafka() -> Iterator[LocalKafka]:
    """A broker only this test uses, which it may stop and start; gone after the test."""
    broker = LocalKafka()
    try:
        broker.start()
    except InfrastructureUnavailable as exc:
        broker.close()
        _unavailable("restartable Kafka broker", exc)
    try:
        yield broker
    finally:
        broker.close()


@pytest.fixture
def restartable_postgres() -> Iterator[LocalPostgres]:
    """A PostgreSQL cluster only this test uses, which it may stop and start (same port,
    same data); gone after the test."""
    cluster = LocalPostgres()
    try:
        cluster.start()
    except InfrastructureUnavailable as exc:
        cluster.close()
        _unavailable("restartable PostgreSQL cluster", exc)
    try:
        yield cluster
    finally:
        cluster.close()


@pytest.fixture
def unique_topic(kafka_bootstrap: str) -> Iterator[MakeTopic]:
    """``await unique_topic(partitions=3)``: a new topic (and its DLQ) on ``kafka_bootstrap``.

    The topics are deleted after the test (best effort).
    """
    created: list[str] = []

    async def make_topic(partitions: int = 3, *, prefix: str = "test") -> str:
        name = f"{prefix}.{uuid.uuid4().hex[:12]}"
        specs = [TopicSpec(name, partitions), TopicSpec(dead_letter_topic(name), 1)]
        created.extend(s.name for s in specs)
        await ensure_topics(kafka_bootstrap, specs)
        return name

    yield make_topic
    if created:
        with suppress(Exception):
            run_sync(_delete_topics(kafka_bootstrap, created))


async def _delete_topics(bootstrap: str, names: list[str]) -> None:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10000)
    await admin.start()
    try:
        await admin.delete_topics(names)
    finally:
        await admin.close()
