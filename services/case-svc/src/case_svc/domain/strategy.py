"""Collection strategy (rule CASE-STRATEGY): which track a case is worked on, and why.

A :class:`StrategyTable` is versioned configuration: an ordered list of rules
over bucket, repayment history and willingness to pay, each naming a
:class:`Track`; the first rule that matches decides, and a case no rule
matches gets the table's default track. Each track names the channels it
allows, in their order of use. The decision keeps the rule's name, the table's
version and a readable reason, so an agent or a bank auditor can see why a
case is on its track.

A rule leaves a dimension out (``None``) to match any value of it. Tables are
checked when built: every track a rule or the default names has a spec, the
legal track has one (CASE-SKIP escalation needs it), rule names are unique
lower-case slugs, values are known, and no rule is hidden by an earlier one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from case_svc.domain.buckets import Bucket

RULE = "CASE-STRATEGY"
ESCALATION_RULE = "CASE-SKIP"


class Track(StrEnum):
    GENTLE = "gentle"
    STANDARD = "standard"
    FIRM = "firm"
    LEGAL = "legal"


class Channel(StrEnum):
    CALL = "call"
    SMS = "sms"
    LETTER = "letter"
    VISIT = "visit"
    LEGAL = "legal"  # lawyer's letter, court summons


class History(StrEnum):
    """The debtor's repayment record, from the bank's credit data when it sends it."""

    GOOD = "good"
    REPEAT_DELINQUENT = "repeat_delinquent"
    UNKNOWN = "unknown"


class Willingness(StrEnum):
    """Willingness to pay, as the collectors assess it; unknown until someone reaches the
    debtor (an unresponsive debtor stays unknown)."""

    HIGH = "high"
    LOW = "low"
    UNKNOWN = "unknown"


_DIMENSIONS: dict[str, frozenset[str]] = {
    "buckets": frozenset(Bucket),
    "history": frozenset(History),
    "willingness": frozenset(Willingness),
}
_RULE_NAME = re.compile(r"[a-z0-9][a-z0-9._-]*")


class StrategyTableError(ValueError):
    """A strategy table that cannot be used; the message lists every problem found."""


def _listing(values: Iterable[str]) -> str:
    return ", ".join(str(v) for v in values)


@dataclass(frozen=True, slots=True)
class TrackSpec:
    """A track and the channels it allows, in their order of use."""

    track: Track
    channels: tuple[Channel, ...]

    def __post_init__(self) -> None:
        if not self.channels:
            raise StrategyTableError(f"track {self.track} allows no channel")
        if len(set(self.channels)) != len(self.channels):
            raise StrategyTableError(f"track {self.track} names a channel twice")


@dataclass(frozen=True, slots=True)
class StrategyRule:
    """Matches when every given dimension holds the case's value (``None``: any value)."""

    name: str
    buckets: frozenset[str] | None
    history: frozenset[str] | None
    willingness: frozenset[str] | None
    track: Track

    def matches(self, bucket: str, history: str, willingness: str) -> bool:
        return (
            (self.buckets is None or bucket in self.buckets)
            and (self.history is None or history in self.history)
            and (self.willingness is None or willingness in self.willingness)
        )

    def covers(self, other: StrategyRule) -> bool:
        """Whether every case ``other`` matches is matched by this rule too."""
        pairs = (
            (self.buckets, other.buckets),
            (self.history, other.history),
            (self.willingness, other.willingness),
        )
        return all(
            mine is None or (theirs is not None and theirs <= mine) for mine, theirs in pairs
        )


@dataclass(frozen=True, slots=True)
class StrategyDecision:
    """The track chosen for a case, its channels in order, and why."""

    track: Track
    channels: tuple[Channel, ...]
    rule_name: str | None  # None: no rule matched, the table's default track applied
    table_version: str
    reason: str


@dataclass(frozen=True)
class StrategyTable:
    version: str
    rules: tuple[StrategyRule, ...]
    tracks: Mapping[Track, TrackSpec]
    default_track: Track
    _index: Mapping[str, StrategyRule] = field(init=False, repr=False, compare=False)
    # decide()'s answers by (bucket, history, willingness): a handful of combinations,
    # asked once per imported account
    _decisions: dict[tuple[str, str, str], StrategyDecision] = field(
        init=False, repr=False, compare=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "tracks", MappingProxyType(dict(self.tracks)))
        object.__setattr__(self, "rules", tuple(self.rules))
        problems = self._problems()
        if problems:
            raise StrategyTableError(f"strategy table v{self.version}: " + "; ".join(problems))
        object.__setattr__(self, "_index", MappingProxyType({r.name: r for r in self.rules}))

    def _problems(self) -> list[str]:
        problems: list[str] = []
        if not isinstance(self.version, str) or not self.version.strip():
            problems.append("version must be a non-empty string")
        for key, spec in self.tracks.items():
            if spec.track != key:
                problems.append(f"tracks.{key} holds the spec of track {spec.track}")
        needed = {self.default_track: "the default track", Track.LEGAL: "CASE-SKIP escalation"}
        for track, who in needed.items():
            if track not in self.tracks:
                problems.append(f"track {track} has no spec ({who} needs one)")
        seen: set[str] = set()
        for i, r in enumerate(self.rules):
            where = f"rules[{i}] '{r.name}'"
            if not _RULE_NAME.fullmatch(r.name):
                problems.append(f"rules[{i}]: name must be a lower-case slug, such as gentle-early")
            if r.name in seen:
                problems.append(f"{where}: the name is used by an earlier rule")
            seen.add(r.name)
            if r.track not in self.tracks:
                problems.append(f"{where}: track {r.track} has no spec")
            for dim, known in _DIMENSIONS.items():
                values = getattr(r, dim)
                if values is None:
                    continue
                if not values:
                    problems.append(f"{where}: empty {dim} match nothing; leave it out for any")
                unknown = sorted(set(values) - known)
                if unknown:
                    problems.append(
                        f"{where}: unknown {dim} {_listing(unknown)} "
                        f"(known: {_listing(sorted(known))})"
                    )
            for earlier in self.rules[:i]:
                if earlier.covers(r):
                    problems.append(
                        f"{where} can never match: rule '{earlier.name}' before it covers it"
                    )
                    break
        return problems

    def rule(self, name: str) -> StrategyRule:
        return self._index[name]

    def decide(self, bucket: str, history: str, willingness: str) -> StrategyDecision:
        """The first matching rule's track, else the default track (rule CASE-STRATEGY).

        The table never changes, so each combination is worked out once and the same
        (immutable) decision returned after that."""
        key = (bucket, history, willingness)
        decision = self._decisions.get(key)
        if decision is None:
            decision = self._decide(bucket, history, willingness)
            self._decisions[key] = decision
        return decision

    def _decide(self, bucket: str, history: str, willingness: str) -> StrategyDecision:
        for dim, value in (("buckets", bucket), ("history", history), ("willingness", willingness)):
            if value not in _DIMENSIONS[dim]:
                raise ValueError(
                    f"unknown {dim} {value!r} (known: {_listing(sorted(_DIMENSIONS[dim]))})"
                )
        facts = f"bucket {bucket}, history {history}, willingness {willingness}"
        for r in self.rules:
            if r.matches(bucket, history, willingness):
                spec = self.tracks[r.track]
                return StrategyDecision(
                    track=spec.track,
                    channels=spec.channels,
                    rule_name=r.name,
                    table_version=self.version,
                    reason=(
                        f"{RULE}: {facts} matched rule '{r.name}' of table v{self.version}"
                        f" -> {spec.track} track ({_listing(spec.channels)})"
                    ),
                )
        spec = self.tracks[self.default_track]
        return StrategyDecision(
            track=spec.track,
            channels=spec.channels,
            rule_name=None,
            table_version=self.version,
            reason=(
                f"{RULE}: {facts} matched no rule of table v{self.version}"
                f" -> default {spec.track} track ({_listing(spec.channels)})"
            ),
        )

    def escalate_to_legal(self) -> StrategyDecision:
        """The legal track of a case escalated to legal (rule CASE-SKIP: still unreachable
        after skip tracing, or escalated by decision); it overrides the rules."""
        spec = self.tracks[Track.LEGAL]
        return StrategyDecision(
            track=spec.track,
            channels=spec.channels,
            rule_name=ESCALATION_RULE,
            table_version=self.version,
            reason=(
                f"{ESCALATION_RULE}: the case was escalated to legal"
                f" -> {spec.track} track ({_listing(spec.channels)}) of table v{self.version}"
            ),
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StrategyTable:
        """Build a table from configuration (TOML/JSON)::

            {"version": "3", "default_track": "standard",
             "tracks": {"gentle": ["sms", "call"], ...},
             "rules": [{"name": "gentle-early", "buckets": ["M1"], "history": ["good"],
                        "willingness": ["high"], "track": "gentle"}, ...]}

        A rule leaves out (or sets null) a dimension to match any value of it.
        Every problem found is reported in one :class:`StrategyTableError`.
        """
        problems: list[str] = []
        if not isinstance(data, Mapping):
            raise StrategyTableError("a strategy table is a mapping")
        extra = sorted(set(data) - {"version", "default_track", "tracks", "rules"})
        if extra:
            problems.append(f"unknown keys {_listing(extra)}")
        raw_version = data.get("version")
        version = str(raw_version) if isinstance(raw_version, (str, int)) else ""
        if not version.strip() or isinstance(raw_version, bool):
            problems.append("version: required, a string such as '3'")
        default = _track(data.get("default_track"), "default_track", problems)

        tracks: dict[Track, TrackSpec] = {}
        raw_tracks = data.get("tracks")
        if not isinstance(raw_tracks, Mapping):
            problems.append("tracks: required, a mapping of track to its channels in order")
            raw_tracks = {}
        for key, channels in raw_tracks.items():
            track = _track(key, f"tracks.{key}", problems)
            chans = _channels(channels, f"tracks.{key}", problems)
            if track is None or chans is None:
                continue
            try:
                tracks[track] = TrackSpec(track, chans)
            except StrategyTableError as exc:
                problems.append(f"tracks.{key}: {exc}")

        rules: list[StrategyRule] = []
        raw_rules = data.get("rules")
        if not isinstance(raw_rules, list):
            problems.append("rules: required, a list (first match wins)")
            raw_rules = []
        for i, raw in enumerate(raw_rules):
            rule_ = _rule(raw, f"rules[{i}]", problems)
            if rule_ is not None:
                rules.append(rule_)

        if problems or default is None:
            raise StrategyTableError(f"strategy table v{version or '?'}: " + "; ".join(problems))
        return cls(version=version, rules=tuple(rules), tracks=tracks, default_track=default)

    def to_dict(self) -> dict[str, Any]:
        def dim(values: frozenset[str] | None) -> list[str] | None:
            return None if values is None else sorted(values)

        return {
            "version": self.version,
            "default_track": str(self.default_track),
            "tracks": {str(t): [str(c) for c in s.channels] for t, s in self.tracks.items()},
            "rules": [
                {
                    "name": r.name,
                    "buckets": dim(r.buckets),
                    "history": dim(r.history),
                    "willingness": dim(r.willingness),
                    "track": str(r.track),
                }
                for r in self.rules
            ],
        }


def _track(value: object, where: str, problems: list[str]) -> Track | None:
    if isinstance(value, str) and value in Track.__members__.values():
        return Track(value)
    problems.append(f"{where}: {value!r} is not a track ({_listing(Track)})")
    return None


def _channels(value: object, where: str, problems: list[str]) -> tuple[Channel, ...] | None:
    if not isinstance(value, list) or not value:
        problems.append(f"{where}: a non-empty list of channels in order of use")
        return None
    out: list[Channel] = []
    for item in value:
        if not isinstance(item, str) or item not in Channel.__members__.values():
            problems.append(f"{where}: {item!r} is not a channel ({_listing(Channel)})")
            return None
        out.append(Channel(item))
    return tuple(out)


def _rule(raw: object, where: str, problems: list[str]) -> StrategyRule | None:
    if not isinstance(raw, Mapping):
        problems.append(f"{where}: a mapping with name, track and the dimensions it matches")
        return None
    extra = sorted(set(raw) - {"name", "track", *_DIMENSIONS})
    if extra:
        problems.append(f"{where}: unknown keys {_listing(extra)}")
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        problems.append(f"{where}: name is required")
        return None
    where = f"{where} '{name}'"
    track = _track(raw.get("track"), f"{where}.track", problems)
    dims: dict[str, frozenset[str] | None] = {}
    ok = track is not None
    for dim in _DIMENSIONS:
        values = raw.get(dim)
        if values is None:
            dims[dim] = None
        elif isinstance(values, list) and all(isinstance(v, str) for v in values):
            dims[dim] = frozenset(values)
        else:
            problems.append(f"{where}.{dim}: a list of values, or leave it out to match any")
            ok = False
    if not ok or track is None:
        return None
    return StrategyRule(
        name=name,
        buckets=dims["buckets"],
        history=dims["history"],
        willingness=dims["willingness"],
        track=track,
    )


# CASE-STRATEGY as DOMAIN.md states it: a good record with a short-term cash problem
# (early bucket, not unwilling) is worked gently, by reminders and negotiation; a repeat
# delinquent unwilling to pay firmly, by letters, visits and legal steps; a debtor more
# than M3 overdue who is unwilling or unresponsive goes to the legal track; the rest
# follow the standard track.
DEFAULT_STRATEGY = StrategyTable.from_dict(
    {
        "version": "1",
        "default_track": "standard",
        "tracks": {
            "gentle": ["sms", "call"],
            "standard": ["call", "sms", "letter"],
            "firm": ["letter", "call", "visit", "legal"],
            "legal": ["legal", "letter"],
        },
        "rules": [
            {
                "name": "legal-long-overdue-unresponsive",
                "buckets": ["M3+"],
                "willingness": ["low", "unknown"],
                "track": "legal",
            },
            {
                "name": "firm-repeat-delinquent-unwilling",
                "history": ["repeat_delinquent"],
                "willingness": ["low"],
                "track": "firm",
            },
            {
                "name": "gentle-good-record-early",
                "buckets": ["M0", "M1"],
                "history": ["good"],
                "willingness": ["high", "unknown"],
                "track": "gentle",
            },
        ],
    }
)
