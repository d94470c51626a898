"""Agents' teams from case-svc's assignments (QA-SCORE reports per team)

``qa_agents``: one row per agent, the team of its latest ``case.assigned.v1``
(``updated_at`` is that assignment's time).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "qa_agents",
        sa.Column("agent_id", sa.String(64), nullable=False),
        sa.Column("team_id", sa.String(64), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("agent_id", name="pk_qa_agents"),
    )


def downgrade() -> None:
    op.drop_table("qa_agents")
