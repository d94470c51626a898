from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from collect_common.bus.consumer import HandlerContext
from collect_common.events.codec import wrap
from collect_common.events.types import CallCompleted, ContactAttempted
from collect_common.runtime import ServiceRuntime
from qa_svc.settings import Settings

NOW = datetime(2026, 11, 28, 6, 0, tzinfo=UTC)  # 14:00 in Shanghai


def settings_for(pg_url: str, kafka: str = "127.0.0.1:1", consumer: bool = False) -> Settings:
    return Settings(
        database_url=pg_url,
        kafka_bootstrap_servers=kafka,
        relay_enabled=False,
        consumer_enabled=consumer,
        log_json=False,
    )


def attempt(debtor: str, at: datetime, agent: str = "agent-7", channel: str = "call") -> Any:
    return ContactAttempted(
        debtor_id=debtor,
        case_id=f"case-{debtor}",
        contact_id=uuid.uuid4().hex,
        channel=channel,  # type: ignore[arg-type]
        agent_id=agent,
        attempted_at=at,
    )


def completed(debtor: str, at: datetime, seconds: int) -> CallCompleted:
    return CallCompleted(
        debtor_id=debtor,
        case_id=f"case-{debtor}",
        contact_id=uuid.uuid4().hex,
        agent_id="agent-7",
        started_at=at,
        duration_seconds=seconds,
        disposition="answered",
    )


async def deliver(runtime: ServiceRuntime, handlers: dict[str, Any], event: Any) -> str:
    """Apply one event through its handler in a real unit of work, as the consumer does."""
    envelope = wrap(event, source="/contact-svc", time=NOW, correlation_id=str(uuid.uuid4()))
    async with runtime.uow() as uow:
        await handlers[event.type_name](event, HandlerContext(uow, envelope, None))  # type: ignore[arg-type]
        await uow.commit()
    return envelope.id
