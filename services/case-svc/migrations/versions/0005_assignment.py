"""Agents and their load, for assigning cases by capacity and skill

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "agents",
        sa.Column("agent_id", sa.String(64), nullable=False),
        sa.Column("team_id", sa.String(64), nullable=True),
        sa.Column("skills", sa.String(200), nullable=False),
        sa.Column("capacity", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("capacity >= 0", name="ck_agents_capacity_non_negative"),
        sa.PrimaryKeyConstraint("agent_id", name="pk_agents"),
    )
    op.create_index("ix_cases_agent_id_status", "cases", ["agent_id", "status"])


def downgrade() -> None:
    op.drop_index("ix_cases_agent_id_status", table_name="cases")
    op.drop_table("agents")
