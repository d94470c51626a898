"""Assignment audit trail; several change-feed push targets with retry state and lease

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from collect_common.db import BigId

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "case_assignment_log",
        sa.Column("seq", BigId, nullable=False, autoincrement=True),
        sa.Column("case_id", sa.String(36), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("agent_id", sa.String(64), nullable=True),
        sa.Column("team_id", sa.String(64), nullable=True),
        sa.Column("previous_agent_id", sa.String(64), nullable=True),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("rule_id", sa.String(32), nullable=True),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_case_assignment_log"),
    )
    op.create_index("ix_case_assignment_log_case_id_seq", "case_assignment_log", ["case_id", "seq"])
    with op.batch_alter_table("feed_push_state") as batch:
        batch.add_column(sa.Column("failures", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("last_error", sa.Text, nullable=True))
        batch.add_column(sa.Column("leased_until", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "feed_push_targets",
        sa.Column("target", sa.String(64), nullable=False),
        sa.Column("bank_id", sa.String(64), nullable=False),
        sa.Column("url", sa.String(500), nullable=False),
        sa.Column("secret", sa.Text, nullable=False),  # ciphertext only
        sa.Column("key_id", sa.String(64), nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("target", name="pk_feed_push_targets"),
    )
    op.create_index("ix_feed_push_targets_bank_id", "feed_push_targets", ["bank_id"])


def downgrade() -> None:
    op.drop_index("ix_feed_push_targets_bank_id", table_name="feed_push_targets")
    op.drop_table("feed_push_targets")
    with op.batch_alter_table("feed_push_state") as batch:
        batch.drop_column("leased_until")
        batch.drop_column("last_error")
        batch.drop_column("next_attempt_at")
        batch.drop_column("failures")
    op.drop_index("ix_case_assignment_log_case_id_seq", table_name="case_assignment_log")
    op.drop_table("case_assignment_log")
