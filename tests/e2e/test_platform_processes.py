"""The four services as separate processes over real Kafka and PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from collect_common.clock import SystemClock
from collect_common.db import UnitOfWork, create_engine, new_metadata, session_factory
from collect_common.events import EventEnvelope
from collect_common.events.types import CaseRecalled
from collect_common.settings import DEV_API_KEYS
from collect_common.testing.infra import async_url, create_database, free_port
from collect_common.testing.kafka import reader_at_end
from collect_common.testing.probe import wait_until
from collect_common.testing.processes import ServiceProcess

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.postgres]
SERVICES = ["case", "contact", "complaint", "qa"]
OPS_KEY = DEV_API_KEYS["ops-dashboard"][1]


def _database(server: str, name: str) -> str:
    db = f"e2e_{name}_{uuid.uuid4().hex[:8]}"
    create_database(server, db)
    return async_url(server.rsplit("/", 1)[0] + "/" + db)


async def test_services_run_as_processes_and_publish_through_their_outbox(
    postgres_server: str, kafka_bootstrap: str, tmp_path: Path
) -> None:
    urls = {name: _database(postgres_server, name) for name in SERVICES}
    procs = [
        ServiceProcess(
            name,
            free_port(),
            {
                "DATABASE_URL": urls[name],
                "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
                "ENVIRONMENT": "test",
            },
            tmp_path,
        )
        for name in SERVICES
    ]
    try:
        for p in procs:
            p.start()
        async with httpx.AsyncClient(timeout=10) as http:
            for p in procs:
                r = await http.get(p.url + "/readyz")
                assert r.status_code == 200, p.log_tail()
                assert r.json()["checks"] == {"database": "up", "broker": "up"}
                assert r.json()["status"] == "ready"
                r = await http.get(p.url + "/v1/service-info")
                assert r.status_code == 401
                assert r.headers["content-type"] == "application/problem+json"

            # A state change committed in case-svc's own database reaches Kafka through
            # the relay running inside the case-svc process.
            consumer = await reader_at_end(kafka_bootstrap, "case.events")
            try:
                engine = create_engine(urls["case"])
                uow = UnitOfWork(
                    session_factory(engine),
                    source="/case-svc",
                    clock=SystemClock(),
                    outbox=new_metadata().tables["outbox"],
                )
                case_id = "case-" + uuid.uuid4().hex[:8]
                async with uow:
                    uow.emit(
                        CaseRecalled(
                            case_id=case_id, debtor_id="debtor-1", recalled_at=datetime.now(UTC)
                        )
                    )
                    await uow.commit()
                await engine.dispose()

                found = None
                for _ in range(60):
                    batch = await consumer.getmany(timeout_ms=500)
                    for msgs in batch.values():
                        for m in msgs:
                            env = EventEnvelope.from_bytes(m.value)
                            if env.subject == case_id:
                                found = (m, env)
                    if found:
                        break
                assert found is not None, procs[0].log_tail()
                message, envelope = found
                assert message.key == case_id.encode()
                assert envelope.type == "case.recalled.v1"
                assert envelope.id == uow.committed_events[0]
            finally:
                await consumer.stop()

            metrics = (await http.get(procs[0].url + "/metrics")).text
            assert 'outbox_published_total{service="case-svc"}' in metrics

            async def backlog_empty() -> bool:
                r = await http.get(
                    procs[0].url + "/v1/service-info", headers={"X-API-Key": OPS_KEY}
                )
                return r.json()["relay"]["backlog"] == 0

            # marked published once Kafka acknowledged it (asynchronously)
            await wait_until(backlog_empty, timeout=30, what="case-svc outbox backlog to empty")
    finally:
        codes = [p.stop() for p in procs]
    # uvicorn re-raises SIGTERM once its graceful shutdown (lifespan included) is done
    assert set(codes) <= {0, -15}, codes
    for p in procs:
        assert "Application shutdown complete" in p.log_tail(200), p.log_tail()
