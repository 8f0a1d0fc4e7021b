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


def _largest_difference(a: dict, b: dict) -> float:
    return max((a[k].float() - b[k].float()).abs().max().item() for k in a)


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
    # the first D and G steps start from identical weights: their gradients agree to rounding
    assert max(relative(two["gradients"][i], one["gradients"][i]) for i in (0, 1)) < 1e-4
    assert _largest_difference(two["discriminator"], one["discriminator"]) < 1e-5
    # Adam divides by √v, so a G gradient entry near zero moves its weight by ≈ lr whatever
    # its rounding, and later G steps drift apart a little (1e-3 to 1e-2 relative); G is
    # therefore compared by what it computes, against what half a batch changes
    moved = (one["output"] - half["output"]).abs().max()
    assert (two["output"] - one["output"]).abs().max() < 0.1 * moved


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
