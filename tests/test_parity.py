"""The fast-vs-naive parity verdict of the Foundations chapter."""

import pandas as pd
import pytest

from cgt.experiments.foundations import parity_summary


def _runs(naive, fast):
    rows = [{"path": "naive", "seed": s, "FID": f, "s / iteration": 0.5} for s, f in enumerate(naive)]
    rows += [{"path": "fast", "seed": s, "FID": f, "s / iteration": 0.25} for s, f in enumerate(fast)]
    return pd.DataFrame(rows)


def test_a_gap_inside_the_seed_spread_is_within_noise():
    summary = parity_summary(_runs([300, 340, 320], [310, 350, 300]))
    assert summary["within_noise"] and summary["p_value"] > 0.05
    assert summary["difference"] == pytest.approx(0.0)
    assert summary["speedup"] == pytest.approx(2.0)


def test_a_gap_far_outside_the_seed_spread_is_flagged():
    summary = parity_summary(_runs([100, 101, 102], [150, 151, 149]))
    assert not summary["within_noise"] and summary["difference"] == pytest.approx(49.0)


def test_identical_results_count_as_agreement():
    assert parity_summary(_runs([100, 100, 100], [100, 100, 100]))["within_noise"]
