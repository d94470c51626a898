"""Scorecard arithmetic, review-task life, assignment and calibration spread (QA-SCORE)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from qa_svc.domain.policy import QaPolicy
from qa_svc.domain.scoring import (
    Action,
    Answer,
    IllegalTransition,
    Item,
    ItemKind,
    ReviewStatus,
    Scorecard,
    ScoringError,
    Section,
    SectionName,
    assign,
    compute,
    dispute_deadline,
    is_defective,
    spread,
    transition,
    validate,
)

D = Decimal


def card() -> Scorecard:
    return Scorecard(
        "calls",
        3,
        (
            Section(
                SectionName.COMPLIANCE,
                D(50),
                (
                    Item("identity", "Verifies identity", max_points=D(10)),
                    Item("disclosure", "No third-party disclosure", kind=ItemKind.CRITICAL),
                ),
            ),
            Section(SectionName.ATTITUDE, D(20), (Item("polite", "Polite", max_points=D(5)),)),
            Section(
                SectionName.COMPETENCE,
                D(30),
                (
                    Item("amounts", "Correct amounts and interest", max_points=D(10)),
                    Item("plan", "Offers installments", max_points=D(5), allow_na=True),
                ),
            ),
        ),
    )


def answers(**over: Answer) -> list[Answer]:
    base = {
        "identity": Answer("identity", points=D(8)),
        "disclosure": Answer("disclosure", passed=True),
        "polite": Answer("polite", points=D(5)),
        "amounts": Answer("amounts", points=D(7)),
        "plan": Answer("plan", points=D(2)),
    }
    base.update(over)
    return list(base.values())


def test_the_total_is_the_weighted_mean_of_the_sections_in_decimal() -> None:
    r = compute(card(), answers())
    # compliance 80, attitude 100, competence 9/15 = 60 -> 0.5*80 + 0.2*100 + 0.3*60 = 78
    assert r.sections == {
        SectionName.COMPLIANCE: D("80.00"),
        SectionName.ATTITUDE: D("100.00"),
        SectionName.COMPETENCE: D("60.00"),
    }
    assert r.score == D("78.00") and isinstance(r.score, Decimal)
    assert r.auto_failed is False and r.failed_items == ()


def test_rounding_is_half_up_to_the_cent() -> None:
    # competence 7/15 = 46.666…; 0.5*80 + 0.2*100 + 0.3*46.666… = 74.0
    r = compute(card(), answers(plan=Answer("plan", points=D(0))))
    assert r.sections[SectionName.COMPETENCE] == D("46.67")
    assert r.score == D("74.00")
    r = compute(card(), answers(polite=Answer("polite", points=D("4.5"))))
    # attitude 90 -> 40 + 18 + 18 = 76.00
    assert r.score == D("76.00")


def test_a_failed_critical_item_zeroes_the_score_but_keeps_the_raw_one() -> None:
    r = compute(card(), answers(disclosure=Answer("disclosure", passed=False)))
    assert r.auto_failed is True
    assert r.score == D("0.00")
    assert r.raw_score == D("78.00")
    assert r.failed_items == ("disclosure",)


def test_not_applicable_items_leave_the_denominator() -> None:
    r = compute(card(), answers(plan=Answer("plan", na=True)))
    assert r.sections[SectionName.COMPETENCE] == D("70.00")  # 7/10
    assert r.score == D("81.00")  # 40 + 20 + 21


def test_a_section_with_nothing_applicable_drops_out_and_weights_renormalise() -> None:
    c = Scorecard(
        "letters",
        1,
        (
            Section(SectionName.COMPLIANCE, D(60), (Item("a", "A", max_points=D(10)),)),
            Section(
                SectionName.COMPETENCE, D(40), (Item("b", "B", max_points=D(10), allow_na=True),)
            ),
        ),
    )
    r = compute(c, [Answer("a", points=D(9)), Answer("b", na=True)])
    assert r.sections[SectionName.COMPETENCE] is None
    assert r.score == D("90.00")


@pytest.mark.parametrize(
    ("given", "field"),
    [
        (answers()[:-1], "answers"),  # one item missing
        ([*answers(), Answer("polite", points=D(1))], "answers.item_id"),  # twice
        ([*answers(), Answer("nope", points=D(1))], "answers.item_id"),
        (answers(polite=Answer("polite", points=D(6))), "answers.points"),  # over max
        (answers(polite=Answer("polite", points=D(-1))), "answers.points"),
        (answers(polite=Answer("polite", na=True)), "answers.na"),  # n/a not allowed
        (answers(disclosure=Answer("disclosure", points=D(1))), "answers.passed"),
        (answers(polite=Answer("polite", passed=True)), "answers.points"),
    ],
)
def test_answers_that_do_not_fit_the_card_are_refused_naming_the_field(
    given: list[Answer], field: str
) -> None:
    with pytest.raises(ScoringError) as exc:
        compute(card(), given)
    assert exc.value.field == field


def test_definitions_must_weigh_100_and_name_each_section_once() -> None:
    validate(card().sections)
    item = (Item("x", "X", max_points=D(1)),)
    with pytest.raises(ScoringError, match="sum to 100"):
        validate([Section(SectionName.COMPLIANCE, D(90), item)])
    with pytest.raises(ScoringError, match="once"):
        validate(
            [
                Section(SectionName.COMPLIANCE, D(50), item),
                Section(SectionName.COMPLIANCE, D(50), (Item("y", "Y", max_points=D(1)),)),
            ]
        )
    with pytest.raises(ScoringError, match="used twice"):
        validate(
            [
                Section(SectionName.COMPLIANCE, D(50), item),
                Section(SectionName.ATTITUDE, D(50), item),
            ]
        )
    with pytest.raises(ScoringError, match="critical"):
        validate(
            [
                Section(
                    SectionName.COMPLIANCE,
                    D(100),
                    (*item, Item("c", "C", kind=ItemKind.CRITICAL, max_points=D(3))),
                )
            ]
        )
    with pytest.raises(ScoringError, match="no points item"):
        validate(
            [Section(SectionName.COMPLIANCE, D(100), (Item("c", "C", kind=ItemKind.CRITICAL),))]
        )


def test_defective_below_the_threshold_or_auto_failed() -> None:
    t = QaPolicy().defect_threshold
    assert t == D("80.00")
    assert is_defective(D("79.99"), False, t)
    assert not is_defective(D("80.00"), False, t)
    assert is_defective(D("95.00"), True, t)


def test_a_task_moves_open_scored_disputed_decided_and_nothing_else() -> None:
    s = transition(ReviewStatus.OPEN, Action.SCORE)
    assert s is ReviewStatus.SCORED
    s = transition(s, Action.DISPUTE)
    assert s is ReviewStatus.DISPUTED
    assert transition(s, Action.DECIDE) is ReviewStatus.DECIDED
    with pytest.raises(IllegalTransition) as exc:
        transition(ReviewStatus.OPEN, Action.DISPUTE)
    assert exc.value.current is ReviewStatus.OPEN
    with pytest.raises(IllegalTransition):
        transition(ReviewStatus.SCORED, Action.SCORE)
    with pytest.raises(IllegalTransition):
        transition(ReviewStatus.DECIDED, Action.DISPUTE)


def test_the_dispute_window_comes_from_the_policy() -> None:
    scored = datetime(2026, 12, 8, 2, 0, tzinfo=UTC)
    assert dispute_deadline(scored, QaPolicy().dispute_window) == scored + timedelta(days=7)
    assert QaPolicy(dispute_window_days=3).dispute_window == timedelta(days=3)


def test_assignment_goes_to_the_least_loaded_and_evens_out() -> None:
    plan = assign([f"t{i}" for i in range(7)], {"qa-b": 2, "qa-a": 0, "qa-c": 1})
    counts = {who: list(plan.values()).count(who) for who in ("qa-a", "qa-b", "qa-c")}
    # ten open tasks in all end 4/3/3: a takes 4, c 2, b 1
    assert counts == {"qa-a": 4, "qa-b": 1, "qa-c": 2}
    assert plan["t0"] == "qa-a" and plan["t1"] == "qa-a"  # 0, then tie 1/1 broken by id
    assert assign(["t"], {}) == {}


def test_calibration_spread_is_range_and_population_standard_deviation() -> None:
    s = spread([D("80.00"), D("90.00"), D("70.00"), D("80.00")])
    assert s.count == 4
    assert s.mean == D("80.00")
    assert s.range == D("20.00")
    assert s.stddev == D("7.07")  # sqrt(50)
    one = spread([D("64.50")])
    assert (one.range, one.stddev) == (D("0.00"), D("0.00"))
    assert spread([]).mean is None
