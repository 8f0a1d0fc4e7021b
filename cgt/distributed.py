"""Data-parallel training over several processes, launched by ``torchrun``.

``torchrun --nproc_per_node N -m cgt pretrain <recipe>`` (or any script calling
:func:`cgt.train.train_gan`) trains one model with N processes: gloo on CPU, NCCL on
CUDA (one GPU per process).  The training loop stays the single-process one, and the
result equals a single process with the same global batch:

* every process draws the same global batch (same seeded generator) and keeps its
  own 1/N slice of it (:func:`shard`);
* batch-norm statistics are taken over the global batch
  (:class:`CrossProcessBatchNorm2d`), so G's normalisation sees what one process
  would see;
* gradients are averaged over processes before each optimiser step
  (:func:`average_gradients`).

``DistributedDataParallel`` overlaps the gradient all-reduce with the backward pass,
but it needs every trainable parameter to take part in every backward pass, and the
book's methods freeze and select parameters and call D several times per step; one
flattened all-reduce per optimiser step is exact and costs little at these sizes.
``nn.SyncBatchNorm`` refuses CPU tensors, hence the batch norm here, which serves
both gloo and NCCL.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist
from torch import nn
# the functional all-reduce is differentiable (its backward all-reduces the gradient),
# which the batch norm below needs; the older torch.distributed.nn one is deprecated
from torch.distributed._functional_collectives import all_reduce as differentiable_all_reduce


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    return dist.get_rank() if world_size() > 1 else 0


def is_main_process() -> bool:
    """Rank 0 (or the only process): the one that evaluates and writes files."""
    return rank() == 0


def setup(device: torch.device) -> torch.device:
    """Join the process group ``torchrun`` describes in the environment (if any) and
    return this process's device: ``cuda:LOCAL_RANK`` on CUDA."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    if world_size() > 1 and device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    return device


def shard(batch_size: int) -> slice:
    """This process's part of a global batch of ``batch_size``."""
    size = world_size()
    if batch_size % size:
        raise ValueError(f"the global batch size {batch_size} must be divisible by the "
                         f"number of processes ({size})")
    per = batch_size // size
    return slice(rank() * per, (rank() + 1) * per)


def any_process(flag: bool) -> bool:
    """True in every process when ``flag`` is true in at least one."""
    if world_size() == 1:
        return flag
    nccl = dist.get_backend() == "nccl"  # which reduces CUDA tensors only
    device = torch.device("cuda", torch.cuda.current_device()) if nccl else None
    votes = torch.tensor([float(flag)], device=device)
    dist.all_reduce(votes, op=dist.ReduceOp.MAX)
    return bool(votes.item())


def average_gradients(parameters) -> None:
    """Replace every gradient by its mean over the processes (one all-reduce)."""
    size = world_size()
    if size == 1:
        return
    # every process ran the same graph, so the same parameters lack a gradient everywhere
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= size
    offset = 0
    for g in grads:
        # in place, so a channels-last gradient keeps its layout
        g.copy_(flat[offset:offset + g.numel()].view_as(g))
        offset += g.numel()


class CrossProcessBatchNorm2d(nn.BatchNorm2d):
    """``nn.BatchNorm2d`` whose training statistics are taken over all processes'
    batches; in eval mode, or in a single process, it is ``nn.BatchNorm2d``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or world_size() == 1:
            return super().forward(x)
        channels = x.shape[1]
        # statistics in fp32 at least (bf16 inputs are widened; fp64 stays fp64)
        x32 = x.to(torch.promote_types(x.dtype, torch.float32))
        # the all-reduce is differentiable: gradients flow through the global mean and variance
        local = torch.cat([x32.sum((0, 2, 3)), x32.square().sum((0, 2, 3))])
        sums = differentiable_all_reduce(local, "sum", dist.group.WORLD)
        count = torch.tensor(float(x.numel() // channels), device=x.device)
        dist.all_reduce(count)
        mean = sums[:channels] / count
        var = (sums[channels:] / count - mean.square()).clamp_min(0)
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked += 1
                cumulative = 1 / float(self.num_batches_tracked)  # momentum None: a running mean
                factor = self.momentum if self.momentum is not None else cumulative
                self.running_mean.lerp_(mean, factor)
                self.running_var.lerp_(var * count / (count - 1).clamp_min(1), factor)
        out = (x32 - mean[None, :, None, None]) * torch.rsqrt(var + self.eps)[None, :, None, None]
        if self.affine:
            out = out * self.weight[None, :, None, None] + self.bias[None, :, None, None]
        return out.to(x.dtype)


def synchronise_batch_norm(module: nn.Module) -> nn.Module:
    """Swap every ``nn.BatchNorm2d`` in ``module`` for :class:`CrossProcessBatchNorm2d`,
    keeping the very same parameter and buffer tensors (optimisers and references stay valid)."""
    for name, child in list(module.named_children()):
        if type(child) is nn.BatchNorm2d:
            synced = CrossProcessBatchNorm2d(child.num_features, child.eps, child.momentum,
                                             child.affine, child.track_running_stats)
            tensors = [*child.named_parameters(recurse=False), *child.named_buffers(recurse=False)]
            for key, tensor in tensors:
                setattr(synced, key, tensor)
            synced.train(child.training)
            setattr(module, name, synced)
        else:
            synchronise_batch_norm(child)
    return module
