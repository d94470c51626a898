"""The tables case-svc owns.

The platform tables (outbox, processed_events) come with the metadata, and
with them the idempotency keys of the bank's retried requests and the durable
timers. Personal data (name, national ID, phones, address) is stored only
encrypted (SEC-PII, ``EncryptedText``); a keyed blind index of the national ID
finds a debtor without decrypting anything.
"""

from sqlalchemy import (
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from collect_common.db import BigId, new_metadata
from collect_common.security.crypto import EncryptedText
from collect_common.timers import add_timers_table
from collect_common.web.idempotency import add_idempotency_table

Money = Numeric(18, 2)

metadata = new_metadata()
idempotency_keys = add_idempotency_table(metadata)
timers = add_timers_table(metadata)

cases = Table(
    "cases",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("bank_id", String(64), nullable=False),
    Column("contract_no", String(64), nullable=False),
    Column("debtor_id", String(64), nullable=False, index=True),
    Column("national_id_index", String(64), nullable=False, index=True),
    Column("name", EncryptedText(aad="cases.name"), nullable=False),
    Column("national_id", EncryptedText(aad="cases.national_id"), nullable=False),
    Column("phones", EncryptedText(aad="cases.phones"), nullable=False),  # a JSON list
    Column("address", EncryptedText(aad="cases.address"), nullable=True),
    Column("principal", Money, nullable=False),
    Column("interest", Money, nullable=False),
    Column("fees", Money, nullable=False),
    Column("paid_total", Money, nullable=False),
    Column("overdue_since", Date, nullable=False),
    Column("debtor_timezone", String(64), nullable=False),
    Column("history", String(32), nullable=False),
    Column("willingness", String(32), nullable=False),
    Column("bucket", String(8), nullable=False),
    Column("track", String(16), nullable=False),
    Column("channels", String(200), nullable=False),  # comma-separated, in order of use
    Column("strategy_rule", String(100), nullable=True),
    Column("strategy_version", String(40), nullable=False),
    Column("strategy_reason", Text, nullable=False),
    Column("status", String(20), nullable=False),
    Column("agent_id", String(64), nullable=True),
    Column("team_id", String(64), nullable=True),
    Column("opened_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("version", Integer, nullable=False),
    UniqueConstraint("bank_id", "contract_no", name="uq_cases_bank_contract"),
)

payments = Table(
    "payments",
    metadata,
    Column("case_id", String(36), ForeignKey("cases.id"), primary_key=True),
    Column("payment_id", String(64), primary_key=True),
    Column("amount", Money, nullable=False),
    Column("paid_at", DateTime(timezone=True), nullable=False),
)

# What the bank pulls (and may have pushed): one row per change of one of its cases,
# in commit order, with the catalogued event's data (ids, codes, amounts, dates).
case_changes = Table(
    "case_changes",
    metadata,
    Column("seq", BigId, primary_key=True, autoincrement=True),
    Column("bank_id", String(64), nullable=False),
    Column("case_id", String(36), nullable=False),
    Column("contract_no", String(64), nullable=False),
    Column("change", String(100), nullable=False),
    Column("data", Text, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Index("ix_case_changes_bank_seq", "bank_id", "seq"),
)
