"""The read model fed by case.events and contact.events: which debtor (and bank, and agent)
a case is, and the debtor's call recordings, SMS and letters kept for evidence (ids, URIs
and references only, ``domain.evidence``); the statistics dimensions of a case (region,
customer group, case type: codes) and its collection stage over time (COMP-STATS)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from collect_common.db import dialect_insert
from complaint_svc.adapters.stats_tables import case_profiles, case_stages
from complaint_svc.adapters.tables import contact_records, known_cases, recordings
from complaint_svc.domain.evidence import ContactRecord, RecordKind

EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
"""The ``since`` of the bucket a case was imported in: it holds until the first change."""


@dataclass(frozen=True)
class KnownCase:
    case_id: str
    debtor_id: str
    bank_id: str | None
    agent_id: str | None


@dataclass(frozen=True)
class CaseProfile:
    """A case's statistics dimensions (COMP-STATS); None: the bank did not send it."""

    case_id: str
    region: str | None
    customer_group: str | None
    case_type: str | None
    debtor_timezone: str | None


@dataclass(frozen=True)
class Recording:
    call_id: str
    debtor_id: str
    case_id: str | None
    agent_id: str | None
    recording_uri: str
    recorded_at: datetime


class ReadModel:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def case_seen(
        self,
        case_id: str,
        debtor_id: str,
        at: datetime,
        *,
        bank_id: str | None = None,
        agent_id: str | None = None,
    ) -> None:
        """Record the case (insert, or fill in what this event tells: bank, agent)."""
        values: dict[str, object] = {"debtor_id": debtor_id, "updated_at": at}
        if bank_id is not None:
            values["bank_id"] = bank_id
        if agent_id is not None:
            values["agent_id"] = agent_id
        stmt = dialect_insert(self.session, known_cases).values(case_id=case_id, **values)
        await self.session.execute(
            stmt.on_conflict_do_update(index_elements=[known_cases.c.case_id], set_=values)
        )

    async def case(self, case_id: str) -> KnownCase | None:
        row = (
            (
                await self.session.execute(
                    select(known_cases).where(known_cases.c.case_id == case_id)
                )
            )
            .mappings()
            .one_or_none()
        )
        if row is None:
            return None
        return KnownCase(row["case_id"], row["debtor_id"], row["bank_id"], row["agent_id"])

    async def agent_moved(self, case_id: str, agent_id: str, at: datetime) -> None:
        await self.session.execute(
            update(known_cases)
            .where(known_cases.c.case_id == case_id)
            .values(agent_id=agent_id, updated_at=at)
        )

    async def add_recording(self, rec: Recording) -> None:
        """Keep a call's recording (once per call, whatever is redelivered)."""
        stmt = dialect_insert(self.session, recordings).values(
            call_id=rec.call_id,
            debtor_id=rec.debtor_id,
            case_id=rec.case_id,
            agent_id=rec.agent_id,
            recording_uri=rec.recording_uri,
            recorded_at=rec.recorded_at,
        )
        await self.session.execute(stmt.on_conflict_do_nothing(index_elements=["call_id"]))

    async def recordings_of(self, debtor_id: str, since: datetime) -> list[Recording]:
        """The debtor's recordings made since ``since``, oldest first."""
        query = (
            select(recordings)
            .where(recordings.c.debtor_id == debtor_id, recordings.c.recorded_at >= since)
            .order_by(recordings.c.recorded_at, recordings.c.call_id)
        )
        rows = (await self.session.execute(query)).mappings().all()
        return [
            Recording(
                call_id=r["call_id"],
                debtor_id=r["debtor_id"],
                case_id=r["case_id"],
                agent_id=r["agent_id"],
                recording_uri=r["recording_uri"],
                recorded_at=r["recorded_at"],
            )
            for r in rows
        ]

    async def add_record(self, record: ContactRecord) -> None:
        """Keep an SMS or a letter's dispatch, delivery or return (once per kind and id)."""
        stmt = dialect_insert(self.session, contact_records).values(
            kind=record.kind.value,
            reference=record.reference,
            debtor_id=record.debtor_id,
            case_id=record.case_id,
            agent_id=record.agent_id,
            occurred_at=record.occurred_at,
            proof_ref=record.proof_ref,
        )
        await self.session.execute(
            stmt.on_conflict_do_nothing(
                index_elements=[contact_records.c.kind, contact_records.c.reference]
            )
        )

    async def records_of(self, debtor_id: str, since: datetime) -> list[ContactRecord]:
        """The debtor's SMS and letter records since ``since``, oldest first."""
        c = contact_records.c
        query = (
            select(contact_records)
            .where(c.debtor_id == debtor_id, c.occurred_at >= since)
            .order_by(c.occurred_at, c.kind, c.reference)
        )
        rows = (await self.session.execute(query)).mappings().all()
        return [
            ContactRecord(
                kind=RecordKind(r["kind"]),
                reference=r["reference"],
                debtor_id=r["debtor_id"],
                case_id=r["case_id"],
                agent_id=r["agent_id"],
                occurred_at=r["occurred_at"],
                proof_ref=r["proof_ref"],
            )
            for r in rows
        ]

    async def lock_debtor(self, debtor_id: str) -> None:
        """Serialise, per debtor, a ticket opening and a contact record arriving (until the
        transaction ends): each then sees the other, so a record is neither missed nor
        attached twice. PostgreSQL only: SQLite runs one writer at a time anyway."""
        if self.session.get_bind().dialect.name == "postgresql":
            key = func.hashtext("complaint-debtor:" + debtor_id)
            await self.session.execute(select(func.pg_advisory_xact_lock(key)))

    # -- COMP-STATS: a case's dimensions and its collection stage over time ----------------

    async def profile_case(self, profile: CaseProfile, at: datetime) -> None:
        """Record the case's dimensions (insert, or replace what the import tells)."""
        values: dict[str, object] = {
            "region": profile.region,
            "customer_group": profile.customer_group,
            "case_type": profile.case_type,
            "debtor_timezone": profile.debtor_timezone,
            "updated_at": at,
        }
        stmt = dialect_insert(self.session, case_profiles).values(case_id=profile.case_id, **values)
        await self.session.execute(
            stmt.on_conflict_do_update(index_elements=[case_profiles.c.case_id], set_=values)
        )

    async def profile(self, case_id: str) -> CaseProfile | None:
        query = select(case_profiles).where(case_profiles.c.case_id == case_id)
        row = (await self.session.execute(query)).mappings().one_or_none()
        if row is None:
            return None
        return CaseProfile(
            row["case_id"],
            row["region"],
            row["customer_group"],
            row["case_type"],
            row["debtor_timezone"],
        )

    async def stage_from(self, case_id: str, since: datetime, bucket: str) -> None:
        """The case is in ``bucket`` from ``since`` on (once per instant: a redelivered
        change records nothing new)."""
        stmt = dialect_insert(self.session, case_stages).values(
            case_id=case_id, since=since, bucket=bucket
        )
        await self.session.execute(
            stmt.on_conflict_do_nothing(index_elements=[case_stages.c.case_id, case_stages.c.since])
        )
