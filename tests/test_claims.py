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


def _supported_on_the_margin(judge, claim, rng) -> float:
    """The share of experiments whose true ratio A / B is 1.10 (on a 10 % margin) that
    ``judge`` supports."""
    supported = 0
    for _ in range(EXPERIMENTS):
        base = {s: 100 * np.exp(rng.normal(0, 0.1)) for s in range(SEEDS)}
        ours = {s: 1.10 * v * np.exp(rng.normal(0, 0.03)) for s, v in base.items()}
        supported += judge(claim, ours, base).verdict == "supported"
    return supported / EXPERIMENTS


def test_equivalence_is_rarely_supported_just_outside_the_margin():
    # a true ratio of 1.10 sits on the margin: TOST supports it in at most 5 % of experiments
    claim = _claim("equivalence", margin=0.10)
    assert _supported_on_the_margin(claims.equivalence, claim, np.random.default_rng(3)) <= 0.05


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


def _simulated_power(effect: float, spread: float, n: int, experiments: int = 4000) -> float:
    """The share of simulated paired experiments (n seeds, true mean ``effect``) whose 95 %
    interval excludes 0 in the effect's direction."""
    rng = np.random.default_rng(11)
    found = 0
    for _ in range(experiments):
        d = rng.normal(effect, spread, n)
        low = d.mean() - stats.t.ppf(0.975, n - 1) * d.std(ddof=1) / np.sqrt(n)
        found += low > 0
    return found / experiments


def test_detectable_effect_and_seeds_needed_agree_with_simulated_power():
    claim = claims.Claim("x", "cgantransfer-cross", "t", "superiority", "FID", ("a", "b"))
    differences = np.array([-4.0, 1.0, -6.0, -2.0])
    b = {s: 80.0 for s in range(4)}
    a = {s: 80.0 + d for s, d in zip(b, differences)}
    needed = claims.seeds_needed(claim, a, b)
    assert needed["settles"] == "supported"  # ours is lower and lower is better
    n, spread = needed["seeds"], differences.std(ddof=1)
    assert _simulated_power(abs(differences.mean()), spread, n) >= 0.77
    assert _simulated_power(abs(differences.mean()), spread, n - 1) < 0.80
    low, high = needed["range"]
    assert low <= n <= high
    # the same count from the other side: at the detectable effect of n seeds, n seeds are needed
    effect = claims.detectable_effect(differences)
    assert 0.77 <= _simulated_power(effect, spread, 4) <= 0.83
    shifted = {s: 80.0 - effect + d - differences.mean() for s, d in zip(b, differences)}
    assert claims.seeds_needed(claim, shifted, b)["seeds"] in (4, 5)  # 5 only by rounding at 0.8
    # pointing the other way, the seeds would settle it as contradicted
    assert claims.seeds_needed(claim, b, a)["settles"] == "contradicted"
    assert claims.seeds_needed(claim, b, b) is None  # no difference to find
    assert claims.seeds_needed(claim, {0: 70.0}, {0: 80.0}) is None  # one seed


def test_seeds_needed_for_equivalence_grow_with_the_spread_and_turn_outside_the_margin():
    claim = claims.Claim("x", "ctf-table1", "t", "equivalence", "score", ("a", "b"),
                         lower_is_better=False, margin=0.10)
    b = {s: 3.0 for s in range(3)}
    tight = claims.seeds_needed(claim, {s: 3.0 * (1 + 0.01 * (s - 1)) for s in b}, b)
    loose = claims.seeds_needed(claim, {s: 3.0 * (1 + 0.08 * (s - 1)) for s in b}, b)
    assert tight["settles"] == loose["settles"] == "supported"
    assert 2 <= tight["seeds"] < loose["seeds"]
    outside = claims.seeds_needed(claim, {s: 4.0 * (1 + 0.02 * (s - 1)) for s in b}, b)
    assert outside["settles"] == "contradicted" and outside["seeds"] >= 2


def test_non_inferiority_is_one_sided():
    claim = _claim("non-inferiority", margin=0.10)
    rng = np.random.default_rng(5)
    base = {s: 100 * np.exp(rng.normal(0, 0.1)) for s in range(SEEDS)}
    better = {s: 0.8 * v * np.exp(rng.normal(0, 0.02)) for s, v in base.items()}
    assert claims.non_inferiority(claim, better, base).verdict == "supported"  # beats B: fine
    worse = {s: 1.4 * v * np.exp(rng.normal(0, 0.02)) for s, v in base.items()}
    assert claims.non_inferiority(claim, worse, base).verdict == "contradicted"
    # higher is better: a larger A is the good direction
    up = _claim("non-inferiority", margin=0.10, lower_is_better=False)
    assert claims.non_inferiority(up, worse, base).verdict == "supported"
    assert claims.non_inferiority(up, better, base).verdict == "contradicted"
    with pytest.raises(ValueError, match="margin"):
        _claim("non-inferiority")
    # on the margin, supported in at most 5 % of experiments
    assert _supported_on_the_margin(claims.non_inferiority, claim, rng) <= 0.05


def test_an_equivalence_row_says_which_arm_is_ahead_when_its_interval_excludes_one():
    claim = _claim("equivalence", margin=0.10)
    base = {s: 100.0 for s in range(4)}
    lower = {s: 97.0 + 0.2 * s for s in range(4)}  # ours lower FID at every seed: ahead
    row = claims.equivalence(claim, lower, base)
    assert row.verdict == "supported" and "ours ahead (A / B below 1" in row.ours
    even = claims.equivalence(claim, {0: 99.0, 1: 101.0, 2: 100.5, 3: 99.5}, base)
    assert "ahead" not in even.ours


def test_decided_rows_carry_p_values_that_agree_with_their_intervals():
    rng = np.random.default_rng(4)
    for kind, judge, extra in (("superiority", claims.superiority, {}),
                               ("equivalence", claims.equivalence, {"margin": 0.1}),
                               ("non-inferiority", claims.non_inferiority, {"margin": 0.1})):
        claim = _claim(kind, **extra)
        for _ in range(200):
            a, b = _paired_runs(rng, rng.normal(0, 3), seeds=4, spread=2.0)
            row = judge(claim, a, b)
            decided = row.verdict in ("supported", "contradicted")
            assert decided == (row.p_value < 0.05), (kind, row.verdict, row.p_value)


def _row(p: float, verdict: str = "supported", kind: str = "superiority") -> claims.Result:
    return claims.Result("demo", f"p={p}", "", "", 5, 0.0, (0.0, 1.0), 1.0, verdict, kind=kind,
                         p_value=p)


def test_holm_corrects_a_chapters_decided_rows_step_down():
    rows = claims.holm([_row(0.01), _row(0.03), _row(0.04, "contradicted"),
                        _row(0.5, "inconclusive"), claims.Result("demo", "exact", "", "", 0, 0.0, None,
                                                                  None, "supported", kind="exact")])
    assert [r.adjusted_p for r in rows[:4]] == pytest.approx([0.04, 0.09, 0.09, 0.5])
    assert [r.verdict for r in rows] == ["supported", "inconclusive", "inconclusive", "inconclusive",
                                         "supported"]
    assert "Holm" in rows[1].reason and "contradicted alone" in rows[2].reason
    assert rows[4].adjusted_p is None  # a construction check is not a test of the paper
    # under the null, three claims decided at 5 % each would err far more often; Holm keeps it at 5 %
    rng = np.random.default_rng(9)
    errors = 0
    for _ in range(1000):
        results = [claims.superiority(_claim(), *_paired_runs(rng, 0.0)) for _ in range(3)]
        errors += any(r.verdict != "inconclusive" for r in claims.holm(results))
    assert errors / 1000 <= 0.06


def test_a_precondition_keeps_the_verdict_the_numbers_alone_give():
    gate = claims.Precondition("ours adapted", False, "seed 1: chose iteration 0")
    row = claims.superiority(_claim(), {0: 1.0, 1: 2.0, 2: 1.5}, {0: 5.0, 1: 6.0, 2: 5.5}, [gate])
    assert row.verdict == "untestable" and row.ungated == "supported" and row.p_value is None
    assert "chose iteration 0" in row.reason


def test_adapted_fails_an_arm_that_chose_its_start_or_never_beat_it():
    curves = {0: [(0, 10.0), (50, 6.0), (100, 7.0)], 1: [(0, 10.0), (50, 12.0), (100, 11.0)],
              2: [(0, 10.0), (50, 9.0)]}
    gate = claims.adapted("BSA", curves, {0: 50, 1: 0, 2: 50})
    assert not gate.holds and "seed 1: chose iteration 0" in gate.detail and "seed 0" not in gate.detail
    assert claims.adapted("BSA", curves, {0: 50, 1: 100, 2: 50}).detail.count("not below the start") == 1
    assert claims.adapted("BSA", {0: curves[0]}, {0: 50}).holds
    assert not claims.adapted("BSA", {0: [(50, 6.0)]}, {0: 50}).holds  # no start to compare


def test_converged_asks_for_a_plateau_in_the_last_third():
    still = [(i * 10, 100.0 - 10 * i) for i in range(9)]  # falls to the end
    plateau = [(i * 10, max(60.0, 100.0 - 10 * i)) for i in range(9)]
    noisy = [(0, 100.0), (10, 60.0), (20, 55.0), (30, 50.0), (40, 52.0), (50, 49.0)]
    assert claims.late_gain(still) == pytest.approx(30 / 80)
    assert claims.late_gain(plateau) == 0.0
    assert claims.late_gain(noisy) == pytest.approx(1 / 51)  # 2 % of the gain: a plateau
    gate = claims.converged("TransferGAN", {0: plateau, 1: still, 2: noisy})
    assert not gate.holds and "seed 1" in gate.detail and "seed 0" not in gate.detail
    assert "38%" in gate.detail
    assert not claims.converged("x", {0: [(0, 1.0), (10, 0.5)]}).holds  # no curve to judge
    assert claims.converged("x", {0: [(0, 1.0), (10, 2.0), (20, 3.0)]}).holds  # never improved


def test_learned_and_not_memorising_name_the_failing_units():
    gate = claims.learned("ours", {0: 0.8, 1: 0.12, 2: float("nan")}, chance=0.1)
    assert not gate.holds and "seed 1: accuracy 0.120" in gate.detail and "seed 2: not measured" in gate.detail
    assert "≥ 0.55" in gate.description  # halfway from chance to 1
    assert claims.learned("ours", {0: 0.55, 1: 0.9}, chance=0.1).holds
    assert not claims.learned("ours", {0: 0.7}, chance=0.5).holds  # two classes: 0.75 needed
    copying = claims.not_memorising("Update all", {0: 0.95, 1: 0.2})
    assert not copying.holds and "seed 1: ratio 0.20" in copying.detail
    assert claims.not_memorising("BSA", {0: 0.9, 1: 1.3}).holds
    blank = claims.fitted("BSA", {0: 0.96, 1: 0.04, 2: float("nan")})
    assert not blank.holds and "seed 1: 4% matched" in blank.detail and "seed 2: not measured" in blank.detail
    assert "seed 0" not in blank.detail and claims.fitted("BSA", {0: 0.5, 1: 1.0}).holds


def test_curve_reads_a_history_and_never_chooses_a_collapsed_evaluation():
    history = [{"iteration": 0, "fid": 10.0}, {"iteration": 5, "fid": 1.0, "collapsed": True},
               {"iteration": 10}, {"iteration": 15, "fid": 8.0}]
    assert claims.curve(history, "fid") == [(0, 10.0), (5, np.inf), (15, 8.0)]


def test_arm_preconditions_fail_where_nothing_can_be_judged():
    assert not claims.adapted("x", {}, {}).holds  # no runs: nothing shows the arm worked
    assert "no chosen checkpoint" in claims.adapted("x", {0: [(0, 5.0), (10, 4.0)]},
                                                      {0: float("nan")}).detail
    failed = [(0, 5.0), (10, float("nan")), (20, 4.0)]
    collapsed_start = [(0, float("inf")), (10, 5.0), (20, 4.0)]
    assert np.isnan(claims.late_gain(failed)) and np.isnan(claims.late_gain(collapsed_start))
    assert not claims.converged("x", {0: failed}).holds
    censored = claims.speed(_claim("speed"), {0: None, 1: 5}, {0: 8, 1: 9}, {1: 50}, {0: 50, 1: 50})
    assert censored.verdict == "untestable" and "failed (seed 0)" in censored.reason


def test_a_gap_is_measurable_only_when_its_interval_excludes_zero_on_the_better_side():
    entire, fewer = {0: 50.0, 1: 52.0, 2: 49.0}, {0: 60.0, 1: 61.0, 2: 60.5}
    assert claims.measurable_gap("fewer images cost FID", entire, fewer).holds
    reversed_gap = claims.measurable_gap("the other way", fewer, entire)
    assert not reversed_gap.holds and "the other way round" in reversed_gap.detail
    assert not claims.measurable_gap("accuracy", entire, fewer, lower_is_better=False).holds
    noisy = claims.measurable_gap("noisy", entire, {0: 40.0, 1: 70.0, 2: 55.0})
    assert not noisy.holds and "testable in a setting where the gap is larger" in noisy.detail
    # a mean gap of 4.7 with a spread of 14 asks for 74 paired seeds at 80 % power
    assert "with about 74 seeds" in noisy.detail
    tiny = claims.measurable_gap("tiny", entire, {0: 50.5, 1: 62.0, 2: 39.8})
    assert "with more than 1,000 seeds" in tiny.detail  # a mean of 0.43 under a spread of 9.6
    backwards = claims.measurable_gap("mean the other way", entire, {0: 40.0, 1: 50.0, 2: 55.0})
    assert not backwards.holds and "its mean is not in the expected direction" in backwards.detail
    assert "no interval" in claims.measurable_gap("one seed", {0: 1.0}, {0: 2.0}).detail
