"""Live rules: speech rate, volume and SMS-cap state

Speech rate and volume are judged on the call-completed event alone (no state); the
SMS weekly cap (SMS-WEEKLY-CAP) counts the debtor's SMS sent, kept here by debtor and
event time.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sms_sent",
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("debtor_id", sa.String(64), nullable=False),
        sa.Column("case_id", sa.String(64), nullable=False),
        sa.Column("message_id", sa.String(64), nullable=False),
        sa.Column("agent_id", sa.String(64), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("event_id", name="pk_sms_sent"),
    )
    op.create_index("ix_sms_sent_debtor_id_sent_at", "sms_sent", ["debtor_id", "sent_at"])


def downgrade() -> None:
    op.drop_index("ix_sms_sent_debtor_id_sent_at", table_name="sms_sent")
    op.drop_table("sms_sent")
