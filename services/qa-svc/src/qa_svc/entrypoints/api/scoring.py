"""Scorecards and calibration sessions (QA-SCORE).

Defining a scorecard version and opening a calibration session are a QA supervisor's
(role ``qa`` and a supervisor in the staff pool); scoring in a session any specialist's
(``qa``); reading also ``ops`` and ``auditor``.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Path
from pydantic import BaseModel, ConfigDict, Field

from collect_common.runtime import ServiceRuntime
from collect_common.security.auth import Principal, Role
from collect_common.web.auth import require_roles
from collect_common.web.problems import ProblemError
from qa_svc.domain.scoring import (
    Answer,
    Item,
    ItemKind,
    Result,
    Scorecard,
    Section,
    SectionName,
)
from qa_svc.entrypoints.api.common import RuntimeDep, masked, scoring_problems, section_scores
from qa_svc.service_layer.scoring import (
    calibration_view,
    load_scorecard,
    new_version,
    open_calibration,
    score_calibration,
)

router = APIRouter(prefix="/v1", tags=["scoring"])
ScorecardId = Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")
CalibrationId = Path(min_length=1, max_length=36)
MAX_VERSION = 2**31 - 1  # versions are stored as 32-bit integers


QaOnly = Annotated[Principal, require_roles(Role.QA)]
READERS = [require_roles(Role.QA, Role.OPS, Role.AUDITOR)]


# --- shapes ----------------------------------------------------------------------------------


class ItemIn(BaseModel):
    id: str = Field(min_length=1, max_length=64, examples=["correct_amounts"])
    label: str = Field(min_length=1, max_length=300, examples=["States amounts and interest"])
    kind: ItemKind = ItemKind.POINTS
    max_points: Decimal = Field(default=Decimal(0), ge=0, le=1000, decimal_places=2)
    allow_na: bool = False


class SectionIn(BaseModel):
    name: SectionName
    weight: Decimal = Field(gt=0, le=100, decimal_places=2, description="Weights sum to 100")
    items: list[ItemIn] = Field(min_length=1, max_length=100)


class ScorecardIn(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "sections": [
                        {
                            "name": "compliance",
                            "weight": "50",
                            "items": [
                                {"id": "identity", "label": "Verifies identity", "max_points": 10},
                                {
                                    "id": "no_disclosure",
                                    "label": "No disclosure to third parties",
                                    "kind": "critical",
                                },
                            ],
                        },
                        {
                            "name": "attitude",
                            "weight": "20",
                            "items": [{"id": "polite", "label": "Polite", "max_points": 5}],
                        },
                        {
                            "name": "competence",
                            "weight": "30",
                            "items": [
                                {
                                    "id": "correct_amounts",
                                    "label": "Correct amounts and interest",
                                    "max_points": 10,
                                },
                                {
                                    "id": "offers_plan",
                                    "label": "Offers installments when fitting",
                                    "max_points": 5,
                                    "allow_na": True,
                                },
                            ],
                        },
                    ]
                }
            ]
        }
    )

    sections: list[SectionIn] = Field(min_length=1, max_length=3)

    def domain(self) -> list[Section]:
        return [
            Section(
                name=s.name,
                weight=s.weight,
                items=tuple(Item(i.id, i.label, i.kind, i.max_points, i.allow_na) for i in s.items),
            )
            for s in self.sections
        ]


class ScorecardOut(BaseModel):
    scorecard_id: str
    version: int
    sections: list[SectionIn]
    created_by: str | None = None
    created_at: datetime | None = None

    @classmethod
    def of(cls, card: Scorecard, row: Any | None = None) -> ScorecardOut:
        return cls(
            scorecard_id=card.scorecard_id,
            version=card.version,
            sections=[
                SectionIn(
                    name=s.name,
                    weight=s.weight,
                    items=[
                        ItemIn(
                            id=i.id,
                            label=i.label,
                            kind=i.kind,
                            max_points=i.max_points,
                            allow_na=i.allow_na,
                        )
                        for i in s.items
                    ],
                )
                for s in card.sections
            ],
            created_by=row.created_by if row is not None else None,
            created_at=row.created_at if row is not None else None,
        )


class AnswerIn(BaseModel):
    item_id: str = Field(min_length=1, max_length=64)
    points: Decimal | None = Field(default=None, ge=0, le=1000, decimal_places=2)
    passed: bool | None = Field(default=None, description="Critical (auto-fail) items")
    na: bool = Field(default=False, description="Not applicable (items that allow it)")

    def domain(self) -> Answer:
        return Answer(self.item_id, self.points, self.passed, self.na)


class ResultOut(BaseModel):
    score: Decimal = Field(description="0–100; 0 when auto-failed")
    auto_failed: bool
    raw_score: Decimal = Field(description="The weighted score before any auto-fail")
    sections: dict[str, Decimal | None]
    failed_items: list[str]

    @classmethod
    def of(cls, r: Result) -> ResultOut:
        return cls(
            score=r.score,
            auto_failed=r.auto_failed,
            raw_score=r.raw_score,
            sections={k.value: v for k, v in r.sections.items()},
            failed_items=list(r.failed_items),
        )


class CalibrationIn(BaseModel):
    record_id: str = Field(min_length=1, max_length=64, description="The contact record")
    scorecard_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")


class CalibrationScoreIn(BaseModel):
    answers: list[AnswerIn] = Field(min_length=1, max_length=300)
    comment: str | None = Field(default=None, max_length=2000)


class CalibrationScoreOut(BaseModel):
    scorer: str
    score: Decimal
    auto_failed: bool
    sections: dict[str, Decimal | None]
    comment: str | None = Field(description="Masked (SEC-PII)")
    scored_at: datetime


class CalibrationOut(BaseModel):
    calibration_id: str
    record_id: str
    scorecard_id: str
    scorecard_version: int
    created_at: datetime
    scores: list[CalibrationScoreOut]
    count: int
    mean: Decimal | None
    spread: Decimal | None = Field(description="max − min of the scores")
    stddev: Decimal | None = Field(description="Population standard deviation of the scores")


# --- routes ----------------------------------------------------------------------------------


@router.post(
    "/scorecards/{scorecard_id}/versions",
    response_model=ScorecardOut,
    status_code=201,
    summary="Define the scorecard's next version (QA supervisors)",
    responses={403: {"description": "Not a QA supervisor"}, 422: {"description": "Invalid"}},
)
async def define(
    body: ScorecardIn, runtime: RuntimeDep, who: QaOnly, scorecard_id: str = ScorecardId
) -> ScorecardOut:
    with scoring_problems():
        async with runtime.uow() as uow:
            card = await new_version(
                uow,
                scorecard_id=scorecard_id,
                sections=body.domain(),
                by=who.subject,
                now=runtime.clock.now(),
            )
            await uow.commit()
    return await _card(runtime, scorecard_id, card.version)


async def _card(runtime: ServiceRuntime, scorecard_id: str, version: int | None) -> ScorecardOut:
    async with runtime.sessions() as session:
        found = await load_scorecard(session, scorecard_id, version)
    if found is None:
        raise ProblemError(404, f"no scorecard {scorecard_id!r} version {version}", field="version")
    return ScorecardOut.of(*found)


@router.get(
    "/scorecards/{scorecard_id}",
    response_model=ScorecardOut,
    summary="The scorecard's current version",
    dependencies=READERS,
)
async def current(runtime: RuntimeDep, scorecard_id: str = ScorecardId) -> ScorecardOut:
    return await _card(runtime, scorecard_id, None)


@router.get(
    "/scorecards/{scorecard_id}/versions/{version}",
    response_model=ScorecardOut,
    summary="One version of the scorecard, as scores that used it saw it",
    dependencies=READERS,
)
async def one_version(
    runtime: RuntimeDep,
    scorecard_id: str = ScorecardId,
    version: int = Path(ge=1, le=MAX_VERSION),
) -> ScorecardOut:
    return await _card(runtime, scorecard_id, version)


async def _calibration(runtime: ServiceRuntime, calibration_id: str) -> CalibrationOut:
    async with runtime.sessions() as session:
        view = await calibration_view(session, calibration_id)
    if view is None:
        raise ProblemError(404, f"no calibration session {calibration_id}", field="calibration_id")
    s = view.session
    return CalibrationOut(
        calibration_id=s.id,
        record_id=s.record_id,
        scorecard_id=s.scorecard_id,
        scorecard_version=s.scorecard_version,
        created_at=s.created_at,
        scores=[
            CalibrationScoreOut(
                scorer=r.scorer,
                score=r.score,
                auto_failed=r.auto_failed,
                sections=section_scores(r.sections),
                comment=masked(r.comment),
                scored_at=r.scored_at,
            )
            for r in view.scores
        ],
        count=view.spread.count,
        mean=view.spread.mean,
        spread=view.spread.range,
        stddev=view.spread.stddev,
    )


@router.post(
    "/calibrations",
    response_model=CalibrationOut,
    status_code=201,
    summary="Open a calibration session on a record, pinned to the scorecard's current version",
)
async def open_session(body: CalibrationIn, runtime: RuntimeDep, who: QaOnly) -> CalibrationOut:
    with scoring_problems():
        async with runtime.uow() as uow:
            row = await open_calibration(
                uow,
                record_id=body.record_id,
                scorecard_id=body.scorecard_id,
                by=who.subject,
                now=runtime.clock.now(),
            )
            await uow.commit()
    return await _calibration(runtime, row.id)


@router.post(
    "/calibrations/{calibration_id}/scores",
    response_model=ResultOut,
    status_code=201,
    summary="Score the session's record; once per specialist",
    responses={409: {"description": "Already scored by the caller"}},
)
async def score_in_session(
    body: CalibrationScoreIn,
    runtime: RuntimeDep,
    who: QaOnly,
    calibration_id: str = CalibrationId,
) -> ResultOut:
    with scoring_problems():
        async with runtime.uow() as uow:
            result = await score_calibration(
                uow,
                calibration_id=calibration_id,
                answers=[a.domain() for a in body.answers],
                comment=body.comment,
                by=who.subject,
                now=runtime.clock.now(),
            )
            await uow.commit()
    return ResultOut.of(result)


@router.get(
    "/calibrations/{calibration_id}",
    response_model=CalibrationOut,
    summary="Each specialist's score and the spread (max − min, standard deviation)",
    dependencies=READERS,
)
async def read_session(runtime: RuntimeDep, calibration_id: str = CalibrationId) -> CalibrationOut:
    return await _calibration(runtime, calibration_id)
