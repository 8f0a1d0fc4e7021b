"""The benchmark's counting (figures are printed by `make bench`, never asserted on time)."""

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
