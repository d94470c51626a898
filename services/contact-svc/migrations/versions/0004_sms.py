"""SMS: templates, their versions (bank approval and filing number), messages sent

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INSTANT = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "sms_templates",
        sa.Column("template_id", sa.String(36), nullable=False),
        sa.Column("bank_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", INSTANT, nullable=False),
        sa.PrimaryKeyConstraint("template_id", name="pk_sms_templates"),
    )
    op.create_index("ix_sms_templates_bank_id", "sms_templates", ["bank_id"])
    op.create_table(
        "sms_template_versions",
        sa.Column("template_id", sa.String(36), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("filing_number", sa.String(64), nullable=True),
        sa.Column("approved_by", sa.String(64), nullable=True),
        sa.Column("approved_at", INSTANT, nullable=True),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", INSTANT, nullable=False),
        sa.PrimaryKeyConstraint("template_id", "version", name="pk_sms_template_versions"),
    )
    op.create_table(
        "sms_messages",
        sa.Column("message_id", sa.String(36), nullable=False),
        sa.Column("debtor_id", sa.String(64), nullable=False),
        sa.Column("case_id", sa.String(36), nullable=False),
        sa.Column("template_id", sa.String(36), nullable=False),
        sa.Column("template_version", sa.Integer, nullable=False),
        sa.Column("agent_id", sa.String(64), nullable=True),
        sa.Column("recipient_ref", sa.String(64), nullable=False),
        sa.Column("text_sha256", sa.String(64), nullable=False),
        sa.Column("provider", sa.String(16), nullable=False),
        sa.Column("provider_id", sa.String(128), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("sent_at", INSTANT, nullable=False),
        sa.PrimaryKeyConstraint("message_id", name="pk_sms_messages"),
    )
    op.create_index("ix_sms_messages_debtor_sent_at", "sms_messages", ["debtor_id", "sent_at"])


def downgrade() -> None:
    op.drop_index("ix_sms_messages_debtor_sent_at", table_name="sms_messages")
    op.drop_table("sms_messages")
    op.drop_table("sms_template_versions")
    op.drop_index("ix_sms_templates_bank_id", table_name="sms_templates")
    op.drop_table("sms_templates")
