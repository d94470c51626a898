"""CASE-STRATEGY: the versioned rule table, its default, and why a case is on its track."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from case_svc.domain.buckets import Bucket
from case_svc.domain.strategy import (
    DEFAULT_STRATEGY,
    Channel,
    History,
    StrategyDecision,
    StrategyRule,
    StrategyTable,
    StrategyTableError,
    Track,
    TrackSpec,
    Willingness,
)


def small_table(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "version": "3",
        "default_track": "standard",
        "tracks": {
            "gentle": ["sms", "call"],
            "standard": ["call", "sms"],
            "legal": ["legal"],
        },
        "rules": [
            {
                "name": "gentle-early",
                "buckets": ["M1"],
                "history": ["good"],
                "willingness": ["high"],
                "track": "gentle",
            }
        ],
    }
    data.update(changes)
    return data


# -- the default table, rule by rule ---------------------------------------------------


def test_the_default_table_names_its_tracks_channels_in_order() -> None:
    t = DEFAULT_STRATEGY
    assert t.version == "1"
    assert t.default_track is Track.STANDARD
    assert t.tracks[Track.GENTLE].channels == (Channel.SMS, Channel.CALL)
    assert t.tracks[Track.STANDARD].channels == (Channel.CALL, Channel.SMS, Channel.LETTER)
    assert t.tracks[Track.FIRM].channels == (
        Channel.LETTER,
        Channel.CALL,
        Channel.VISIT,
        Channel.LEGAL,
    )
    assert t.tracks[Track.LEGAL].channels == (Channel.LEGAL, Channel.LETTER)
    assert [r.name for r in t.rules] == [
        "legal-long-overdue-unresponsive",
        "firm-repeat-delinquent-unwilling",
        "gentle-good-record-early",
    ]


@pytest.mark.parametrize(
    ("facts", "track", "rule", "reason"),
    [
        (
            ("M1", "good", "high"),
            Track.GENTLE,
            "gentle-good-record-early",
            "CASE-STRATEGY: bucket M1, history good, willingness high matched rule "
            "'gentle-good-record-early' of table v1 -> gentle track (sms, call)",
        ),
        (
            ("M0", "good", "unknown"),
            Track.GENTLE,
            "gentle-good-record-early",
            "CASE-STRATEGY: bucket M0, history good, willingness unknown matched rule "
            "'gentle-good-record-early' of table v1 -> gentle track (sms, call)",
        ),
        (
            ("M2", "repeat_delinquent", "low"),
            Track.FIRM,
            "firm-repeat-delinquent-unwilling",
            "CASE-STRATEGY: bucket M2, history repeat_delinquent, willingness low matched rule "
            "'firm-repeat-delinquent-unwilling' of table v1 -> firm track "
            "(letter, call, visit, legal)",
        ),
        (
            ("M3+", "good", "unknown"),
            Track.LEGAL,
            "legal-long-overdue-unresponsive",
            "CASE-STRATEGY: bucket M3+, history good, willingness unknown matched rule "
            "'legal-long-overdue-unresponsive' of table v1 -> legal track (legal, letter)",
        ),
        (
            ("M2", "good", "high"),
            Track.STANDARD,
            None,
            "CASE-STRATEGY: bucket M2, history good, willingness high matched no rule "
            "of table v1 -> default standard track (call, sms, letter)",
        ),
    ],
)
def test_each_rule_and_the_default_with_its_reason(
    facts: tuple[str, str, str], track: Track, rule: str | None, reason: str
) -> None:
    d = DEFAULT_STRATEGY.decide(*facts)
    assert d == StrategyDecision(
        track=track,
        channels=DEFAULT_STRATEGY.tracks[track].channels,
        rule_name=rule,
        table_version="1",
        reason=reason,
    )


def test_first_match_wins_legal_before_firm() -> None:
    # A repeat delinquent unwilling to pay matches the firm rule too; at M3+ the legal
    # rule comes first.
    d = DEFAULT_STRATEGY.decide(Bucket.M3_PLUS, History.REPEAT_DELINQUENT, Willingness.LOW)
    assert (d.track, d.rule_name) == (Track.LEGAL, "legal-long-overdue-unresponsive")
    d = DEFAULT_STRATEGY.decide(Bucket.M3, History.REPEAT_DELINQUENT, Willingness.LOW)
    assert (d.track, d.rule_name) == (Track.FIRM, "firm-repeat-delinquent-unwilling")


def _domain_md(bucket: str, history: str, willingness: str) -> Track:
    """DOMAIN.md CASE-STRATEGY in plain words, for every combination."""
    long_overdue_unresponsive = bucket == "M3+" and willingness in {"low", "unknown"}
    repeat_unwilling = history == "repeat_delinquent" and willingness == "low"
    good_short_term = bucket in {"M0", "M1"} and history == "good" and willingness != "low"
    if long_overdue_unresponsive:
        return Track.LEGAL
    if repeat_unwilling:
        return Track.FIRM
    if good_short_term:
        return Track.GENTLE
    return Track.STANDARD


@pytest.mark.parametrize(
    ("bucket", "history", "willingness"),
    list(itertools.product(Bucket, History, Willingness)),
    ids=lambda v: str(v),
)
def test_every_combination_follows_domain_md(bucket: str, history: str, willingness: str) -> None:
    d = DEFAULT_STRATEGY.decide(bucket, history, willingness)
    assert d.track is _domain_md(bucket, history, willingness)
    assert d.channels == DEFAULT_STRATEGY.tracks[d.track].channels
    assert d.reason.startswith(
        f"CASE-STRATEGY: bucket {bucket}, history {history}, willingness {willingness} "
    )
    assert d.reason.endswith(f"{d.track} track ({', '.join(d.channels)})")


@pytest.mark.parametrize(
    "facts", [("M4", "good", "high"), ("M1", "excellent", "high"), ("M1", "good", "maybe")]
)
def test_unknown_facts_are_refused_not_defaulted(facts: tuple[str, str, str]) -> None:
    with pytest.raises(ValueError, match="unknown"):
        DEFAULT_STRATEGY.decide(*facts)


def test_escalation_to_legal_overrides_the_rules_and_says_so() -> None:
    d = DEFAULT_STRATEGY.escalate_to_legal()
    assert d == StrategyDecision(
        track=Track.LEGAL,
        channels=(Channel.LEGAL, Channel.LETTER),
        rule_name="CASE-SKIP",
        table_version="1",
        reason="CASE-SKIP: the case was escalated to legal -> legal track (legal, letter) "
        "of table v1",
    )


# -- tables from configuration ---------------------------------------------------------


def test_a_table_from_configuration_and_back() -> None:
    t = StrategyTable.from_dict(small_table())
    assert t.version == "3"
    assert t.rule("gentle-early").buckets == frozenset({"M1"})
    d = t.decide("M1", "good", "high")
    assert d.reason == (
        "CASE-STRATEGY: bucket M1, history good, willingness high matched rule "
        "'gentle-early' of table v3 -> gentle track (sms, call)"
    )
    assert StrategyTable.from_dict(t.to_dict()) == t
    assert StrategyTable.from_dict(DEFAULT_STRATEGY.to_dict()) == DEFAULT_STRATEGY


def test_an_integer_version_is_read_as_text() -> None:
    assert StrategyTable.from_dict(small_table(version=4)).version == "4"


def test_a_left_out_dimension_matches_any_value() -> None:
    t = StrategyTable.from_dict(
        small_table(rules=[{"name": "legal-when-low", "willingness": ["low"], "track": "legal"}])
    )
    for bucket, history in itertools.product(Bucket, History):
        assert t.decide(bucket, history, "low").rule_name == "legal-when-low"
        assert t.decide(bucket, history, "high").rule_name is None


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"rules": [{"name": "harsh", "track": "harsh"}]},
            "rules[0] 'harsh'.track: 'harsh' is not a track (gentle, standard, firm, legal)",
        ),
        (
            {"rules": [{"name": "to-firm", "buckets": ["M2"], "track": "firm"}]},
            "rules[0] 'to-firm': track firm has no spec",
        ),
        (
            {
                "rules": [
                    {"name": "a", "buckets": ["M1"], "track": "gentle"},
                    {"name": "a", "buckets": ["M2"], "track": "gentle"},
                ]
            },
            "rules[1] 'a': the name is used by an earlier rule",
        ),
        (
            {"rules": [{"name": "m5", "buckets": ["M5"], "track": "gentle"}]},
            "rules[0] 'm5': unknown buckets M5 (known: M0, M1, M2, M3, M3+)",
        ),
        (
            {"rules": [{"name": "h", "history": ["bad"], "track": "gentle"}]},
            "unknown history bad (known: good, repeat_delinquent, unknown)",
        ),
        (
            {"rules": [{"name": "w", "willingness": ["none"], "track": "gentle"}]},
            "unknown willingness none (known: high, low, unknown)",
        ),
        (
            {"rules": [{"name": "empty", "buckets": [], "track": "gentle"}]},
            "rules[0] 'empty': empty buckets match nothing; leave it out for any",
        ),
        (
            {
                "rules": [
                    {"name": "early", "buckets": ["M1", "M2"], "track": "gentle"},
                    {"name": "m1-good", "buckets": ["M1"], "history": ["good"], "track": "legal"},
                ]
            },
            "rules[1] 'm1-good' can never match: rule 'early' before it covers it",
        ),
        (
            {"rules": [{"name": "Gentle Early", "track": "gentle"}]},
            "rules[0]: name must be a lower-case slug",
        ),
        (
            {"tracks": {"gentle": ["sms"], "standard": ["call"]}},
            "track legal has no spec (CASE-SKIP escalation needs one)",
        ),
        (
            {"default_track": "firm"},
            "track firm has no spec (the default track needs one)",
        ),
        (
            {"tracks": {"gentle": ["sms", "fax"], "standard": ["call"], "legal": ["legal"]}},
            "tracks.gentle: 'fax' is not a channel (call, sms, letter, visit, legal)",
        ),
        (
            {"tracks": {"gentle": ["sms", "sms"], "standard": ["call"], "legal": ["legal"]}},
            "tracks.gentle: track gentle names a channel twice",
        ),
        (
            {"tracks": {"gentle": [], "standard": ["call"], "legal": ["legal"]}},
            "tracks.gentle: a non-empty list of channels in order of use",
        ),
        ({"version": ""}, "version: required"),
        ({"default_track": None}, "default_track: None is not a track"),
        ({"rules": "first match"}, "rules: required, a list"),
        ({"tracks": ["gentle"]}, "tracks: required, a mapping"),
        ({"owner": "ops"}, "unknown keys owner"),
        ({"rules": [{"name": "x", "track": "gentle", "bucket": ["M1"]}]}, "unknown keys bucket"),
        ({"rules": [{"name": "x", "track": "gentle", "buckets": "M1"}]}, "buckets: a list"),
        ({"rules": [{"track": "gentle"}]}, "rules[0]: name is required"),
    ],
)
def test_unusable_tables_are_refused_with_clear_errors(
    changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(StrategyTableError) as exc:
        StrategyTable.from_dict(small_table(**changes))
    assert message in str(exc.value)
    assert str(exc.value).startswith("strategy table v")


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(StrategyTableError) as exc:
        StrategyTable.from_dict(
            small_table(
                rules=[
                    {"name": "a", "buckets": ["M9"], "track": "gentle"},
                    {"name": "a", "track": "firm"},
                ]
            )
        )
    text = str(exc.value)
    assert "unknown buckets M9" in text
    assert "the name is used by an earlier rule" in text
    assert "track firm has no spec" in text


def test_tables_built_in_code_are_checked_too() -> None:
    specs = {
        Track.STANDARD: TrackSpec(Track.STANDARD, (Channel.CALL,)),
        Track.LEGAL: TrackSpec(Track.LEGAL, (Channel.LEGAL,)),
    }
    rule = StrategyRule("to-gentle", None, frozenset({"good"}), None, Track.GENTLE)
    with pytest.raises(StrategyTableError, match="track gentle has no spec"):
        StrategyTable(version="2", rules=(rule,), tracks=specs, default_track=Track.STANDARD)
    wrong_key = {**specs, Track.GENTLE: TrackSpec(Track.FIRM, (Channel.SMS,))}
    with pytest.raises(StrategyTableError, match=r"tracks\.gentle holds the spec of track firm"):
        StrategyTable(version="2", rules=(), tracks=wrong_key, default_track=Track.STANDARD)
    with pytest.raises(StrategyTableError, match="allows no channel"):
        TrackSpec(Track.GENTLE, ())


def test_tables_are_immutable() -> None:
    with pytest.raises(AttributeError):
        DEFAULT_STRATEGY.version = "2"  # type: ignore[misc]
    with pytest.raises(TypeError):
        DEFAULT_STRATEGY.tracks[Track.GENTLE] = TrackSpec(  # type: ignore[index]
            Track.GENTLE, (Channel.CALL,)
        )
