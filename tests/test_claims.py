"""The claims protocol's rules, on simulated experiments whose truth is known."""

import json

import numpy as np
import pytest
from scipy import stats

from cgt import claims

EXPERIMENTS = 2000
SEEDS = 5


def _claim(kind="superiority", **extra):
    return claims.Claim("demo", "cgantransfer-quality", "ours better than bsa", kind, "FID",
                        ("ours", "bsa"), **extra)


def _paired_runs(rng, effect: float, seeds: int = SEEDS, spread: float = 1.0):
    """Per-seed FIDs of two arms whose paired difference (bsa − ours) has mean
    ``effect`` and standard deviation ``spread``; the seed's shared part cancels."""
    shared = rng.normal(100, 20, seeds)
    noise = rng.normal(0, spread / np.sqrt(2), (2, seeds))
    ours = shared - effect / 2 + noise[0]
    bsa = shared + effect / 2 + noise[1]
    return dict(enumerate(ours)), dict(enumerate(bsa))


def _rate(verdict: str, effect: float, kind=claims.superiority, claim=None, **run) -> float:
    rng = np.random.default_rng(0)
    claim = claim or _claim()
    hits = sum(kind(claim, *_paired_runs(rng, effect, **run)).verdict == verdict
               for _ in range(EXPERIMENTS))
    return hits / EXPERIMENTS


def test_without_an_effect_superiority_is_rarely_supported():
    # the two-sided 95 % interval excludes 0 on the claimed side in 2.5 % of null experiments
    assert _rate("supported", effect=0.0) <= 0.05
    assert _rate("contradicted", effect=0.0) <= 0.05


def test_an_effect_of_two_sigma_is_found_with_five_seeds():
    assert _rate("supported", effect=2.0) >= 0.80
    assert _rate("contradicted", effect=-2.0) >= 0.80


def test_higher_is_better_turns_the_direction():
    claim = _claim(lower_is_better=False)
    result = claims.superiority(claim, {0: 9.0, 1: 9.5, 2: 9.2}, {0: 5.0, 1: 5.1, 2: 4.8})
    assert result.verdict == "supported" and result.estimate == pytest.approx(4.2667, abs=1e-3)
    assert claims.superiority(_claim(), {0: 9.0, 1: 9.5, 2: 9.2},
                              {0: 5.0, 1: 5.1, 2: 4.8}).verdict == "contradicted"


def test_rows_are_json_ready_whatever_the_pairing_unit():
    units = {("2/25", "fashion_mnist", s): v for s, v in enumerate([10.0, 11.0, 12.0])}
    row = claims.superiority(_claim(), units, {k: v + np.float64(5) for k, v in units.items()})
    saved = json.loads(json.dumps(row.as_dict(), allow_nan=False))  # strict JSON
    assert saved["values"]["bsa"]["2/25 fashion_mnist seed 1"] == 16.0
    unbounded = claims.speed(_claim("speed"), {0: 10, 1: 12}, {0: None, 1: None}, {0: 50, 1: 50},
                             {0: 50, 1: 50})
    saved = json.loads(json.dumps(unbounded.as_dict(), allow_nan=False))
    assert saved["interval"][1] is None and saved["values"]["bsa"] == {"seed 0": None, "seed 1": None}


def test_one_seed_is_inconclusive_and_rows_carry_n_interval_and_detectable_effect():
    one = claims.superiority(_claim(), {0: 10.0}, {0: 50.0})
    assert one.verdict == "inconclusive" and one.interval is None and one.seeds == 1
    five = claims.superiority(_claim(), *_paired_runs(np.random.default_rng(1), 1.0))
    assert five.seeds == 5 and five.interval[0] < five.estimate < five.interval[1]
    assert five.detectable > 0


def test_a_failed_arm_or_precondition_makes_the_claim_untestable():
    failed = claims.superiority(_claim(), {0: 10.0, 1: np.nan, 2: 11.0}, {0: 50, 1: 52, 2: 49})
    assert failed.verdict == "untestable" and failed.reason == "ours failed (seed 1)"
    gate = claims.Precondition("conditional accuracy above 2× chance", False, "0.11 vs 0.20")
    gated = claims.superiority(_claim(), {0: 1.0, 1: 2.0}, {0: 5.0, 1: 6.0}, [gate])
    assert gated.verdict == "untestable" and "0.11 vs 0.20" in gated.reason
    assert claims.superiority(_claim(), {}, {}).reason == "no paired runs"
    unpaired = claims.superiority(_claim(), {0: 1.0, 1: 2.0}, {0: 5.0, 2: 6.0})
    assert unpaired.verdict == "untestable" and unpaired.reason == "not paired: no run of both arms at seed 1, seed 2"


def test_equivalence_by_tost():
    claim = _claim("equivalence", margin=0.10)
    rng = np.random.default_rng(2)
    same = {s: 100 * np.exp(rng.normal(0, 0.02)) for s in range(SEEDS)}
    base = {s: 100 * np.exp(rng.normal(0, 0.02)) for s in range(SEEDS)}
    assert claims.equivalence(claim, same, base).verdict == "supported"
    far = {s: 1.5 * v for s, v in same.items()}
    assert claims.equivalence(claim, far, base).verdict == "contradicted"
    noisy = {s: 100 * np.exp(rng.normal(0, 0.3)) for s in range(SEEDS)}
    assert claims.equivalence(claim, noisy, base).verdict == "inconclusive"
    with pytest.raises(ValueError, match="margin"):
        _claim("equivalence")


def test_equivalence_is_rarely_supported_just_outside_the_margin():
    # a true ratio of 1.10 sits on the margin: TOST supports it in at most 5 % of experiments
    claim = _claim("equivalence", margin=0.10)
    rng = np.random.default_rng(3)
    supported = 0
    for _ in range(EXPERIMENTS):
        base = {s: 100 * np.exp(rng.normal(0, 0.1)) for s in range(SEEDS)}
        ours = {s: 1.10 * v * np.exp(rng.normal(0, 0.03)) for s, v in base.items()}
        supported += claims.equivalence(claim, ours, base).verdict == "supported"
    assert supported / EXPERIMENTS <= 0.05


def test_speed_censors_runs_that_never_reach_the_target():
    claim = _claim("speed", factor=2.0)
    length = {s: 1000 for s in range(4)}
    fast = claims.speed(claim, {0: 100, 1: 120, 2: 90, 3: 110}, {0: 600, 1: 800, 2: 700, 3: 650},
                        length, length)
    assert fast.verdict == "supported" and fast.estimate > 5
    # B never reaches it: its time is at least the length, which only strengthens A's case
    censored_b = claims.speed(claim, {0: 100, 1: 120, 2: 90, 3: 110}, dict.fromkeys(range(4)),
                              length, length)
    assert censored_b.verdict == "supported" and censored_b.interval[1] == np.inf
    # A never reaches it: the ratio is only bounded above, so it can't be supported
    censored_a = claims.speed(claim, dict.fromkeys(range(4)), {0: 600, 1: 800, 2: 700, 3: 650},
                              length, length)
    assert censored_a.verdict == "contradicted"  # t_B / t_A ≤ 0.8 < 2 at every seed
    mixed = claims.speed(claim, {0: 100, 1: None, 2: 90, 3: 110}, {0: 600, 1: 800, 2: 700, 3: 650},
                         length, length)
    assert mixed.verdict == "inconclusive" and "censored" in mixed.reason
    assert "1 of ours" in mixed.ours  # the censored run is counted, not dropped
    slow = claims.speed(claim, {0: 400, 1: 380, 2: 420, 3: 390}, {0: 500, 1: 480, 2: 520, 3: 510},
                        length, length)
    assert slow.verdict == "contradicted"
    both = claims.speed(claim, {0: None, 1: None}, {0: None, 1: None}, {0: 1000, 1: 1000},
                        {0: 1000, 1: 1000})
    assert both.verdict == "inconclusive" and both.interval == (0.0, np.inf)  # nothing is known
    start = claims.speed(claim, {0: 0, 1: 10}, {0: 500, 1: 480}, {0: 1000, 1: 1000},
                         {0: 1000, 1: 1000})
    assert start.verdict == "untestable" and "starts at the target" in start.reason


def test_exact_claims_and_paper_statements_come_from_the_table():
    claim = claims.Claim("cgantransfer", "cgantransfer-old-classes", "old classes unchanged",
                         "exact", "max |Δ|", ("extended", "source"))
    assert "Sec. 4.2" in claim.paper
    assert claims.exact(claim, 0.0, 0.0, "max |Δ| 0").verdict == "supported"
    assert claims.exact(claim, 1e-7, 0.0, "max |Δ| 1e-7").verdict == "contradicted"
    assert claims.exact(claim, float("nan"), 0.0, "not measured").verdict == "untestable"
    with pytest.raises(KeyError, match="claims.csv"):
        claims.paper_statement("no-such-claim")
    with pytest.raises(ValueError, match="valid: superiority"):
        _claim("better")


def test_seeds_for_equivalence_grow_with_the_spread_and_vanish_outside_the_margin():
    claim = claims.Claim("x", "ctf-table1", "t", "equivalence", "score", ("a", "b"),
                         lower_is_better=False, margin=0.10)
    b = {s: 3.0 for s in range(3)}
    tight = claims.seeds_for_equivalence(claim, {s: 3.0 * (1 + 0.01 * (s - 1)) for s in b}, b)
    loose = claims.seeds_for_equivalence(claim, {s: 3.0 * (1 + 0.08 * (s - 1)) for s in b}, b)
    assert tight is not None and loose is not None and 2 <= tight < loose
    # the count it names makes the 90 % interval fit, one fewer does not (same mean and spread)
    ratios = np.log([1 + 0.08 * (s - 1) for s in b])
    reach = lambda n: abs(ratios.mean()) + stats.t.ppf(0.95, n - 1) * ratios.std(ddof=1) / np.sqrt(n)  # noqa: E731
    assert reach(loose) < np.log(1.1) <= reach(loose - 1)
    assert claims.seeds_for_equivalence(claim, {s: 4.0 for s in b}, b) is None  # mean outside


def test_seeds_for_superiority_name_the_count_whose_interval_first_excludes_zero():
    claim = claims.Claim("x", "cgantransfer-cross", "t", "superiority", "FID", ("a", "b"))
    b = {s: 80.0 for s in range(3)}
    differences = np.array([-4.0, 1.0, -6.0])
    a = {s: 80.0 + d for s, d in zip(b, differences)}
    n = claims.seeds_for_superiority(claim, a, b)
    half = lambda k: stats.t.ppf(0.975, k - 1) * differences.std(ddof=1) / np.sqrt(k)  # noqa: E731
    assert n is not None and half(n) < abs(differences.mean()) <= half(n - 1)
    assert claims.seeds_for_superiority(claim, b, b) is None  # no difference to find
    assert claims.seeds_for_superiority(claim, {0: 70.0}, {0: 80.0}) is None  # one seed
