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


def test_the_step_operations_are_every_convolution_and_linear_layer_at_its_batch():
    operations = bench.step_operations(8, batch=4)
    kinds = {(o.kind, o.kernel) for o in operations}
    assert {("conv", (3, 3)), ("conv", (1, 1)), ("linear", ())} <= kinds  # blocks, shortcuts, z/classes
    assert all(o.input_shape[0] in (4, 8) for o in operations)  # the batch (D sees real + fake)
    ctf_only = bench.step_operations(8, batch=4, setting="CTF") - operations
    assert any(o.kind == "conv" for o in ctf_only)  # G_LH and the CTF convolutions are timed too


def test_the_roofline_is_the_fastest_step_operation_and_the_step_stays_under_it():
    """What `make bench` divides by: utilisation cannot exceed 100 % when the roofline is
    the best rate of the operations the step itself spends its FLOPs in."""
    device, width, batch = torch.device("cpu"), 16, 16
    operations = bench.step_operations(width, batch)
    rooflines = bench.measure_rooflines(device, {"naive": operations, "fast": operations},
                                        peak_sizes=(128,), repeats=2, say=lambda *a, **k: None)
    flops = bench.step_flops(width, batch)
    for path, precision in bench.PATHS.items():
        measured = rooflines[path]
        assert measured["peak"] == max(measured["candidates"].values())
        assert measured["candidates"][measured["operation"]] == measured["peak"]
        assert sum(name.startswith("conv") for name in measured["candidates"]) >= 2 * 5
        seconds = bench.step_time(width, batch, precision, device, steps=3)
        # 5 %: the step and its operations are timed apart (best of 3 steps, best of 2 per
        # operation); at width 16 one convolution shape carries most of the step, so the two
        # rates sit within timing noise of each other (a fresh-clone CI run saw the naive
        # step 1.2 % above its roofline, 180.2 against 178.1 GFLOP/s)
        assert 0 < flops / seconds <= 1.05 * measured["peak"], (path, flops / seconds,
                                                                measured["operation"])


def test_an_operation_is_timed_forward_and_backward_apart():
    operation = bench.Operation("conv", (4, 8, 16, 16), 8, 8, (3, 3), (1, 1), (1, 1))
    assert str(operation) == "conv 3×3 8→8 on 4×16×16"
    rates = bench.operation_rates(operation, torch.device("cpu"), "fp32", repeats=1)
    assert set(rates) == {"forward", "backward"} and all(r > 0 for r in rates.values())
    assert bench.roofline({"a": 1.0, "b": 3.0, "c": 2.0}) == ("b", 3.0)
