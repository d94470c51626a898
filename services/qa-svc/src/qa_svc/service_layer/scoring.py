"""Scorecard versions and calibration sessions (QA-SCORE), in one unit of work.

A scorecard's new definition is its next version (``max + 1``, the insert racing a
concurrent one fails on the primary key rather than overwrite). Scoring always uses the
current (highest) version and records it; a calibration session pins the version current
when it opens, so every specialist in it scores against the same definition.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from collect_common.db import UnitOfWork
from qa_svc.adapters.scoring_tables import (
    calibration_sessions,
    qa_staff,
    review_scores,
    scorecard_versions,
)
from qa_svc.domain.scoring import (
    Answer,
    Item,
    ItemKind,
    Result,
    Scorecard,
    Section,
    SectionName,
    Spread,
    compute,
    spread,
    validate,
)


class ScoringRefused(Exception):
    """Why a scoring step is refused; ``status`` and ``code`` for the API."""

    def __init__(self, status: int, code: str, detail: str, field: str | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.field = field


# --- definitions as JSON -------------------------------------------------------------------


def to_json(sections: Sequence[Section]) -> str:
    return json.dumps(
        {
            "sections": [
                {
                    "name": s.name.value,
                    "weight": str(s.weight),
                    "items": [
                        {
                            "id": i.id,
                            "label": i.label,
                            "kind": i.kind.value,
                            "max_points": str(i.max_points),
                            "allow_na": i.allow_na,
                        }
                        for i in s.items
                    ],
                }
                for s in sections
            ]
        }
    )


def from_row(row: Any) -> Scorecard:
    data = json.loads(row.definition)
    return Scorecard(
        scorecard_id=row.scorecard_id,
        version=row.version,
        sections=tuple(
            Section(
                name=SectionName(s["name"]),
                weight=Decimal(s["weight"]),
                items=tuple(
                    Item(
                        id=i["id"],
                        label=i["label"],
                        kind=ItemKind(i["kind"]),
                        max_points=Decimal(i["max_points"]),
                        allow_na=bool(i["allow_na"]),
                    )
                    for i in s["items"]
                ),
            )
            for s in data["sections"]
        ),
    )


def answers_json(answers: Sequence[Answer]) -> str:
    return json.dumps(
        [
            {
                "item_id": a.item_id,
                "points": None if a.points is None else str(a.points),
                "passed": a.passed,
                "na": a.na,
            }
            for a in answers
        ]
    )


def sections_json(result: Result) -> str:
    return json.dumps({k.value: None if v is None else str(v) for k, v in result.sections.items()})


# --- staff -----------------------------------------------------------------------------------


async def is_supervisor(session: AsyncSession, subject: str) -> bool:
    row = (
        await session.execute(
            select(qa_staff.c.supervisor).where(
                qa_staff.c.subject == subject, qa_staff.c.active.is_(True)
            )
        )
    ).first()
    return bool(row is not None and row.supervisor)


async def require_supervisor(session: AsyncSession, subject: str, what: str) -> None:
    if not await is_supervisor(session, subject):
        raise ScoringRefused(
            403, "not-supervisor", f"only an active QA supervisor may {what}", field=None
        )


# --- scorecards ------------------------------------------------------------------------------


async def new_version(
    uow: UnitOfWork,
    *,
    scorecard_id: str,
    sections: Sequence[Section],
    by: str,
    now: datetime,
) -> Scorecard:
    """Validate and keep the next version of the scorecard (supervisors only)."""
    await require_supervisor(uow.session, by, "define a scorecard")
    validate(sections)
    latest = (
        await uow.session.execute(
            select(func.max(scorecard_versions.c.version)).where(
                scorecard_versions.c.scorecard_id == scorecard_id
            )
        )
    ).scalar_one()
    version = (latest or 0) + 1
    try:
        async with uow.session.begin_nested():
            await uow.session.execute(
                scorecard_versions.insert().values(
                    scorecard_id=scorecard_id,
                    version=version,
                    definition=to_json(sections),
                    created_by=by,
                    created_at=now,
                )
            )
    except IntegrityError:
        raise ScoringRefused(
            409, "concurrent-version", f"version {version} of {scorecard_id} was just made"
        ) from None
    return Scorecard(scorecard_id, version, tuple(sections))


async def load_scorecard(
    session: AsyncSession, scorecard_id: str, version: int | None = None
) -> tuple[Scorecard, Any] | None:
    """The given version, else the current one, with its row; none if there is none."""
    query = select(scorecard_versions).where(scorecard_versions.c.scorecard_id == scorecard_id)
    if version is not None:
        query = query.where(scorecard_versions.c.version == version)
    row = (await session.execute(query.order_by(scorecard_versions.c.version.desc()))).first()
    return None if row is None else (from_row(row), row)


async def current_scorecard(session: AsyncSession, scorecard_id: str) -> Scorecard:
    found = await load_scorecard(session, scorecard_id)
    if found is None:
        raise ScoringRefused(
            409, "no-scorecard", f"no scorecard {scorecard_id!r} is defined", "scorecard_id"
        )
    return found[0]


async def keep_score(
    uow: UnitOfWork,
    *,
    card: Scorecard,
    answers: Sequence[Answer],
    result: Result,
    scorer: str,
    comment: str | None,
    now: datetime,
    task_id: str | None = None,
    calibration_id: str | None = None,
) -> str:
    score_id = str(uuid.uuid4())
    await uow.session.execute(
        review_scores.insert().values(
            id=score_id,
            task_id=task_id,
            calibration_id=calibration_id,
            scorer=scorer,
            scorecard_id=card.scorecard_id,
            scorecard_version=card.version,
            answers=answers_json(answers),
            sections=sections_json(result),
            score=result.score,
            raw_score=result.raw_score,
            auto_failed=result.auto_failed,
            failed_items=json.dumps(list(result.failed_items)),
            comment=comment,
            scored_at=now,
        )
    )
    return score_id


# --- calibration -----------------------------------------------------------------------------


async def open_calibration(
    uow: UnitOfWork, *, record_id: str, scorecard_id: str, by: str, now: datetime
) -> Any:
    await require_supervisor(uow.session, by, "open a calibration session")
    card = await current_scorecard(uow.session, scorecard_id)
    session_id = str(uuid.uuid4())
    await uow.session.execute(
        calibration_sessions.insert().values(
            id=session_id,
            record_id=record_id,
            scorecard_id=card.scorecard_id,
            scorecard_version=card.version,
            created_by=by,
            created_at=now,
        )
    )
    query = select(calibration_sessions).where(calibration_sessions.c.id == session_id)
    return (await uow.session.execute(query)).one()


async def score_calibration(
    uow: UnitOfWork,
    *,
    calibration_id: str,
    answers: Sequence[Answer],
    comment: str | None,
    by: str,
    now: datetime,
) -> Result:
    """One specialist's score in the session, against the session's version; once each."""
    row = (
        await uow.session.execute(
            select(calibration_sessions).where(calibration_sessions.c.id == calibration_id)
        )
    ).first()
    if row is None:
        raise ScoringRefused(404, "not-found", f"no calibration session {calibration_id}")
    found = await load_scorecard(uow.session, row.scorecard_id, row.scorecard_version)
    assert found is not None  # versions are never deleted
    card = found[0]
    result = compute(card, answers)
    try:
        async with uow.session.begin_nested():
            await keep_score(
                uow,
                card=card,
                answers=answers,
                result=result,
                scorer=by,
                comment=comment,
                now=now,
                calibration_id=calibration_id,
            )
    except IntegrityError:
        raise ScoringRefused(
            409, "already-scored", f"{by} has already scored calibration {calibration_id}"
        ) from None
    return result


@dataclass(frozen=True)
class CalibrationView:
    session: Any
    scores: list[Any]
    spread: Spread


async def calibration_view(session: AsyncSession, calibration_id: str) -> CalibrationView | None:
    row = (
        await session.execute(
            select(calibration_sessions).where(calibration_sessions.c.id == calibration_id)
        )
    ).first()
    if row is None:
        return None
    scores = (
        await session.execute(
            select(review_scores)
            .where(review_scores.c.calibration_id == calibration_id)
            .order_by(review_scores.c.scored_at, review_scores.c.scorer)
        )
    ).all()
    return CalibrationView(row, list(scores), spread([s.score for s in scores]))
