"""torchrun data parallelism: two CPU processes (gloo) give one process's result."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from cgt import distributed

WORKER = Path(__file__).with_name("distributed_worker.py")


def _train(out: Path, batch: int, processes: int = 1) -> dict:
    launcher = ([sys.executable, "-m", "torch.distributed.run", "--standalone",
                 f"--nproc_per_node={processes}"] if processes > 1 else [sys.executable])
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(launcher + [str(WORKER), str(out), str(batch)], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return torch.load(out, weights_only=False)


def _flat(state: dict) -> torch.Tensor:
    return torch.cat([v.double().reshape(-1) for v in state.values()])


def test_two_processes_equal_one_with_the_same_global_batch(tmp_path):
    one = _train(tmp_path / "one.pt", batch=8)
    two = _train(tmp_path / "two.pt", batch=8, processes=2)
    half = _train(tmp_path / "half.pt", batch=4)  # what one process alone would compute
    assert one["processes"] == 1 and two["processes"] == 2
    assert len(one["gradients"]) == len(two["gradients"]) == 6  # D, G steps × 3
    relative = lambda x, a: float((x - a).norm() / a.norm())  # noqa: E731
    for step, (a, b, c) in enumerate(zip(one["gradients"], two["gradients"], half["gradients"])):
        # every optimiser step used the global batch's gradient, not a half batch's
        assert relative(b, a) < 0.1 * relative(c, a), step
    # the first D and G steps start from identical weights, so their gradients differ only by
    # float64 rounding of sums taken in another order: 2e-15 relative measured on an AVX2
    # EPYC, default and with oneDNN capped at SSE4.1; in float32 the same check read 1.5e-4
    # with that cap, so sums lose ~1e3 eps to cancellation and 1e-10 leaves room for that
    assert max(relative(two["gradients"][i], one["gradients"][i]) for i in (0, 1)) < 1e-10
    # Adam divides by √v, so an entry whose gradient is near zero moves its weight by ≈ lr
    # whatever its rounding: after the first step single weights can differ by up to ~lr (in
    # float32 4e-4 in D on an AMX Xeon, whose oneDNN kernels round differently; in float64
    # 6e-6 in G on an AVX2 EPYC), so no elementwise weight bound holds across CPU kinds.  Both networks are
    # compared instead by what they compute, and by their weights as a whole, each against what
    # half a batch changes: a wrong gradient average would be as far off as the half batch.
    for network, computed in (("generator", "output"), ("discriminator", "judged")):
        moved = (one[computed] - half[computed]).abs().max()
        assert (two[computed] - one[computed]).abs().max() < 0.1 * moved, network
        weights = {run: _flat(result[network]) for run, result in
                   (("one", one), ("two", two), ("half", half))}
        moved = (weights["half"] - weights["one"]).norm()
        assert (weights["two"] - weights["one"]).norm() < 0.1 * moved, network


def test_batch_norm_swap_keeps_tensors_and_is_plain_in_one_process():
    block = nn.Sequential(nn.Conv2d(1, 3, 3), nn.Sequential(nn.BatchNorm2d(3)))
    weight, running = block[1][0].weight, block[1][0].running_mean
    reference = nn.BatchNorm2d(3)
    reference.load_state_dict(block[1][0].state_dict())
    distributed.synchronise_batch_norm(block)
    swapped = block[1][0]
    assert isinstance(swapped, distributed.CrossProcessBatchNorm2d)
    assert swapped.weight is weight and swapped.running_mean is running
    x = torch.randn(4, 3, 5, 5)
    assert torch.equal(swapped(x), reference(x))
    assert torch.equal(swapped.running_mean, reference.running_mean)


def test_global_batch_must_divide_among_processes(monkeypatch):
    monkeypatch.setattr(distributed, "world_size", lambda: 3)
    monkeypatch.setattr(distributed, "rank", lambda: 1)
    assert distributed.shard(9) == slice(3, 6)
    with pytest.raises(ValueError, match="divisible"):
        distributed.shard(8)
