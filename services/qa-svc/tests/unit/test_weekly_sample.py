"""QA-SAMPLE: keyed-hash stratified sample, allocation, commitment, verifier, Wilson."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest

from qa_svc.domain import sampling
from qa_svc.domain.policy import QaPolicy
from qa_svc.domain.sampling import Pick, Record, Stratum

SEED = bytes(range(32))
OTHER = bytes(range(1, 33))


def _records() -> list[Record]:
    shape: dict[Stratum, int] = {
        ("M1", "call"): 400,
        ("M1", "sms"): 130,
        ("M3+", "letter"): 57,
        ("M3+", "visit"): 9,
        ("unknown", "call"): 1,
    }
    out = []
    for (bucket, channel), n in shape.items():
        for i in range(n):
            out.append(Record(f"{bucket}-{channel}-{i}", (bucket, channel), f"agent-{i % 7}"))
    return out


def test_same_seed_same_sample_and_another_seed_another() -> None:
    records = _records()
    a = sampling.sample(SEED, records, Decimal("0.05"))
    b = sampling.sample(SEED, list(reversed(records)), Decimal("0.05"))
    c = sampling.sample(OTHER, records, Decimal("0.05"))
    assert a.picks == b.picks
    assert {p.record_id for p in a.picks} != {p.record_id for p in c.picks}
    assert a.sizes == c.sizes


def test_score_is_hmac_sha256_of_the_record_id() -> None:
    import hashlib
    import hmac

    expected = int.from_bytes(hmac.new(SEED, b"rec-1", hashlib.sha256).digest(), "big")
    assert sampling.score(SEED, "rec-1") == expected
    assert sampling.commitment(SEED) == hashlib.sha256(SEED).hexdigest()
    assert len(sampling.new_seed()) == 32


@pytest.mark.parametrize("rate", [Decimal("0.05"), Decimal("0.07"), Decimal("0.10")])
def test_size_per_stratum_within_the_configured_rate(rate: Decimal) -> None:
    records = _records()
    drawn = sampling.sample(SEED, records, rate)  # unit weights
    pop = sampling.population(records)
    got: dict[Stratum, int] = {}
    for p in drawn.random:
        got[p.stratum] = got.get(p.stratum, 0) + 1
    assert got == drawn.sizes
    for stratum, n in pop.items():
        # ceil(rate × N), at least 1 per non-empty stratum, at most N
        assert got[stratum] == min(n, max(1, math.ceil(rate * n)))
        assert rate * n <= got[stratum] < rate * n + 1 or got[stratum] == 1
    # a stratum's picks are its smallest scores
    for stratum in pop:
        scores = sorted(sampling.score(SEED, r.id) for r in records if r.stratum == stratum)
        picked = sorted(p.score for p in drawn.random if p.stratum == stratum)
        assert picked == scores[: len(picked)]


def test_policy_weights_shift_the_share_to_m1_calls_and_m3_letters() -> None:
    records = _records()
    policy = QaPolicy()
    plain = sampling.allocate(sampling.population(records), policy.sample_rate)
    weighted = sampling.allocate(
        sampling.population(records), policy.sample_rate, policy.sample_weights
    )
    assert weighted[("M1", "call")] > plain[("M1", "call")]
    assert weighted[("M3+", "letter")] > plain[("M3+", "letter")]
    assert weighted[("M1", "sms")] < plain[("M1", "sms")]
    assert weighted[("unknown", "call")] == 1  # never below one per non-empty stratum


def test_neyman_puts_more_where_defects_vary_more() -> None:
    pop: dict[Stratum, int] = {("M1", "call"): 1000, ("M1", "sms"): 1000}
    even = sampling.allocate(pop, 0.05, allocation="neyman")
    assert even == sampling.allocate(pop, 0.05)  # no estimates: proportional
    skewed = sampling.allocate(
        pop, 0.05, allocation="neyman", defect_estimates={"M1/call": 0.5, "M1/sms": 0.02}
    )
    assert skewed[("M1", "call")] > skewed[("M1", "sms")] >= 1


def test_policy_rate_is_bounded_to_5_to_10_percent() -> None:
    assert QaPolicy().sample_rate == Decimal("0.05")
    with pytest.raises(ValueError, match="greater than or equal"):
        QaPolicy(sample_rate=Decimal("0.04"))
    with pytest.raises(ValueError, match="less than or equal"):
        QaPolicy(sample_rate=Decimal("0.11"))
    assert QaPolicy.rule_of("sample_rate") == "QA-SAMPLE"


def test_verifier_recomputes_and_detects_tampering_and_a_wrong_seed() -> None:
    records = _records()
    drawn = sampling.sample(SEED, records, Decimal("0.05"))
    ids = [p.record_id for p in drawn.random]
    published = sampling.commitment(SEED)
    assert sampling.verify(SEED, published, records, ids)
    # swap one sampled record for an unsampled one of the same stratum
    victim = drawn.random[0]
    chosen = set(ids)
    swap = next(r.id for r in records if r.stratum == victim.stratum and r.id not in chosen)
    tampered = [swap if i == victim.record_id else i for i in ids]
    assert not sampling.verify(SEED, published, records, tampered)
    # dropping or duplicating a record, or an id not in the week
    assert not sampling.verify(SEED, published, records, [*ids, ids[0]])
    assert not sampling.verify(SEED, published, records, [*ids, "nowhere"])
    # a seed that is not the committed one
    assert not sampling.verify(OTHER, published, records, ids)
    # even the other seed's own sample does not pass against this commitment
    other_ids = [p.record_id for p in sampling.sample(OTHER, records, 0.05).random]
    assert not sampling.verify(OTHER, published, records, other_ids)


def test_risk_picks_are_on_top_flagged_and_kept_out_of_defect_rates() -> None:
    records = _records()
    drawn = sampling.sample(
        SEED, records, Decimal("0.05"), risk_agents={"agent-3"}, risk_per_agent=4
    )
    risk = drawn.risk
    assert len(risk) == 4 and all(p.risk for p in risk)
    by_id = {r.id: r for r in records}
    assert all(by_id[p.record_id].agent_id == "agent-3" for p in risk)
    assert not {p.record_id for p in risk} & {p.record_id for p in drawn.random}
    # the random part is unchanged by the risk picks, and still verifies
    plain = sampling.sample(SEED, records, Decimal("0.05"))
    assert drawn.random == plain.random
    ids = [p.record_id for p in drawn.random]
    assert sampling.verify(SEED, sampling.commitment(SEED), records, ids)
    defective = {p.record_id for p in risk}  # every risk pick defective: not counted
    rates = sampling.defect_rates(drawn.picks, defective)
    assert all(r.defects == 0 for r in rates.values())
    assert sum(r.reviewed for r in rates.values()) == len(drawn.random)


def test_wilson_interval_values() -> None:
    low, high = sampling.wilson(10, 100)
    assert low == pytest.approx(0.05523, abs=1e-4)
    assert high == pytest.approx(0.17437, abs=1e-4)
    low, high = sampling.wilson(0, 20)
    assert low == 0.0 and high == pytest.approx(0.16113, abs=1e-4)
    low, high = sampling.wilson(20, 20)
    assert high == 1.0 and low == pytest.approx(0.83887, abs=1e-4)
    assert sampling.wilson(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError, match="between 0 and n"):
        sampling.wilson(5, 4)


def test_defect_rate_per_stratum_with_interval() -> None:
    picks = [Pick(f"r{i}", ("M1", "call"), i) for i in range(100)]
    picks += [Pick("x", ("M1", "call"), 0, risk=True)]
    rate = sampling.defect_rates(picks, {f"r{i}" for i in range(10)} | {"x"})[("M1", "call")]
    assert (rate.reviewed, rate.defects, rate.rate) == (100, 10, 0.1)
    assert (rate.low, rate.high) == sampling.wilson(10, 100)


def test_bucket_falls_back_to_the_event_then_unknown() -> None:
    assert sampling.bucket_of("M2", "M1") == "M2"
    assert sampling.bucket_of(None, "M1") == "M1"
    assert sampling.bucket_of(None, None) == "unknown"


def test_empty_week_samples_nothing() -> None:
    drawn = sampling.sample(SEED, [], Decimal("0.05"))
    assert drawn.picks == () and drawn.sizes == {}
    assert sampling.verify(SEED, sampling.commitment(SEED), [], [])
