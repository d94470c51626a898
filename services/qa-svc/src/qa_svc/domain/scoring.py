"""Scorecards, review tasks and calibration (QA-SCORE): pure functions, no I/O.

- **A scorecard** (``scorecard_id`` and ``version``; a new definition is a new version,
  old ones stay readable, scores record the version they used) has weighted sections,
  each one of ``compliance``, ``attitude`` and ``competence`` at most once, weights
  positive and summing to 100. A section holds items:

  - ``points`` items: ``0 … max_points`` awarded; ``allow_na`` items (e.g. "offers an
    installment plan when fitting") may be answered not applicable and then count in
    neither numerator nor denominator;
  - ``critical`` items (auto-fail): passed or failed. A failed critical item zeroes the
    whole score (``auto_failed``), e.g. a wrong amount or interest quoted, a disclosure
    to a third party.

- **The score**, in Decimal: a section's score is ``100 × awarded / max`` over its
  applicable points items; the total is the weighted mean of the sections that have an
  applicable item (weights renormalised over them), rounded half-up to 0.01. Every item
  must be answered exactly once.
- **A review task** moves ``open → scored → disputed → decided``; the agent may dispute
  a scored task within the policy's window; a supervisor upholds the score or amends it.
- **Assignment** is least-loaded: each task goes to the active specialist with the
  fewest open tasks, ties broken by the specialist's id, the count updated as tasks
  are handed out.
- **Calibration**: several specialists score the same record; the spread is
  ``max − min`` and the population standard deviation of their scores.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum

RULE = "QA-SCORE"
FEEDBACK_RULE = "QA-FEEDBACK"
CENT = Decimal("0.01")
HUNDRED = Decimal(100)


class SectionName(StrEnum):
    COMPLIANCE = "compliance"
    ATTITUDE = "attitude"
    COMPETENCE = "competence"


class ItemKind(StrEnum):
    POINTS = "points"
    CRITICAL = "critical"  # auto-fail


class ScoringError(ValueError):
    """A definition or a set of answers that cannot be used; names the offending field."""

    def __init__(self, field: str, detail: str) -> None:
        super().__init__(detail)
        self.field = field


@dataclass(frozen=True, slots=True)
class Item:
    id: str
    label: str
    kind: ItemKind = ItemKind.POINTS
    max_points: Decimal = Decimal(0)
    allow_na: bool = False


@dataclass(frozen=True, slots=True)
class Section:
    name: SectionName
    weight: Decimal
    items: tuple[Item, ...]


@dataclass(frozen=True, slots=True)
class Scorecard:
    scorecard_id: str
    version: int
    sections: tuple[Section, ...]

    def items(self) -> dict[str, tuple[SectionName, Item]]:
        return {i.id: (s.name, i) for s in self.sections for i in s.items}


def validate(sections: Sequence[Section]) -> None:
    """``ScoringError`` naming the field unless the sections make a usable scorecard."""
    if not sections:
        raise ScoringError("sections", "a scorecard needs at least one section")
    names = [s.name for s in sections]
    if len(set(names)) != len(names):
        raise ScoringError("sections", "each section (compliance, attitude, competence) once")
    if any(s.weight <= 0 for s in sections):
        raise ScoringError("sections.weight", "section weights must be positive")
    total = sum((s.weight for s in sections), Decimal(0))
    if total != HUNDRED:
        raise ScoringError("sections.weight", f"section weights must sum to 100, not {total}")
    seen: set[str] = set()
    for s in sections:
        if not s.items:
            raise ScoringError("sections.items", f"section {s.name.value} has no item")
        if not any(i.kind is ItemKind.POINTS for i in s.items):
            raise ScoringError(
                "sections.items", f"section {s.name.value} has no points item to score"
            )
        for i in s.items:
            if i.id in seen:
                raise ScoringError("sections.items.id", f"item id {i.id!r} is used twice")
            seen.add(i.id)
            if i.kind is ItemKind.POINTS and i.max_points <= 0:
                raise ScoringError(
                    "sections.items.max_points", f"item {i.id!r}: max_points must be positive"
                )
            if i.kind is ItemKind.CRITICAL and (i.max_points != 0 or i.allow_na):
                raise ScoringError(
                    "sections.items.kind",
                    f"item {i.id!r}: a critical item is passed or failed, without points or n/a",
                )


@dataclass(frozen=True, slots=True)
class Answer:
    item_id: str
    points: Decimal | None = None  # points items
    passed: bool | None = None  # critical items
    na: bool = False


@dataclass(frozen=True, slots=True)
class Result:
    score: Decimal  # 0.00 … 100.00, 0 when auto-failed
    auto_failed: bool
    raw_score: Decimal  # the weighted score before any auto-fail
    sections: dict[SectionName, Decimal | None]  # none: nothing applicable
    failed_items: tuple[str, ...]  # critical items failed


def _q(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def compute(card: Scorecard, answers: Iterable[Answer]) -> Result:
    """The score of ``answers`` on ``card``; ``ScoringError`` naming the field if they do
    not answer every item exactly once, in the item's own terms."""
    items = card.items()
    given: dict[str, Answer] = {}
    for a in answers:
        if a.item_id not in items:
            raise ScoringError("answers.item_id", f"no item {a.item_id!r} on this scorecard")
        if a.item_id in given:
            raise ScoringError("answers.item_id", f"item {a.item_id!r} is answered twice")
        given[a.item_id] = a
    missing = [i for i in items if i not in given]
    if missing:
        raise ScoringError("answers", f"items not answered: {', '.join(sorted(missing))}")

    failed: list[str] = []
    section_scores: dict[SectionName, Decimal | None] = {}
    for section in card.sections:
        awarded = Decimal(0)
        possible = Decimal(0)
        for item in section.items:
            a = given[item.id]
            if item.kind is ItemKind.CRITICAL:
                if a.passed is None or a.points is not None or a.na:
                    raise ScoringError(
                        "answers.passed", f"item {item.id!r} is critical: answer passed true/false"
                    )
                if not a.passed:
                    failed.append(item.id)
                continue
            if a.passed is not None:
                raise ScoringError("answers.points", f"item {item.id!r} is scored in points")
            if a.na:
                if not item.allow_na:
                    raise ScoringError(
                        "answers.na", f"item {item.id!r} may not be answered not applicable"
                    )
                if a.points is not None:
                    raise ScoringError("answers.na", f"item {item.id!r}: points or n/a, not both")
                continue
            if a.points is None or not 0 <= a.points <= item.max_points:
                raise ScoringError(
                    "answers.points",
                    f"item {item.id!r}: points between 0 and {item.max_points}",
                )
            awarded += a.points
            possible += item.max_points
        section_scores[section.name] = HUNDRED * awarded / possible if possible else None

    weights = {s.name: s.weight for s in card.sections if section_scores[s.name] is not None}
    if not weights:
        raise ScoringError("answers", "no applicable item: nothing to score")
    weighted = sum((w * (section_scores[n] or Decimal(0)) for n, w in weights.items()), Decimal(0))
    raw = _q(weighted / sum(weights.values(), Decimal(0)))
    shown = {n: (None if v is None else _q(v)) for n, v in section_scores.items()}
    auto = bool(failed)
    return Result(
        score=_q(Decimal(0)) if auto else raw,
        auto_failed=auto,
        raw_score=raw,
        sections=shown,
        failed_items=tuple(failed),
    )


def is_defective(score: Decimal, auto_failed: bool, threshold: Decimal) -> bool:
    """A reviewed record is defective when auto-failed or scored below the threshold."""
    return auto_failed or score < threshold


# --- review tasks ------------------------------------------------------------------------


class ReviewStatus(StrEnum):
    OPEN = "open"
    SCORED = "scored"
    DISPUTED = "disputed"
    DECIDED = "decided"


class ReviewKind(StrEnum):
    SAMPLE = "sample"  # the random part of a weekly sample
    RISK = "risk"  # a risk pick of a weekly sample
    RECHECK = "recheck"  # a substantiated complaint's re-check of the agent (QA-FEEDBACK)


class Action(StrEnum):
    SCORE = "score"
    DISPUTE = "dispute"
    DECIDE = "decide"


_FROM = {
    Action.SCORE: (ReviewStatus.OPEN, ReviewStatus.SCORED),
    Action.DISPUTE: (ReviewStatus.SCORED, ReviewStatus.DISPUTED),
    Action.DECIDE: (ReviewStatus.DISPUTED, ReviewStatus.DECIDED),
}


class IllegalTransition(Exception):
    def __init__(self, action: Action, current: ReviewStatus) -> None:
        super().__init__(f"cannot {action.value} a review task that is {current.value}")
        self.action = action
        self.current = current


def transition(current: ReviewStatus, action: Action) -> ReviewStatus:
    source, target = _FROM[action]
    if current is not source:
        raise IllegalTransition(action, current)
    return target


def dispute_deadline(scored_at: datetime, window: timedelta) -> datetime:
    """The last instant (exclusive) the agent may dispute a score."""
    return scored_at + window


class Decision(StrEnum):
    UPHELD = "upheld"
    AMENDED = "amended"


# --- assignment ----------------------------------------------------------------------------


def assign(tasks: Sequence[str], loads: Mapping[str, int]) -> dict[str, str]:
    """Task id -> specialist: each to the least loaded (open tasks), ties by id."""
    if not loads:
        return {}
    current = dict(loads)
    out: dict[str, str] = {}
    for task in tasks:
        who = min(current, key=lambda s: (current[s], s))
        out[task] = who
        current[who] += 1
    return out


# --- calibration -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Spread:
    count: int
    mean: Decimal | None
    range: Decimal | None  # max − min
    stddev: Decimal | None  # population standard deviation


def spread(scores: Sequence[Decimal]) -> Spread:
    if not scores:
        return Spread(0, None, None, None)
    n = Decimal(len(scores))
    mean = sum(scores, Decimal(0)) / n
    variance = sum(((s - mean) ** 2 for s in scores), Decimal(0)) / n
    return Spread(len(scores), _q(mean), _q(max(scores) - min(scores)), _q(variance.sqrt()))
