"""Agents' teams as case-svc last assigned them (QA-SCORE reports per team), on qa-svc's
metadata.

``qa_agents`` is fed by ``case.assigned.v1`` (case.events): one row per agent, the team
of the latest assignment applied. ``updated_at`` is that assignment's ``assigned_at``,
so an older assignment delivered late (another case's partition) changes nothing. A
null team: case-svc assigned without knowing the agent's team.
"""

from sqlalchemy import Column, String, Table

from collect_common.db import UtcDateTime
from qa_svc.adapters.tables import metadata

qa_agents = Table(
    "qa_agents",
    metadata,
    Column("agent_id", String(64), primary_key=True),
    Column("team_id", String(64), nullable=True),
    Column("updated_at", UtcDateTime, nullable=False),  # the applied assignment's time
)
