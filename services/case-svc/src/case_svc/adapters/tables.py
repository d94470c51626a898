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
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from collect_common.db import BigId, UtcDateTime, new_metadata
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
    # the bank's classification codes (COMP-STATS), not personal data: an administrative
    # division code (6 digits), a customer group and a product code
    Column("region", String(6), nullable=True),
    Column("customer_group", String(64), nullable=True),
    Column("product", String(64), nullable=True),
    Column("opened_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("version", Integer, nullable=False),
    UniqueConstraint("bank_id", "contract_no", name="uq_cases_bank_contract"),
)

payments = Table(
    "payments",
    metadata,
    Column("case_id", String(36), ForeignKey("cases.id"), primary_key=True),
    Column("payment_id", String(64), primary_key=True),
    Column("amount", Money, nullable=False),
    Column("paid_at", UtcDateTime, nullable=False),
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
    Column("at", UtcDateTime, nullable=False),
    Index("ix_case_changes_bank_seq", "bank_id", "seq"),
)

# Promises to pay (CASE-PROMISE): the debtor's word, its deadline and what was paid towards it.
promises = Table(
    "promises",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("case_id", String(36), ForeignKey("cases.id"), nullable=False),
    Column("amount", Money, nullable=False),
    Column("due_date", Date, nullable=False),
    Column("due_at", UtcDateTime, nullable=False),
    Column("paid", Money, nullable=False),
    Column("status", String(16), nullable=False),
    Column("agent_id", String(64), nullable=True),
    Column("made_at", UtcDateTime, nullable=False),
    Column("resolved_at", UtcDateTime, nullable=True),
    Index("ix_promises_case_status", "case_id", "status"),
)

# Hardship repayment plans (CASE-HARDSHIP) and their installments.
plans = Table(
    "plans",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("case_id", String(36), ForeignKey("cases.id"), nullable=False),
    Column("agreement_ref", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Index("ix_plans_case_status", "case_id", "status"),
)

plan_installments = Table(
    "plan_installments",
    metadata,
    Column("plan_id", String(36), ForeignKey("plans.id"), primary_key=True),
    Column("no", Integer, primary_key=True),
    Column("due_date", Date, nullable=False),
    Column("amount", Money, nullable=False),
    Column("paid", Money, nullable=False),
    Column("status", String(16), nullable=False),
)

# The feed-push state, the assignment tables and the audit trail live in their own
# modules; importing them here puts them on ``metadata`` wherever the service's tables
# are loaded (the app, Alembic's env.py, the schema check).
from case_svc.adapters import assignment_tables, audit_tables, feed_tables  # noqa: E402, F401
