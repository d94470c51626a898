"""Tables of case assignment (agents and teams), in case-svc's shared ``metadata``.

``agents`` holds who may be handed cases: their team, the skills they work
(strategy tracks and/or delinquency buckets, comma-separated), how many open
cases they may carry, and whether they may work at all (``suspended`` by QA:
QA-SANCTION). An agent's load is not stored: it is the count of open cases
assigned to them, which ``ix_cases_agent_id_status`` makes one index scan.
Migration 0005 creates both.

``case_assignment_log`` is the audit trail of who held a case: one row per
assignment or unassignment, with the reason, the rule that caused it and who
acted (ops' principal, ``assignment-run``, ``qa-svc``). It is written in the
same transaction as the case and its event. Migration 0007 creates it.
"""

from sqlalchemy import CheckConstraint, Column, Index, Integer, String, Table

from case_svc.adapters.tables import cases, metadata
from collect_common.db import BigId, UtcDateTime

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

case_assignment_log = Table(
    "case_assignment_log",
    metadata,
    Column("seq", BigId, primary_key=True, autoincrement=True),
    Column("case_id", String(36), nullable=False),
    Column("action", String(16), nullable=False),  # assigned | unassigned
    Column("agent_id", String(64), nullable=True),  # the new agent (null: unassigned)
    Column("team_id", String(64), nullable=True),
    Column("previous_agent_id", String(64), nullable=True),
    Column("reason", String(32), nullable=False),  # ops | run | agent_suspended
    Column("rule_id", String(32), nullable=True),
    Column("actor", String(64), nullable=False),
    Column("at", UtcDateTime, nullable=False),
    Index("ix_case_assignment_log_case_id_seq", "case_id", "seq"),
)
