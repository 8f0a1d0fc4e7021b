"""The benchmark's counting (figures are printed by `make bench`, never asserted on time)."""

import torch

from cgt import bench


def test_flops_per_step_scale_with_width_squared():
    small, large = bench.step_flops(8, batch=4), bench.step_flops(16, batch=4)
    assert small > 0 and 3.0 < large / small < 4.2  # convolutions dominate: ∝ width²


def test_flops_scale_linearly_with_batch():
    assert 1.9 < bench.step_flops(8, batch=8) / bench.step_flops(8, batch=4) < 2.1


def test_ctf_setting_counts_its_extra_work():
    """G_LH's forward, the CTF convolutions and the box loss's D passes add to the plain step."""
    plain, ctf = bench.step_flops(8, batch=4), bench.step_flops(8, batch=4, setting="CTF")
    assert ctf > 1.3 * plain


def test_the_matmul_peak_is_the_best_of_every_size_and_timing():
    measured = bench.matmul_peak(torch.device("cpu"), torch.float32, sizes=(32, 64), repeats=3)
    assert set(measured["by_size"]) == {32, 64}
    for spread in measured["by_size"].values():
        assert 0 < spread["min"] <= spread["median"] <= spread["max"]
    assert measured["peak"] == max(s["max"] for s in measured["by_size"].values())
    budget = bench.matmul_peak(torch.device("cpu"), torch.float32, sizes=(32, 64), repeats=1,
                               budget_s=0.0)
    assert set(budget["by_size"]) == {32}  # stops growing once a product exceeds the budget
