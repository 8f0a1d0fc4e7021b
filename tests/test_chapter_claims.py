"""Each chapter's claims() on small frames whose right verdicts are known."""

import numpy as np
import pandas as pd
import pytest

from cgt.experiments import bsa, cgantransfer, ctf


def _history(fids, every=10):
    return [{"iteration": every * (i + 1), "fid": f, "wall_time_s": float(i)} for i, f in enumerate(fids)]


def _transfer_rows(method, fids_by_seed, histories=None):
    return [{"method": method, "setting": "2/25", "dataset": "fashion_mnist", "seed": seed,
             "fid": fid, "selection_fid": fid, "best_iteration": 50.0,
             "history": (histories or {}).get(seed, _history([fid + 5, fid]))}
            for seed, fid in fids_by_seed.items()]


def test_cgantransfer_claims_pair_by_seed_and_never_reward_a_failed_full_model():
    seeds = range(5)
    ours = {s: 50.0 + s for s in seeds}
    bsa_fid = {s: 50.5 + s for s in seeds}  # within the ±10 % margin at every seed
    # ours reaches BSA's best at iteration 10; BSA's best is at 40 of 50 (not censored)
    grid = pd.DataFrame(
        _transfer_rows("cgantransfer", ours, {s: _history([f, f, f, f, f]) for s, f in ours.items()})
        + [{**r, "best_iteration": 40.0} for r in _transfer_rows(
            "bsa", bsa_fid, {s: _history([f + 9, f + 6, f + 3, f, f + 1]) for s, f in bsa_fid.items()})])
    cross = pd.DataFrame(_transfer_rows("cgantransfer", {0: 70.0}) + _transfer_rows("bsa", {0: 80.0}))
    tuned = pd.DataFrame(_transfer_rows("cgantransfer", {0: 70.0}) + _transfer_rows("finetune", {0: 65.0}))
    ablation = pd.DataFrame([{"row": r, "fid": np.nan if r == 8 else 60.0 + r, "seed": 0}
                             for r in cgantransfer.ABLATIONS])
    rows = cgantransfer.claims(grid, ablation, cross, tuned, drift=0.0)
    verdicts = [r.verdict for r in rows]
    assert verdicts[0] == "supported" and rows[0].seeds == 5  # equivalence, TOST
    assert verdicts[1] == "supported" and rows[1].estimate == pytest.approx(4.0)  # 40 / 10 its
    assert verdicts[2] == verdicts[4] == "inconclusive"  # one seed: no interval
    assert verdicts[3] == "untestable" and "full model" in rows[3].reason  # was rank 1 → ✓
    assert verdicts[5] == "supported"


def test_cgantransfer_speed_censors_ours_when_it_never_reaches_bsa_and_counts_bsa_improving():
    seeds = range(3)
    ours = {s: 50.0 + s for s in seeds}
    bsa_fid = {s: f - 1 for s, f in ours.items()}  # BSA ends better: ours never reaches it
    grid = pd.DataFrame(
        _transfer_rows("cgantransfer", ours, {s: _history([f + 1, f + 1, f, f, f]) for s, f in ours.items()})
        # BSA's best is its last evaluation (50): it had not stopped improving
        + [{**r, "best_iteration": 50.0} for r in _transfer_rows(
            "bsa", bsa_fid, {s: _history([f + 4, f + 3, f + 2, f + 1, f]) for s, f in bsa_fid.items()})])
    empty = pd.DataFrame(columns=["method", "setting", "dataset", "seed", "fid"])
    ablation = pd.DataFrame([{"row": r, "fid": 60.0 + r, "seed": 0} for r in cgantransfer.ABLATIONS])
    speed = cgantransfer.claims(grid, ablation, empty, empty, drift=0.0)[1]
    assert "3 of ours, 0 of BSA runs censored" in speed.ours and "improving at its end in 3 of 3" in speed.claim
    # BSA took 50, ours more than 50: the speed-up is at most 1×, so never supported
    assert speed.verdict == "inconclusive" and "censored runs leave it open" in speed.reason
    assert speed.interval[1] == pytest.approx(1.0)


def test_bsa_claims_compare_with_the_strongest_method_and_check_exact_properties():
    grid = pd.DataFrame([{"method": m, "label": m.upper(), "target": "lfw", "shots": 25, "fid": f}
                         for m, f in (("bsa", 90.0), ("transfergan", 80.0), ("scratch", 300.0))])
    noise = {25: 0.0, 50: 1.5, 100: -1.0}  # the paired differences vary: -10, -11.5, -9
    by_size = pd.DataFrame([{"method": m, "label": m, "shots": n, "fid": f + n + (noise[n] if m == "bsa" else 0)}
                            for n in (25, 50, 100) for m, f in (("bsa", 10.0), ("transfergan", 20.0))])
    sources = pd.DataFrame({"source": ["fashion8", "random"], "fid": [100.0, 400.0]})
    sweep = pd.DataFrame({"truncation": [0.3, 1.0, 0.6], "diversity": [0.1, 0.3, 0.2], "fid": [5, 6, 7]})
    disturbance = {"bsa": {"max_abs_difference": 0.0}, "update-all": {"max_abs_difference": 0.4}}
    rows = bsa.claims(grid, by_size, sources, sweep, disturbance)
    assert "strongest: TRANSFERGAN" in rows[0].claim and rows[0].estimate == 10.0
    assert rows[0].verdict == "inconclusive"  # one run each
    assert rows[1].seeds == 3 and rows[1].verdict == "supported"  # BSA 10 better at every size
    assert [r.verdict for r in rows[2:]] == ["supported", "inconclusive", "supported"]
    moved = bsa.claims(grid, by_size, sources, sweep, {"bsa": {"max_abs_difference": 1e-6}})
    assert moved[-1].verdict == "contradicted"


def _ctf_frame(rows, accuracy, classes=10, seeds=(0, 1, 2), score=lambda row, seed: 5.0):
    return pd.DataFrame([{"row": r, "seed": seed, "classes": classes, "fid": 50.0 + i + seed,
                          "classifier_score": score(r, seed), "conditional_accuracy": accuracy,
                          "chance_accuracy": 1 / classes}
                         for i, r in enumerate(rows) for seed in seeds])


PILOT = {"seed": 7, "iterations": 600, "curve": [(0, 0.1), (600, 0.55)], "reached": 600,
         "target": 0.5, "budget": 300, "chance": 0.1}


def test_ctf_claims_are_untestable_while_the_generator_ignores_its_classes():
    table_rows = [ctf.BASELINE, ctf.FULL]
    ablation_rows = [ctf.FULL, *ctf.ABLATIONS]
    at_chance = ctf.claims(_ctf_frame(table_rows, 0.1), _ctf_frame(table_rows, 0.005, 200),
                           _ctf_frame(ablation_rows, 0.1), PILOT)
    assert [r.verdict for r in at_chance] == ["untestable"] * 5 + ["supported"]  # the DCT identity
    assert "chance 0.1000" in at_chance[0].reason and "lowest 0.100" in at_chance[0].reason
    # one run below the gate is enough: the claim compares generators that learned their classes
    one_short = _ctf_frame(table_rows, 0.6)
    one_short.loc[(one_short.row == ctf.FULL) & (one_short.seed == 2), "conditional_accuracy"] = 0.15
    assert ctf.claims(one_short, None, None, PILOT)[0].verdict == "untestable"
    # three paired seeds whose scores agree within the margin: equivalence holds
    close = _ctf_frame(table_rows, 0.6, score=lambda row, seed: 5.0 + 0.05 * seed)
    learned = ctf.claims(close, _ctf_frame(table_rows, 0.3, 200), _ctf_frame(ablation_rows, 0.6), PILOT)
    assert learned[0].verdict == "supported" and learned[0].seeds == 3
    assert learned[2].verdict == "untestable"  # gaps of different heads never compare
    assert [r.verdict for r in learned[3:5]] == ["supported"] * 2  # FID 50 + s vs 51 + s, 52 + s
    far = _ctf_frame(table_rows, 0.6, score=lambda row, seed: (8.0 if row == ctf.FULL else 5.0) + 0.1 * seed)
    assert ctf.claims(far, None, None, PILOT)[0].verdict == "contradicted"
    # a table the profile does not run is untestable with the pilot's numbers in its reason
    skipped = ctf.claims(close, None, None, PILOT)
    assert skipped[1].verdict == "untestable" and "reached 0.50 at step 600" in skipped[1].reason
    assert skipped[3].verdict == "untestable" and "paper profile" in skipped[3].reason
