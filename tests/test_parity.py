"""The fast-vs-naive parity claim of the Foundations chapter (through cgt.claims)."""

import pandas as pd
import pytest

from cgt.experiments.foundations import parity_claim, parity_summary


def _runs(naive, fast):
    rows = [{"path": "naive", "seed": s, "FID": f, "s / iteration": 0.5} for s, f in enumerate(naive)]
    rows += [{"path": "fast", "seed": s, "FID": f, "s / iteration": 0.25} for s, f in enumerate(fast)]
    return pd.DataFrame(rows)


def test_the_summary_describes_both_paths():
    summary = parity_summary(_runs([300, 340, 320], [310, 350, 300]))
    assert summary["difference"] == pytest.approx(0.0)
    assert summary["speedup"] == pytest.approx(2.0)
    assert summary["naive"]["sd"] == pytest.approx(20.0)


def test_paired_fids_within_the_margin_support_the_claim():
    result = parity_claim(_runs([300, 340, 320], [301, 342, 319]))
    assert result.verdict == "supported" and result.seeds == 3


def test_a_gap_far_outside_the_margin_contradicts_it():
    assert parity_claim(_runs([100, 101, 102], [150, 151, 149])).verdict == "contradicted"


def test_seed_noise_wider_than_the_margin_is_inconclusive():
    result = parity_claim(_runs([300, 340, 320], [330, 330, 290]))
    assert result.verdict == "inconclusive" and "crosses the margin" in result.reason


def test_identical_results_count_as_agreement_and_a_failed_run_as_untestable():
    assert parity_claim(_runs([100, 100, 100], [100, 100, 100])).verdict == "supported"
    assert parity_claim(_runs([100, 100, 100], [100, float("nan"), 100])).verdict == "untestable"
