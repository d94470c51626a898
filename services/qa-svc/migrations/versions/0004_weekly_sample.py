"""Verifiable weekly sample (QA-SAMPLE): bucket on contact records, committed weeks, picks

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("contact_events", sa.Column("bucket", sa.String(8), nullable=True))
    op.create_index("ix_contact_events_at", "contact_events", ["at"])
    op.create_table(
        "sample_weeks",
        sa.Column("week", sa.String(8), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seed", sa.String(64), nullable=False),
        sa.Column("commitment", sa.String(64), nullable=False),
        sa.Column("committed_by", sa.String(200), nullable=False),
        sa.Column("committed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rate", sa.Numeric(5, 4), nullable=True),
        sa.Column("allocation", sa.String(16), nullable=True),
        sa.Column("population", sa.Text, nullable=True),
        sa.Column("sizes", sa.Text, nullable=True),
        sa.Column("drawn_by", sa.String(200), nullable=True),
        sa.Column("revealed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("week", name="pk_sample_weeks"),
    )
    op.create_table(
        "sample_picks",
        sa.Column("week", sa.String(8), nullable=False),
        sa.Column("record_id", sa.String(64), nullable=False),
        sa.Column("bucket", sa.String(8), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("score", sa.String(64), nullable=False),
        sa.Column("risk", sa.Boolean, nullable=False),
        sa.Column("agent_id", sa.String(64), nullable=True),
        sa.Column("position", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("week", "record_id", name="pk_sample_picks"),
        sa.ForeignKeyConstraint(
            ["week"], ["sample_weeks.week"], name="fk_sample_picks_week_sample_weeks"
        ),
    )


def downgrade() -> None:
    op.drop_table("sample_picks")
    op.drop_table("sample_weeks")
    op.drop_index("ix_contact_events_at", table_name="contact_events")
    with op.batch_alter_table("contact_events") as batch:
        batch.drop_column("bucket")
