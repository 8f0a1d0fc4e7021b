"""One GAN training loop for every method in the book.

Hinge loss; ``d_steps`` discriminator steps per generator step; gradient
accumulation; an optional exponential moving average of G (PyTorch's
``AveragedModel``); a parameter-selection hook through which a method decides
what trains; evaluation every N iterations with best-by-FID tracking; tqdm
progress; atomic checkpoints that carry every RNG state so a resumed run
continues exactly; and a run record per run.  Under ``torchrun`` the same loop
trains data-parallel over the processes (:mod:`cgt.distributed`).
"""

from __future__ import annotations

import math
import os
import random
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm import tqdm

from . import atomic, distributed, planning
from .machine import PRECISIONS, fast_autocast, fast_path, pick_device

if TYPE_CHECKING:  # a run record is handed in; the run layer calls training, not the reverse
    from .runs import RunRecord


class DivergenceError(RuntimeError):
    """A run's loss or weights became non-finite; the last good checkpoint is kept."""


def hinge_d_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """E[max(0, 1 − D(x))] + E[max(0, 1 + D(G(z)))]."""
    return F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean()


def hinge_g_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """−E[D(G(z))]."""
    return -fake_logits.mean()


@dataclass
class TrainConfig:
    iterations: int = 1000
    batch_size: int = 64
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    betas: tuple = (0.0, 0.999)
    adam_eps: float = 1e-8
    d_steps: int = 1
    accumulate: int = 1
    ema_decay: float | None = None
    ema_start: int = 0
    eval_every: int = 0
    checkpoint_every: int = 0
    patience: int = 0  # stop after this many evaluations without a better score; 0: never
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"

    def __post_init__(self):
        if self.precision not in PRECISIONS:
            raise ValueError(f"unknown precision '{self.precision}'; valid: {', '.join(PRECISIONS)}")
        for name in ("iterations", "batch_size", "d_steps", "accumulate"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.patience < 0 or (self.patience and not self.eval_every):
            raise ValueError(f"patience {self.patience} needs a non-negative count and eval_every")


def plateaued(history: list, select_by: str, patience: int) -> bool:
    """The last ``patience`` evaluations did not beat the best ``select_by`` before them
    (a collapsed evaluation never counts as better)."""
    scores = [h[select_by] if not h.get("collapsed") else math.inf for h in history if select_by in h]
    return 0 < patience < len(scores) and min(scores[-patience:]) >= min(scores[:-patience])


@dataclass
class TrainResult:
    generator: nn.Module
    ema: nn.Module | None
    history: list = field(default_factory=list)
    best: dict | None = None
    iterations: int = 0
    wall_time_s: float = 0.0

    @property
    def sampler(self) -> nn.Module:
        """The generator to sample from: the EMA copy when there is one."""
        return self.ema.module if self.ema is not None else self.generator


class BestCheckpoint:
    """Which state a run keeps, the one rule of every training loop: the state with the
    lowest ``select_by`` so far, written to ``folder/best.pt`` (the start included: a run
    that only got worse keeps where it started).  A collapsed evaluation (samples that
    stopped varying) is never chosen; if every one collapsed, :meth:`settle` keeps the
    last state, flagged, so that the run is shown and counted as a failure, not a score.
    A plan's runs keep no weights (:func:`cgt.planning.writes_weights`), only the metrics."""

    def __init__(self, folder: str | Path | None, select_by: str = "fid"):
        keeps_file = folder is not None and planning.writes_weights()
        self.file = Path(folder) / "best.pt" if keeps_file else None
        self.select_by = select_by
        self.metrics: dict | None = None

    def offer(self, metrics: dict, weights: Callable[[], dict]) -> None:
        """Keep ``weights()`` (a state-dict payload) when ``metrics`` beat the kept state's."""
        score = metrics.get(self.select_by)
        if score is not None and math.isfinite(score) and not metrics.get("collapsed") and (
                self.metrics is None or score < self.metrics[self.select_by]):
            self._keep(metrics, weights)

    def settle(self, history: list[dict], weights: Callable[[], dict]) -> dict | None:
        """The kept state's metrics once a run ends: the last evaluation's if none was kept."""
        if self.metrics is None and history and self.select_by in history[-1]:
            self._keep(history[-1], weights)
        return self.metrics

    def _keep(self, metrics: dict, weights: Callable[[], dict]) -> None:
        self.metrics = atomic.plain(metrics)
        if self.file is not None:
            atomic.save_torch({**weights(), "metrics": self.metrics}, self.file)


def all_parameters(generator: nn.Module, discriminator: nn.Module):
    """Default selection: everything trains."""
    return list(generator.parameters()), list(discriminator.parameters())


def _rng_state(rng: torch.Generator) -> dict:
    state = {"loop": rng.get_state(), "torch": torch.get_rng_state(),
             "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(rng: torch.Generator, state: dict) -> None:
    rng.set_state(state["loop"])
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def check_training_data(generator: nn.Module, images: torch.Tensor,
                        labels: torch.Tensor | None) -> None:
    """Refuse data the generator cannot be trained on, saying what is expected."""
    cfg = generator.cfg
    expected = (cfg.channels, cfg.resolution, cfg.resolution)
    if images.ndim != 4 or tuple(images.shape[1:]) != expected:
        raise ValueError(f"images must be N×{expected[0]}×{expected[1]}×{expected[2]} for this "
                         f"generator, got {tuple(images.shape)}; resize with "
                         f"ImageSet.resized({cfg.resolution}) or build a generator for this size")
    if not images.is_floating_point() or images.min() < -1.0001 or images.max() > 1.0001:
        raise ValueError("images must be floats in [-1, 1]: use ImageSet.to_tensor()")
    if cfg.num_classes:
        if labels is None or len(labels) != len(images):
            raise ValueError(f"a class-conditional generator needs one label per image "
                             f"({len(images)} images, {0 if labels is None else len(labels)} labels)")
        if labels.min() < 0 or labels.max() >= cfg.num_classes:
            raise ValueError(f"labels must lie in 0..{cfg.num_classes - 1}, got "
                             f"{int(labels.min())}..{int(labels.max())}")


def check_writable(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-test-{os.getpid()}"
        probe.write_bytes(b"0" * 4096)
        probe.unlink()
    except OSError as error:
        raise OSError(f"cannot write checkpoints to {folder} ({error.strerror}); choose a "
                      f"writable folder with free space (out_dir=…)") from None


@dataclass
class _Loop:
    """What one training run holds, and what its ``last.pt`` saves and restores."""

    generator: nn.Module
    discriminator: nn.Module
    images: torch.Tensor
    labels: torch.Tensor | None
    config: TrainConfig
    device: torch.device
    g_params: list
    d_params: list
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    ema: AveragedModel | None
    rng: torch.Generator
    result: TrainResult
    shard: slice

    @property
    def sampler(self) -> nn.Module:
        return self.ema.module if self.ema is not None else self.generator

    def autocast(self):
        return fast_autocast(self.device, self.config.precision)

    def batch(self):
        """A global batch drawn from the loop's own RNG; this process keeps its shard."""
        cfg, device = self.config, self.device
        index = torch.randint(len(self.images), (cfg.batch_size,), generator=self.rng).to(device)
        z = torch.randn(cfg.batch_size, self.generator.cfg.dim_z, generator=self.rng).to(device)
        index, z = index[self.shard], z[self.shard]
        return self.images[index], self.labels[index] if self.labels is not None else None, z

    def state(self, iteration: int) -> dict:
        return {"generator": self.generator.state_dict(),
                "discriminator": self.discriminator.state_dict(),
                "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict(),
                "ema": self.ema.state_dict() if self.ema is not None else None,
                "rng": _rng_state(self.rng), "history": self.result.history,
                "best": self.result.best, "iteration": iteration,
                "train_config": asdict(self.config), "gan_config": self.generator.cfg.to_dict()}

    def restore(self, file: Path) -> int:
        """Continue from ``file`` exactly (RNG states included); returns its iteration."""
        state = torch.load(file, map_location=self.device, weights_only=False)
        self.generator.load_state_dict(state["generator"])
        self.discriminator.load_state_dict(state["discriminator"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        if self.ema is not None:
            self.ema.load_state_dict(state["ema"])
        _set_rng_state(self.rng, state["rng"])
        self.result.history, self.result.best = state["history"], state["best"]
        return state["iteration"]


def _place(generator: nn.Module, discriminator: nn.Module, images: torch.Tensor,
           labels: torch.Tensor | None, config: TrainConfig):
    """(device, images, labels) with both networks moved there in the fast layout; under
    ``torchrun`` batch norm is synchronised across the processes."""
    device = distributed.setup(pick_device(config.device))
    if distributed.world_size() > 1:
        distributed.synchronise_batch_norm(generator)
        distributed.synchronise_batch_norm(discriminator)
    if device.type == "cuda":  # fast convolutions; bit-exact resume is promised on CPU only
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    _, channels_last = fast_path(device, config.precision)
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    generator.to(device, memory_format=memory_format)
    discriminator.to(device, memory_format=memory_format)
    images = images.to(device).contiguous(memory_format=memory_format)
    return device, images, labels.to(device) if labels is not None else None


def _loop(generator, discriminator, images, labels, config: TrainConfig, device,
          select_parameters: Callable) -> _Loop:
    """Optimisers over what ``select_parameters`` chooses (the rest frozen), the EMA copy
    and the seeded RNG of a fresh run."""
    torch.manual_seed(config.seed)
    g_params, d_params = select_parameters(generator, discriminator)
    chosen = {id(p) for p in g_params + d_params}
    for p in list(generator.parameters()) + list(discriminator.parameters()):
        p.requires_grad_(id(p) in chosen)
    ema = None
    if config.ema_decay:
        ema = AveragedModel(generator, multi_avg_fn=get_ema_multi_avg_fn(config.ema_decay),
                            use_buffers=True)
    return _Loop(generator, discriminator, images, labels, config, device, g_params, d_params,
                 torch.optim.Adam(g_params, config.lr_g, config.betas, config.adam_eps),
                 torch.optim.Adam(d_params, config.lr_d, config.betas, config.adam_eps),
                 ema, torch.Generator().manual_seed(config.seed), TrainResult(generator, ema),
                 distributed.shard(config.batch_size))


def _discriminator_step(loop: _Loop, d_regulariser) -> torch.Tensor:
    """``d_steps`` hinge updates of D, each over ``accumulate`` batches."""
    cfg = loop.config
    for _ in range(cfg.d_steps):
        loop.opt_d.zero_grad(set_to_none=True)
        for _ in range(cfg.accumulate):
            real, y, z = loop.batch()
            with loop.autocast():
                with torch.no_grad():
                    fake = loop.generator(z, y)
                real_logits, fake_logits = loop.discriminator(real, y), loop.discriminator(fake, y)
            d_loss = hinge_d_loss(real_logits.float(), fake_logits.float())
            if d_regulariser is not None:
                with loop.autocast():
                    d_loss = d_loss + d_regulariser(loop.discriminator, real, fake)
            (d_loss / cfg.accumulate).backward()
        distributed.average_gradients(loop.d_params)
        loop.opt_d.step()
    return d_loss


def _generator_step(loop: _Loop, regulariser) -> torch.Tensor:
    """One hinge update of G over ``accumulate`` batches, plus the method's regulariser."""
    loop.opt_g.zero_grad(set_to_none=True)
    for _ in range(loop.config.accumulate):
        _, y, z = loop.batch()
        with loop.autocast():
            fake_logits = loop.discriminator(loop.generator(z, y), y)
        g_loss = hinge_g_loss(fake_logits.float())
        if regulariser is not None:
            g_loss = g_loss + regulariser(loop.generator)
        (g_loss / loop.config.accumulate).backward()
    distributed.average_gradients(loop.g_params)
    loop.opt_g.step()
    return g_loss


def _stop_if_diverged(d_loss: torch.Tensor, g_loss: torch.Tensor, iteration: int) -> None:
    bad = [(term, loss.item()) for term, loss in (("discriminator", d_loss), ("generator", g_loss))
           if not torch.isfinite(loss)]
    if distributed.any_process(bool(bad)):  # every process stops, none waits for the others
        where = (f"the {bad[0][0]} loss became {bad[0][1]}" if bad
                 else "a loss of another process became non-finite")
        raise DivergenceError(f"{where} at iteration {iteration}; the last good checkpoint is kept")


def train_gan(generator: nn.Module, discriminator: nn.Module, images: torch.Tensor,
              labels: torch.Tensor | None, config: TrainConfig, *,
              select_parameters: Callable = all_parameters,
              evaluate: Callable[[nn.Module, int], dict] | None = None,
              regulariser: Callable[[nn.Module], torch.Tensor] | None = None,
              d_regulariser: Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
              out_dir: str | Path | None = None, record: RunRecord | None = None,
              progress: bool = True, select_by: str = "fid") -> TrainResult:
    """Train ``generator`` against ``discriminator`` on ``images`` (N×C×H×W in [-1, 1]).

    ``select_parameters(G, D)`` returns the parameter lists that the two optimisers
    update (everything else stays frozen). ``regulariser(G)`` adds a term to the
    generator loss (a method's sparsity or residual penalty); ``d_regulariser(D, real,
    fake)`` one to the discriminator loss (CTF's self-supervision). ``evaluate(G, it)``
    returns metrics at iteration 0 and every ``eval_every`` iterations; the run keeps
    the G state with the lowest ``select_by`` metric (the start included: a run that
    only got worse keeps where it started).  With ``out_dir`` the loop checkpoints there and
    resumes from ``last.pt`` if present.

    Launched by ``torchrun``, every process trains on its slice of the global batch
    ``config.batch_size`` and only rank 0 evaluates and writes files; see
    :mod:`cgt.distributed`.
    """
    check_training_data(generator, images, labels)
    with planning.training("gan", config.iterations, config.batch_size, config.eval_every,
                           images.shape[-1]) as planned:
        if planning.active():  # a few measured steps (see cgt.planning)
            config = replace(config, iterations=planning.planned_iterations(planned),
                             batch_size=planned.measured_batch, eval_every=config.eval_every and
                             planning.planned_iterations(planned), checkpoint_every=0)
        return _train(generator, discriminator, images, labels, config, planned,
                      select_parameters=select_parameters, evaluate=evaluate, regulariser=regulariser,
                      d_regulariser=d_regulariser, out_dir=out_dir, record=record, progress=progress,
                      select_by=select_by)


def _train(generator, discriminator, images, labels, config: TrainConfig, planned, *,
           select_parameters, evaluate, regulariser, d_regulariser, out_dir, record,
           progress, select_by) -> TrainResult:
    out_dir = Path(out_dir) if out_dir else None
    if out_dir is not None:
        check_writable(out_dir)
    device, images, labels = _place(generator, discriminator, images, labels, config)
    main_process = distributed.is_main_process()
    if not main_process:  # rank 0 alone evaluates and writes
        evaluate, record = None, None
    loop = _loop(generator, discriminator, images, labels, config, device, select_parameters)
    planning.sign(planned, (generator, discriminator), config.precision, config.d_steps,
                  config.accumulate, regulariser is not None, d_regulariser is not None)
    # a plan steps no further than it must to measure (see cgt.planning); once a step of
    # this signature is measured (before this loop, or by its own long first step) the
    # loop steps no more and only evaluates
    if planning.active():
        config = replace(config, iterations=max(1, min(planning.steps_to_measure(planned),
                                                       config.iterations)))
    result = loop.result
    start_iteration = 0
    if out_dir and (out_dir / "last.pt").exists():
        start_iteration = loop.restore(out_dir / "last.pt")

    def checkpoint(iteration: int) -> None:
        if planning.active():  # a plan never resumes; the weights of its few steps decide nothing
            return
        for label, module in (("generator", generator), ("discriminator", discriminator)):
            bad = [n for n, p in module.named_parameters() if not torch.isfinite(p).all()]
            if bad:  # checked before writing, so the last good checkpoint survives
                raise DivergenceError(f"{label} weights became non-finite ({', '.join(bad[:3])}) "
                                      f"by iteration {iteration}; the last good checkpoint is kept")
        if out_dir is not None and main_process:
            atomic.save_torch(loop.state(iteration), out_dir / "last.pt")

    keeper = BestCheckpoint(out_dir if main_process else None, select_by)  # rank 0 writes
    keeper.metrics = result.best  # a resumed run's, from last.pt

    def weights() -> dict:
        return {"generator": loop.sampler.state_dict(), "gan_config": generator.cfg.to_dict()}

    def evaluation(done: int, losses: dict) -> None:
        loop.sampler.eval()
        with torch.no_grad(), torch.random.fork_rng():  # training never depends on evaluating
            metrics = {"iteration": done, "wall_time_s": round(time.perf_counter() - t0, 2),
                       **losses, **evaluate(loop.sampler, done)}
        generator.train()
        result.history.append(metrics)
        keeper.offer(metrics, weights)
        result.best = keeper.metrics
        if record is not None:
            record.metrics["history"], record.metrics["best"] = result.history, result.best
            record.save()

    t0 = time.perf_counter()
    if evaluate is not None and config.eval_every and start_iteration == 0 and (
            not planning.skip_start_evaluation()):
        evaluation(0, {})  # where the run starts: speed comparisons need it
    # left unset, TQDM_DISABLE=1 still silences it; under torchrun only rank 0 shows one
    quiet = {} if progress and main_process else {"disable": True}
    bar = tqdm(range(start_iteration, config.iterations), initial=start_iteration,
               total=config.iterations, desc="train", leave=False, **quiet)
    generator.train(), discriminator.train()
    stop = config.iterations
    for iteration in bar:
        if not planning.measured(planned):
            with planning.step(planned, iteration - start_iteration):
                d_loss = _discriminator_step(loop, d_regulariser)
                g_loss = _generator_step(loop, regulariser)
        else:
            d_loss = g_loss = torch.zeros(())
        done = iteration + 1
        _stop_if_diverged(d_loss, g_loss, done)
        if loop.ema is not None and iteration >= config.ema_start:
            loop.ema.update_parameters(generator)
        bar.set_postfix(d=f"{d_loss.item():.3f}", g=f"{g_loss.item():.3f}", refresh=False)
        if evaluate is not None and config.eval_every and (done % config.eval_every == 0
                                                           or done == config.iterations):
            evaluation(done, {"d_loss": d_loss.item(), "g_loss": g_loss.item()})
            if plateaued(result.history, select_by, config.patience):
                stop = done
                break
        if config.checkpoint_every and done % config.checkpoint_every == 0:
            checkpoint(done)
    bar.close()
    result.best = keeper.settle(result.history, weights)
    checkpoint(stop)
    result.iterations = stop
    result.wall_time_s = time.perf_counter() - t0
    generator.eval()
    if loop.ema is not None:
        loop.ema.module.eval()
    return result
