"""The tables complaint-svc owns. The platform tables (outbox, processed_events) come with the
metadata, with the idempotency keys of retried requests and the durable SLA timers.

The complainant's name and contact and the complaint's content are stored only
encrypted (SEC-PII, ``EncryptedText``).
"""

from sqlalchemy import BigInteger, Column, ForeignKey, String, Table

from collect_common.db import UtcDateTime, new_metadata
from collect_common.security.crypto import EncryptedText
from collect_common.timers import add_timers_table
from collect_common.web.idempotency import add_idempotency_table

metadata = new_metadata()
idempotency_keys = add_idempotency_table(metadata)
timers = add_timers_table(metadata)

tickets = Table(
    "complaint_tickets",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("number", String(32), nullable=False, unique=True),
    Column("channel", String(16), nullable=False),
    Column("type", String(16), nullable=False),
    Column(
        "complainant_name", EncryptedText(aad="complaint_tickets.complainant_name"), nullable=False
    ),
    Column(
        "complainant_contact",
        EncryptedText(aad="complaint_tickets.complainant_contact"),
        nullable=False,
    ),
    Column("content", EncryptedText(aad="complaint_tickets.content"), nullable=False),
    Column("case_id", String(64), nullable=True, index=True),
    Column("agent_id", String(64), nullable=True),
    Column("state", String(20), nullable=False),
    Column("accepted_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("paused_at", UtcDateTime, nullable=True),
    Column("paused_total_ms", BigInteger, nullable=False),
)

ticket_steps = Table(
    "complaint_steps",
    metadata,
    Column("ticket_id", String(36), ForeignKey("complaint_tickets.id"), primary_key=True),
    Column("step", String(16), primary_key=True),
    Column("rule_id", String(40), nullable=False),
    Column("started_at", UtcDateTime, nullable=True),
    Column("deadline", UtcDateTime, nullable=True),
    Column("completed_at", UtcDateTime, nullable=True),
    Column("warned_first_at", UtcDateTime, nullable=True),
    Column("warned_second_at", UtcDateTime, nullable=True),
    Column("breached_at", UtcDateTime, nullable=True),
)
