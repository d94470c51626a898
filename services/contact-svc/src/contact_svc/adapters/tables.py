"""The tables contact-svc owns. The platform tables (outbox, processed_events) come with the
metadata.

The read model (``debtors``, ``contact_cases``, ``contact_agents``) is built from
case-svc's and QA's events; it holds ids, codes and the debtor's time zone, no
personal data. The ``debtors`` row is also the lock that serialises decisions
about one debtor (CALL-DAILY-CAP under concurrency).

Letters and visits hold personal data (the letter's text carries the debtor's name and
address, a visit its place): those columns are ``EncryptedText`` (SEC-PII).
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
from collect_common.security.crypto import EncryptedText
from collect_common.security.webhooks import webhook_deliveries_table
from collect_common.web.idempotency import add_idempotency_table

metadata = new_metadata()
webhook_deliveries_table(metadata)  # replay refusal of signed dialer webhooks
idempotency_keys = add_idempotency_table(metadata)  # Idempotency-Key of retried POSTs

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


def _template_tables(channel: str, number: str) -> tuple[Table, Table]:
    """A channel's templates, created by ops, and their versions: each new body a new
    version, usable once the bank approved it under its ``number`` (pending | approved)."""
    templates = Table(
        f"{channel}_templates",
        metadata,
        Column("template_id", String(36), primary_key=True),
        Column("bank_id", String(64), nullable=False, index=True),
        Column("name", String(100), nullable=False),
        Column("created_by", String(64), nullable=False),
        Column("created_at", UtcDateTime, nullable=False),
    )
    versions = Table(
        f"{channel}_template_versions",
        metadata,
        Column("template_id", String(36), primary_key=True),
        Column("version", Integer, primary_key=True),
        Column("body", Text, nullable=False),
        Column("status", String(16), nullable=False),  # pending | approved
        Column(number, String(64), nullable=True),
        Column("approved_by", String(64), nullable=True),
        Column("approved_at", UtcDateTime, nullable=True),
        Column("created_by", String(64), nullable=False),
        Column("created_at", UtcDateTime, nullable=False),
    )
    return templates, versions


# SMS templates (SMS-TEMPLATE): a version is sendable once the bank approved and filed it
# (filing number).
sms_templates, sms_template_versions = _template_tables("sms", "filing_number")

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

# Letter templates (LETTER): a version is usable once the bank approved it (its approval
# number).
letter_templates, letter_template_versions = _template_tables("letter", "approval_number")

# Letters generated for a case: the rendered text (name, address) encrypted, its SHA-256 in
# clear; the dispatch (carrier, tracking number) and each delivery status with its instant,
# and the proof of delivery or return (LETTER).
letters = Table(
    "letters",
    metadata,
    Column("letter_id", String(36), primary_key=True),
    Column("case_id", String(36), nullable=False, index=True),
    Column("debtor_id", String(64), nullable=False, index=True),
    Column("bank_id", String(64), nullable=False),
    Column("template_id", String(36), nullable=False),
    Column("template_version", Integer, nullable=False),
    Column("approval_number", String(64), nullable=False),
    Column("seal_ref", String(128), nullable=False),
    Column("text", EncryptedText(aad="letters.text"), nullable=False),
    Column("text_sha256", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("generated_by", String(64), nullable=False),
    Column("generated_at", UtcDateTime, nullable=False),
    Column("carrier", String(32), nullable=True),
    Column("tracking_number", String(64), nullable=True),
    Column("contact_id", String(36), nullable=True),  # the contact_attempts row of the dispatch
    Column("dispatched_by", String(64), nullable=True),
    Column("dispatched_at", UtcDateTime, nullable=True),
    Column("in_transit_at", UtcDateTime, nullable=True),
    Column("delivered_at", UtcDateTime, nullable=True),
    Column("returned_at", UtcDateTime, nullable=True),
    Column("return_reason", String(32), nullable=True),
    Column("proof_ref", String(500), nullable=True),  # signed receipt / return slip id or URI
    Column("updated_by", String(64), nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    UniqueConstraint("carrier", "tracking_number", name="uq_letters_carrier_tracking_number"),
)

# Field visits (VISIT-TEAM): planned with purpose, time, place (encrypted) and staff; completed
# with the outcome and the recordings, or cancelled.
visits = Table(
    "visits",
    metadata,
    Column("visit_id", String(36), primary_key=True),
    Column("case_id", String(36), nullable=False, index=True),
    Column("debtor_id", String(64), nullable=False, index=True),
    Column("purpose", String(500), nullable=False),
    Column("planned_at", UtcDateTime, nullable=False),
    Column("place", EncryptedText(aad="visits.place"), nullable=False),
    Column("staff", String(400), nullable=False),  # comma-separated agent ids
    Column("status", String(16), nullable=False),  # planned | completed | cancelled
    Column("decision_id", String(36), nullable=False),
    Column("planned_by", String(64), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("outcome", String(32), nullable=True),
    Column("recording_refs", Text, nullable=True),  # JSON list of recording ids/URIs
    Column("contact_id", String(36), nullable=True),  # the contact_attempts row of the visit
    Column("completed_at", UtcDateTime, nullable=True),
    Column("cancel_reason", String(500), nullable=True),
    Column("cancelled_at", UtcDateTime, nullable=True),
    Column("updated_by", String(64), nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

# Contact holds (CONTACT-CONDUCT): do-not-contact and complaint holds on a debtor. While one
# is active (not lifted, not past ``until``) every channel is denied with its rule. Read by
# the decision in the same statement that locks the debtor's row (index on debtor_id).
contact_holds = Table(
    "contact_holds",
    metadata,
    Column("hold_id", String(36), primary_key=True),
    Column("debtor_id", String(64), nullable=False, index=True),
    Column("kind", String(20), nullable=False),  # do_not_contact | complaint
    Column("rule", String(32), nullable=False),
    Column("reason", EncryptedText(aad="contact_holds.reason"), nullable=False),
    Column("case_id", String(36), nullable=True),
    Column("ticket_id", String(64), nullable=True, unique=True),
    Column("until", UtcDateTime, nullable=True),
    Column("placed_by", String(64), nullable=False),
    Column("placed_at", UtcDateTime, nullable=False),
    Column("lifted_by", String(64), nullable=True),
    Column("lifted_at", UtcDateTime, nullable=True),
    Column("lift_reason", EncryptedText(aad="contact_holds.lift_reason"), nullable=True),
)
