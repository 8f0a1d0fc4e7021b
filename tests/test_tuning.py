"""The one learning-rate rule, on synthetic arms whose best rate is known."""

import math

import numpy as np
import pytest

from cgt import claims, tuning


def _bowl(best: float, diverge_above: float = math.inf):
    """A trial whose late score is smallest at ``best`` (log-quadratic), seed noise small,
    NaN (diverged) above ``diverge_above``."""
    calls = []

    def trial(arm, rate, seed):
        calls.append((arm, rate, seed))
        if rate > diverge_above:
            return math.nan
        return (math.log10(rate) - math.log10(best)) ** 2 + 0.001 * seed

    trial.calls = calls
    return trial


def test_an_inside_choice_needs_no_extension_and_every_arm_gets_as_many_trials():
    trial = _bowl(1e-3)
    result = tuning.tune({"ours": [3e-4, 1e-3, 3e-3], "bsa": [1e-4, 1e-3, 1e-2]}, trial, seeds=[7, 8],
                         verdict_seeds=[0, 1, 2])
    assert result.chosen == {"ours": 1e-3, "bsa": 1e-3} and all(result.inside.values())
    assert result.table.groupby("arm").size().to_dict() == {"bsa": 6, "ours": 6}
    assert result.precondition("ours").holds


def test_an_edge_choice_extends_the_grid_once_at_its_own_step():
    result = tuning.tune({"bsa": [1e-3, 3e-3, 1e-2]}, _bowl(2.5e-2), seeds=[7, 8])
    extended = result.table[result.table.extension]
    step = 1e-2 / 3e-3
    assert list(extended.seed) == [7, 8] and extended.rate.unique() == pytest.approx([1e-2 * step])
    assert result.chosen["bsa"] == pytest.approx(1e-2 * step) and not result.inside["bsa"]
    gate = result.precondition("bsa")
    assert not gate.holds and "chose 0.0333" in gate.detail
    # an optimum just past the edge is caught by the one extension and lies inside then
    inside = tuning.tune({"bsa": [1e-3, 3e-3, 1e-2]}, _bowl(1.2e-2), seeds=[7, 8])
    assert inside.chosen["bsa"] == pytest.approx(1e-2) and inside.inside["bsa"]
    low = tuning.tune({"bsa": [1e-3, 3e-3, 1e-2]}, _bowl(5e-4), seeds=[7, 8])
    assert low.chosen["bsa"] == pytest.approx(1e-3 / 3) and not low.inside["bsa"]


def test_a_rate_that_diverges_at_any_seed_is_ruled_out():
    def trial(arm, rate, seed):
        if rate == 1e-2 and seed == 8:
            return math.nan  # one step from divergence: fine at one seed, not the other
        return -math.log10(rate)  # otherwise, the larger the better
    result = tuning.tune({"ours": [1e-4, 1e-3, 1e-2]}, trial, seeds=[7, 8])
    assert result.chosen["ours"] == 1e-3 and result.inside["ours"]
    assert np.isinf(result.summary().loc["ours", 1e-2])


def test_the_rule_refuses_one_seed_verdict_seeds_and_unequal_grids():
    with pytest.raises(ValueError, match="at least 2 tuning seeds"):
        tuning.tune({"a": [1, 2, 3]}, _bowl(2), seeds=[7])
    with pytest.raises(ValueError, match="also verdict seeds"):
        tuning.tune({"a": [1, 2, 3]}, _bowl(2), seeds=[0, 7], verdict_seeds=[0, 1])
    with pytest.raises(ValueError, match="same number of rates"):
        tuning.tune({"a": [1, 2, 3], "b": [1, 2, 3, 4]}, _bowl(2), seeds=[7, 8])


def test_the_late_score_is_the_mean_of_the_last_evaluations():
    history = [{"iteration": i * 10, "fid": f} for i, f in enumerate([90, 40, 20, 60, 50, 70])]
    assert claims.late_score(history, "fid") == pytest.approx(60.0)  # not the lucky 20
    assert claims.late_score(history, "fid", last=1) == 70.0
    assert math.isnan(claims.late_score([], "fid"))
    collapsed = history + [{"iteration": 60, "fid": 10.0, "collapsed": True}]
    assert math.isnan(claims.late_score(collapsed, "fid"))
