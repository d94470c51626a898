"""Bulk intake

No schema change: set-wise intake (COPY of cases, change-feed and outbox rows, the
bank's existing contracts found through ``uq_cases_bank_contract``) uses the tables
and indexes as they are. The revision stays so that the chain 0005 -> 0006 -> 0007
holds on every database already at 0006.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28
"""

from collections.abc import Sequence

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Nothing to change (see the module docstring)."""


def downgrade() -> None:
    """Nothing to undo."""
