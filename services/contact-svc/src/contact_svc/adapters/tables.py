"""The tables contact-svc owns. The platform tables (outbox, processed_events) come with the
metadata.

The read model (``debtors``, ``contact_cases``, ``contact_agents``) is built from
case-svc's and QA's events; it holds ids, codes and the debtor's time zone, no
personal data. The ``debtors`` row is also the lock that serialises decisions
about one debtor (CALL-DAILY-CAP under concurrency).
"""

from sqlalchemy import (
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

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

# Calls the dialer reported through its signed webhooks (started, answered, ended). A call
# the policy would have denied at its start is recorded anyway and flagged with the rules.
calls = Table(
    "calls",
    metadata,
    Column("call_id", String(64), primary_key=True),
    Column("case_id", String(36), nullable=False),
    Column("debtor_id", String(64), nullable=False),
    Column("agent_id", String(64), nullable=False),
    Column("contact_id", String(36), nullable=True),  # the matched contact_attempts.id
    Column("started_at", UtcDateTime, nullable=True),
    Column("answered_at", UtcDateTime, nullable=True),
    Column("ended_at", UtcDateTime, nullable=True),
    Column("duration_seconds", Integer, nullable=True),
    Column("disposition", String(32), nullable=True),
    Column("recording_uri", String(500), nullable=True),
    Column("speech_rate_wpm", Float, nullable=True),
    Column("volume_db", Float, nullable=True),
    Column("flagged", Boolean, nullable=False),
    Column("flag_rules", String(200), nullable=True),  # comma-separated rule IDs
    Column("updated_at", UtcDateTime, nullable=False),
    Index("ix_calls_debtor_id", "debtor_id"),
    Index("ix_calls_contact_id", "contact_id"),
)

# Dialer deliveries whose business effect was applied, with the answer given the first time:
# a retry (same delivery id, or the same call event) changes nothing and gets that answer.
dialer_deliveries = Table(
    "dialer_deliveries",
    metadata,
    Column("delivery_id", String(128), primary_key=True),
    Column("call_id", String(64), nullable=False),
    Column("event", String(16), nullable=False),
    Column("outcome", Text, nullable=False),  # JSON of the first response
    Column("received_at", UtcDateTime, nullable=False),
    UniqueConstraint("call_id", "event", name="uq_dialer_deliveries_call_event"),
)

# SMS templates (SMS-TEMPLATE): created by ops, each new body a new version; a version is
# sendable once the bank approved and filed it (filing number).
sms_templates = Table(
    "sms_templates",
    metadata,
    Column("template_id", String(36), primary_key=True),
    Column("bank_id", String(64), nullable=False, index=True),
    Column("name", String(100), nullable=False),
    Column("created_by", String(64), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
)

sms_template_versions = Table(
    "sms_template_versions",
    metadata,
    Column("template_id", String(36), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("body", Text, nullable=False),
    Column("status", String(16), nullable=False),  # pending | approved
    Column("filing_number", String(64), nullable=True),
    Column("approved_by", String(64), nullable=True),
    Column("approved_at", UtcDateTime, nullable=True),
    Column("created_by", String(64), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
)

# SMS handed to the provider, recorded with the attempt (SMS-WEEKLY-CAP counts attempts).
# The text itself is not kept: its SHA-256 proves what was sent.
sms_messages = Table(
    "sms_messages",
    metadata,
    Column("message_id", String(36), primary_key=True),  # = the decision and attempt id
    Column("debtor_id", String(64), nullable=False),
    Column("case_id", String(36), nullable=False),
    Column("template_id", String(36), nullable=False),
    Column("template_version", Integer, nullable=False),
    Column("agent_id", String(64), nullable=True),
    Column("recipient_ref", String(64), nullable=False),  # the debtor id: the provider resolves
    Column("text_sha256", String(64), nullable=False),
    Column("provider", String(16), nullable=False),
    Column("provider_id", String(128), nullable=False),
    Column("status", String(16), nullable=False),  # sent (accepted by the provider)
    Column("sent_at", UtcDateTime, nullable=False),
    Index("ix_sms_messages_debtor_sent_at", "debtor_id", "sent_at"),
)
