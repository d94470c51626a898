"""The audit trail (SEC-EXPORT, SEC-AUDIT): who exported what, when, in which role and why

A hash-chained, append-only table (``collect_common.audit``).

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-28
"""

from collections.abc import Sequence

from collect_common.audit import create_audit_table, drop_audit_table

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_audit_table()


def downgrade() -> None:
    drop_audit_table()
