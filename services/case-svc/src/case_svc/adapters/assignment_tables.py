"""Tables of case assignment (agents and teams), in case-svc's shared ``metadata``.

``agents`` holds who may be handed cases: their team, the skills they work
(strategy tracks and/or delinquency buckets, comma-separated), how many open
cases they may carry, and whether they may work at all (``suspended`` by QA:
QA-SANCTION). An agent's load is not stored: it is the count of open cases
assigned to them, which ``ix_cases_agent_id_status`` makes one index scan.
Migration 0005 creates both.
"""

from sqlalchemy import CheckConstraint, Column, Index, Integer, String, Table

from case_svc.adapters.tables import cases, metadata
from collect_common.db import UtcDateTime

agents = Table(
    "agents",
    metadata,
    Column("agent_id", String(64), primary_key=True),
    Column("team_id", String(64), nullable=True),  # null: known only from a QA event
    Column("skills", String(200), nullable=False),  # comma-separated tracks and buckets
    Column("capacity", Integer, nullable=False),
    Column("status", String(16), nullable=False),  # active | suspended | inactive
    Column("updated_at", UtcDateTime, nullable=False),
    CheckConstraint("capacity >= 0", name="capacity_non_negative"),
)

# Loads (open cases per agent) and the unassigned open cases an assignment run takes.
ix_cases_agent_id_status = Index("ix_cases_agent_id_status", cases.c.agent_id, cases.c.status)
