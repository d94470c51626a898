"""Statistics, corrective actions and business-hours calendars (COMP-STATS)

The read model's statistics dimensions of a case and its collection stage over time,
corrective actions with their change history, the portal's rate-limit windows
(COMP-CHANNELS), and the indexes the reports select tickets and step clocks by.

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

TS = sa.DateTime(timezone=True)
BIG_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_index("ix_complaint_tickets_accepted_at", "complaint_tickets", ["accepted_at"])
    op.create_index("ix_complaint_steps_completed_at", "complaint_steps", ["completed_at"])
    op.create_index("ix_complaint_steps_breached_at", "complaint_steps", ["breached_at"])
    op.create_table(
        "complaint_case_profiles",
        sa.Column("case_id", sa.String(64), nullable=False),
        sa.Column("region", sa.String(32), nullable=True),
        sa.Column("customer_group", sa.String(64), nullable=True),
        sa.Column("case_type", sa.String(64), nullable=True),
        sa.Column("debtor_timezone", sa.String(64), nullable=True),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("case_id", name="pk_complaint_case_profiles"),
    )
    op.create_table(
        "complaint_case_stages",
        sa.Column("case_id", sa.String(64), nullable=False),
        sa.Column("since", TS, nullable=False),
        sa.Column("bucket", sa.String(8), nullable=False),
        sa.PrimaryKeyConstraint("case_id", "since", name="pk_complaint_case_stages"),
    )
    op.create_table(
        "complaint_corrective_actions",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("ticket_id", sa.String(36), nullable=True),
        sa.Column("finding", sa.Text, nullable=True),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("owner", sa.String(128), nullable=False),
        sa.Column("deadline", TS, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("done_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_complaint_corrective_actions"),
        sa.ForeignKeyConstraint(
            ["ticket_id"],
            ["complaint_tickets.id"],
            name="fk_complaint_corrective_actions_ticket_id_complaint_tickets",
        ),
    )
    op.create_index(
        "ix_complaint_corrective_actions_status_deadline",
        "complaint_corrective_actions",
        ["status", "deadline"],
    )
    op.create_index(
        "ix_complaint_corrective_actions_created",
        "complaint_corrective_actions",
        ["created_at", "id"],
    )
    op.create_index(
        "ix_complaint_corrective_actions_ticket_id", "complaint_corrective_actions", ["ticket_id"]
    )
    op.create_table(
        "complaint_corrective_action_changes",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("action_id", sa.String(36), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("changes", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_complaint_corrective_action_changes"),
        sa.ForeignKeyConstraint(
            ["action_id"],
            ["complaint_corrective_actions.id"],
            name="fk_complaint_corrective_action_changes_action",
        ),
    )
    op.create_index(
        "ix_complaint_corrective_action_changes_action",
        "complaint_corrective_action_changes",
        ["action_id", "id"],
    )
    op.create_table(
        "complaint_portal_rate",
        sa.Column("client", sa.String(64), nullable=False),
        sa.Column("window_start", TS, nullable=False),
        sa.Column("hits", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("client", "window_start", name="pk_complaint_portal_rate"),
    )
    op.create_index(
        "ix_complaint_portal_rate_window_start", "complaint_portal_rate", ["window_start"]
    )


def downgrade() -> None:
    op.drop_index("ix_complaint_portal_rate_window_start", table_name="complaint_portal_rate")
    op.drop_table("complaint_portal_rate")
    op.drop_index(
        "ix_complaint_corrective_action_changes_action",
        table_name="complaint_corrective_action_changes",
    )
    op.drop_table("complaint_corrective_action_changes")
    op.drop_index(
        "ix_complaint_corrective_actions_ticket_id", table_name="complaint_corrective_actions"
    )
    op.drop_index(
        "ix_complaint_corrective_actions_created", table_name="complaint_corrective_actions"
    )
    op.drop_index(
        "ix_complaint_corrective_actions_status_deadline",
        table_name="complaint_corrective_actions",
    )
    op.drop_table("complaint_corrective_actions")
    op.drop_table("complaint_case_stages")
    op.drop_table("complaint_case_profiles")
    op.drop_index("ix_complaint_steps_breached_at", table_name="complaint_steps")
    op.drop_index("ix_complaint_steps_completed_at", table_name="complaint_steps")
    op.drop_index("ix_complaint_tickets_accepted_at", table_name="complaint_tickets")
