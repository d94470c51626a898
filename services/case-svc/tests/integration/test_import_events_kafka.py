"""An import of 1,000 accounts produces exactly the expected events on Kafka."""

from __future__ import annotations

import uuid
from collections import Counter

import httpx
import pytest

from case_svc.main import create_app
from case_svc.settings import Settings
from collect_common.events import EventEnvelope
from collect_common.settings import DEV_API_KEYS
from collect_common.testing.kafka import reader_at_end
from collect_common.testing.probe import wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.kafka]
N = 1000


def _national_id(serial: int) -> str:
    body = f"110105198001{serial % 28 + 1:02d}{serial % 1000:03d}"  # region, birth date, order
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    return body + "10X98765432"[sum(int(d) * w for d, w in zip(body, weights, strict=True)) % 11]


async def test_an_import_of_1000_accounts_publishes_exactly_the_expected_events(
    pg_url: str, kafka_bootstrap: str, clock
) -> None:
    reader = await reader_at_end(kafka_bootstrap, "case.events")

    settings = Settings(
        database_url=pg_url,
        kafka_bootstrap_servers=kafka_bootstrap,
        consumer_enabled=False,
        log_json=False,
    )
    app = create_app(settings, clock)
    batch = uuid.uuid4().hex[:6]
    accounts = [
        {
            "contract_no": f"LN-{batch}-{i:04d}",
            "name": "李四",
            "national_id": _national_id(i),
            "phones": [f"139{i:08d}"],
            "principal": "5000.00",
            "overdue_since": "2026-08-01",
        }
        for i in range(N)
    ]
    try:
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app),
                base_url="http://case-svc",
                headers={"X-API-Key": DEV_API_KEYS["bank-core"][1]},
                timeout=120,
            ) as api,
        ):
            r = await api.post("/v1/accounts/import", json={"accounts": accounts})
            assert r.status_code == 200 and r.json()["created"] == N, r.text[:500]
            case_ids = {row["case_id"] for row in r.json()["rows"]}

            relay = app.state.runtime.relay

            async def published() -> bool:
                return await relay.backlog() == 0

            await wait_until(published, timeout=60, what="the outbox to drain")

        seen: dict[str, EventEnvelope] = {}

        async def read_all() -> bool:
            batch_ = await reader.getmany(timeout_ms=500)
            for messages in batch_.values():
                for m in messages:
                    env = EventEnvelope.from_bytes(m.value)
                    if env.subject in case_ids:
                        assert m.key == env.subject.encode()  # keyed by case: order per case
                        seen.setdefault(env.id, env)
            return len(seen) >= 2 * N

        await wait_until(read_all, timeout=60, what="2,000 events on case.events")
        extra = await reader.getmany(timeout_ms=1000)  # nothing more for these cases
        assert not any(
            EventEnvelope.from_bytes(m.value).subject in case_ids
            for ms in extra.values()
            for m in ms
        )
    finally:
        await reader.stop()

    kinds = Counter(env.type for env in seen.values())
    assert kinds == {"case.imported.v1": N, "case.strategy_changed.v1": N}
    assert {env.subject for env in seen.values()} == case_ids
    for env in seen.values():
        assert "national_id" not in env.data and "phones" not in env.data
