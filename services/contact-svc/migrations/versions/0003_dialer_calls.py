"""Dialer webhooks: calls and processed deliveries

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INSTANT = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "calls",
        sa.Column("call_id", sa.String(64), nullable=False),
        sa.Column("case_id", sa.String(36), nullable=False),
        sa.Column("debtor_id", sa.String(64), nullable=False),
        sa.Column("agent_id", sa.String(64), nullable=False),
        sa.Column("contact_id", sa.String(36), nullable=True),
        sa.Column("started_at", INSTANT, nullable=True),
        sa.Column("answered_at", INSTANT, nullable=True),
        sa.Column("ended_at", INSTANT, nullable=True),
        sa.Column("duration_seconds", sa.Integer, nullable=True),
        sa.Column("disposition", sa.String(32), nullable=True),
        sa.Column("recording_uri", sa.String(500), nullable=True),
        sa.Column("speech_rate_wpm", sa.Float, nullable=True),
        sa.Column("volume_db", sa.Float, nullable=True),
        sa.Column("flagged", sa.Boolean, nullable=False),
        sa.Column("flag_rules", sa.String(200), nullable=True),
        sa.Column("updated_at", INSTANT, nullable=False),
        sa.PrimaryKeyConstraint("call_id", name="pk_calls"),
    )
    op.create_index("ix_calls_debtor_id", "calls", ["debtor_id"])
    op.create_index("ix_calls_contact_id", "calls", ["contact_id"])
    op.create_table(
        "dialer_deliveries",
        sa.Column("delivery_id", sa.String(128), nullable=False),
        sa.Column("call_id", sa.String(64), nullable=False),
        sa.Column("event", sa.String(16), nullable=False),
        sa.Column("outcome", sa.Text, nullable=False),
        sa.Column("received_at", INSTANT, nullable=False),
        sa.PrimaryKeyConstraint("delivery_id", name="pk_dialer_deliveries"),
        sa.UniqueConstraint("call_id", "event", name="uq_dialer_deliveries_call_event"),
    )


def downgrade() -> None:
    op.drop_table("dialer_deliveries")
    op.drop_index("ix_calls_contact_id", table_name="calls")
    op.drop_index("ix_calls_debtor_id", table_name="calls")
    op.drop_table("calls")
