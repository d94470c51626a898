"""The verifiable weekly sample (QA-SAMPLE): pure functions, no I/O.

- **Strata** are ``(bucket, channel)``. A record whose bucket qa-svc does not know is in
  bucket ``"unknown"`` (see ``UNKNOWN_BUCKET``); it is sampled like any other stratum.
- **Allocation.** The overall target is ``rate`` (policy ``sample_rate``, 5–10 %) of the
  week's records. Each stratum's share of that target is proportional to
  ``N_h × w_h`` (``proportional``) or ``N_h × w_h × S_h`` (``neyman``), where ``w_h`` is
  the policy weight of the stratum (``sample_weights``, default 1; by default M1 calls and
  M3/M3+ letters and visits weigh 2) and ``S_h = sqrt(p_h (1 − p_h))`` from the
  stratum's estimated defect rate ``p_h`` (none known: 0.5, so Neyman with no estimates
  is proportional). **Rounding:** ``n_h = ceil(target_h)``, at least 1 for every
  non-empty stratum and at most ``N_h``; with unit weights each stratum's sample is
  therefore within ``[rate × N_h, rate × N_h + 1)`` (or the whole stratum).
- **Selection** is a keyed hash: ``score = HMAC-SHA256(seed, record_id)`` read as a
  big-endian integer; a stratum's sample is its ``n_h`` records with the smallest
  scores (ties are impossible in practice; broken by record id). Anyone holding the
  seed recomputes the same sample.
- **Commitment.** The week's seed (``new_seed``, 32 bytes from ``secrets``) is kept
  secret and its SHA-256 (``commitment``) is published before the week starts; after
  the week the seed is revealed and ``verify`` checks both the commitment and the
  selection. ``verify`` takes the per-stratum sizes from the sample itself, so it
  checks the selection independently of the policy; the sizes can be checked against
  the published rate with ``allocate``.
- **Risk picks** (records of agents with alerts) are added on top, chosen by the same
  keyed hash among the agent's records not already drawn, flagged ``risk`` and never
  used for defect rates: ``defect_rates`` counts the random part only, with a Wilson
  95 % interval per stratum.
"""

from __future__ import annotations

import hashlib
import heapq
import hmac
import math
import secrets
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

RULE = "QA-SAMPLE"
UNKNOWN_BUCKET = "unknown"
SEED_BYTES = 32

Stratum = tuple[str, str]  # (bucket, channel)
Allocation = Literal["proportional", "neyman"]


def stratum_key(stratum: Stratum) -> str:
    """``"M1/call"``: how a stratum is named in the policy and the API."""
    return f"{stratum[0]}/{stratum[1]}"


@dataclass(frozen=True, slots=True)
class Record:
    id: str
    stratum: Stratum
    agent_id: str | None = None


@dataclass(frozen=True, slots=True)
class Pick:
    record_id: str
    stratum: Stratum
    score: int
    risk: bool = False


@dataclass(frozen=True, slots=True)
class Sample:
    population: dict[Stratum, int]
    sizes: dict[Stratum, int]  # random part, per stratum
    picks: tuple[Pick, ...]  # random picks first (by stratum, score), then risk picks

    @property
    def random(self) -> tuple[Pick, ...]:
        return tuple(p for p in self.picks if not p.risk)

    @property
    def risk(self) -> tuple[Pick, ...]:
        return tuple(p for p in self.picks if p.risk)


def new_seed() -> bytes:
    return secrets.token_bytes(SEED_BYTES)


def commitment(seed: bytes) -> str:
    """The published hash of the seed: SHA-256, hex."""
    return hashlib.sha256(seed).hexdigest()


def score(seed: bytes, record_id: str) -> int:
    """HMAC-SHA256(seed, record_id) as a big-endian integer."""
    digest = hmac.new(seed, record_id.encode("utf-8"), hashlib.sha256).digest()
    return int.from_bytes(digest, "big")


def bucket_of(known: str | None, from_event: str | None = None) -> str:
    """qa-svc's bucket for the record, else the event's, else ``"unknown"``."""
    return known or from_event or UNKNOWN_BUCKET


def population(records: Iterable[Record]) -> dict[Stratum, int]:
    counts: dict[Stratum, int] = defaultdict(int)
    for r in records:
        counts[r.stratum] += 1
    return dict(counts)


def allocate(
    pop: Mapping[Stratum, int],
    rate: Decimal | float,
    weights: Mapping[str, float] | None = None,
    allocation: Allocation = "proportional",
    defect_estimates: Mapping[str, float] | None = None,
) -> dict[Stratum, int]:
    """Sample size per stratum (see the module's rounding rule)."""
    weights = weights or {}
    estimates = defect_estimates or {}
    total = sum(pop.values())
    if total == 0:
        return {}
    target = Decimal(str(rate)) * total
    share: dict[Stratum, float] = {}
    for stratum, n in pop.items():
        if n <= 0:
            continue
        w = float(weights.get(stratum_key(stratum), 1.0))
        if allocation == "neyman":
            p = min(max(float(estimates.get(stratum_key(stratum), 0.5)), 0.0), 1.0)
            w *= math.sqrt(p * (1 - p)) or 1e-9  # a zero estimate still gets its minimum
        share[stratum] = n * w
    denominator = sum(share.values())
    sizes: dict[Stratum, int] = {}
    for stratum, s in share.items():
        # exact arithmetic for the proportional, unit-weight case: ceil(rate × N_h)
        t = target * Decimal(str(s)) / Decimal(str(denominator))
        sizes[stratum] = min(pop[stratum], max(1, math.ceil(t)))
    return sizes


def draw(seed: bytes, records: Iterable[Record], sizes: Mapping[Stratum, int]) -> list[Pick]:
    """In each stratum, the ``sizes[stratum]`` records with the smallest keyed scores."""
    by_stratum: dict[Stratum, list[tuple[int, str]]] = defaultdict(list)
    for r in records:
        if sizes.get(r.stratum, 0) > 0:
            by_stratum[r.stratum].append((score(seed, r.id), r.id))
    picks: list[Pick] = []
    for stratum in sorted(by_stratum):
        for s, rid in heapq.nsmallest(sizes[stratum], by_stratum[stratum]):
            picks.append(Pick(rid, stratum, s))
    return picks


def risk_picks(
    seed: bytes,
    records: Iterable[Record],
    risk_agents: Collection[str],
    per_agent: int,
    exclude: Collection[str],
) -> list[Pick]:
    """Up to ``per_agent`` records of each risk agent, not already drawn, smallest scores."""
    by_agent: dict[str, list[tuple[int, str, Stratum]]] = defaultdict(list)
    for r in records:
        if r.agent_id is not None and r.agent_id in risk_agents and r.id not in exclude:
            by_agent[r.agent_id].append((score(seed, r.id), r.id, r.stratum))
    picks: list[Pick] = []
    for agent in sorted(by_agent):
        for s, rid, stratum in heapq.nsmallest(per_agent, by_agent[agent]):
            picks.append(Pick(rid, stratum, s, risk=True))
    return picks


def sample(
    seed: bytes,
    records: Collection[Record],
    rate: Decimal | float,
    *,
    weights: Mapping[str, float] | None = None,
    allocation: Allocation = "proportional",
    defect_estimates: Mapping[str, float] | None = None,
    risk_agents: Collection[str] = (),
    risk_per_agent: int = 0,
) -> Sample:
    pop = population(records)
    sizes = allocate(pop, rate, weights, allocation, defect_estimates)
    random_part = draw(seed, records, sizes)
    chosen = {p.record_id for p in random_part}
    extra = risk_picks(seed, records, risk_agents, risk_per_agent, chosen) if risk_agents else []
    return Sample(population=pop, sizes=sizes, picks=tuple(random_part + extra))


def verify(
    seed: bytes, published: str, records: Iterable[Record], sample_ids: Iterable[str]
) -> bool:
    """Does the seed match its commitment, and is ``sample_ids`` (the random part) exactly
    the smallest-score records of each stratum, as many as the sample holds there?"""
    if not hmac.compare_digest(commitment(seed), published.lower()):
        return False
    records = list(records)
    strata = {r.id: r.stratum for r in records}
    ids = list(sample_ids)
    if len(set(ids)) != len(ids) or any(i not in strata for i in ids):
        return False
    sizes: dict[Stratum, int] = defaultdict(int)
    for i in ids:
        sizes[strata[i]] += 1
    expected = {p.record_id for p in draw(seed, records, sizes)}
    return expected == set(ids)


@dataclass(frozen=True, slots=True)
class DefectRate:
    stratum: Stratum
    reviewed: int
    defects: int
    rate: float
    low: float
    high: float


def wilson(defects: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """Wilson score interval (95 % by default) for ``defects`` out of ``n``."""
    if n <= 0:
        return (0.0, 1.0)
    if not 0 <= defects <= n:
        raise ValueError("defects must be between 0 and n")
    p = defects / n
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def defect_rates(picks: Iterable[Pick], defective: Collection[str]) -> dict[Stratum, DefectRate]:
    """Per-stratum defect rate of the random part only (risk picks are ignored)."""
    reviewed: dict[Stratum, int] = defaultdict(int)
    bad: dict[Stratum, int] = defaultdict(int)
    for p in picks:
        if p.risk:
            continue
        reviewed[p.stratum] += 1
        if p.record_id in defective:
            bad[p.stratum] += 1
    out: dict[Stratum, DefectRate] = {}
    for stratum, n in reviewed.items():
        low, high = wilson(bad[stratum], n)
        out[stratum] = DefectRate(stratum, n, bad[stratum], bad[stratum] / n, low, high)
    return out
