"""Cursor of the change-feed push to the bank (CASE-FEEDBACK)

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


def upgrade() -> None:
    op.create_table(
        "feed_push_state",
        sa.Column("target", sa.String(64), nullable=False),
        sa.Column("last_seq", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("target", name="pk_feed_push_state"),
    )


def downgrade() -> None:
    op.drop_table("feed_push_state")
