"""The tables contact-svc owns. The platform tables (outbox, processed_events) come with the
metadata.

The read model (``debtors``, ``contact_cases``, ``contact_agents``) is built from
case-svc's and QA's events; it holds ids, codes and the debtor's time zone, no
personal data. The ``debtors`` row is also the lock that serialises decisions
about one debtor (CALL-DAILY-CAP under concurrency).
"""

from sqlalchemy import Boolean, Column, Index, String, Table, Text

from collect_common.db import UtcDateTime, new_metadata
from collect_common.security.webhooks import webhook_deliveries_table

metadata = new_metadata()
webhook_deliveries_table(metadata)  # replay refusal of signed dialer webhooks

debtors = Table(
    "debtors",
    metadata,
    Column("debtor_id", String(64), primary_key=True),
    Column("timezone", String(64), nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

contact_cases = Table(
    "contact_cases",
    metadata,
    Column("case_id", String(36), primary_key=True),
    Column("debtor_id", String(64), nullable=False, index=True),
    Column("bank_id", String(64), nullable=False),
    Column("status", String(20), nullable=False),
    Column("track", String(16), nullable=True),
    Column("channels", String(200), nullable=True),  # comma-separated; NULL: no track yet
    Column("updated_at", UtcDateTime, nullable=False),
)

contact_agents = Table(
    "contact_agents",
    metadata,
    Column("agent_id", String(64), primary_key=True),
    Column("suspended", Boolean, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

# Contacts that happened (an allowed call decision counts as an attempt: CALL-DAILY-CAP).
contact_attempts = Table(
    "contact_attempts",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("decision_id", String(36), nullable=True),
    Column("debtor_id", String(64), nullable=False),
    Column("case_id", String(36), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("agent_id", String(64), nullable=True),
    Column("answered", Boolean, nullable=True),  # NULL until the dialer reports
    Column("attempted_at", UtcDateTime, nullable=False),
    Index("ix_contact_attempts_debtor_channel_at", "debtor_id", "channel", "attempted_at"),
)

# Every refusal of the contact-policy engine, with its rules (auditors see what was prevented).
contact_denials = Table(
    "contact_denials",
    metadata,
    Column("decision_id", String(36), primary_key=True),
    Column("debtor_id", String(64), nullable=False),
    Column("case_id", String(36), nullable=True),
    Column("channel", String(16), nullable=False),
    Column("agent_id", String(64), nullable=True),
    Column("rules", String(200), nullable=False),  # comma-separated rule IDs
    Column("reasons", Text, nullable=False),  # JSON list of {rule, reason}
    Column("policy_version", String(100), nullable=False),
    Column("next_allowed_at", UtcDateTime, nullable=True),
    Column("denied_at", UtcDateTime, nullable=False),
    Index("ix_contact_denials_debtor_at", "debtor_id", "denied_at"),
)
