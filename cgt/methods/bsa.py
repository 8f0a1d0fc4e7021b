"""Batch Statistics Adaptation (Noguchi & Harada, ICCV 2019): a frozen generator, new scale/shift.

A pretrained generator is adapted to a few images by learning only

* a per-channel scale γ and shift β after every batch norm (and one extra pair after
  the first linear layer, as the official code adds), with the pretrained BN
  statistics used as they are (inference mode);
* one latent code z_i per training image, initialised at zero (GLO-style).

The loss is Eq. (3): an L1 pixel term, a perceptual term (feature distances of a
trained classifier), a Chamfer regulariser that keeps the codes spread like N(0, I),
and an ℓ2 pull of (γ, β) towards (1, 0).  No discriminator.
"""

from __future__ import annotations

import copy
import os
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F
from tqdm import tqdm

from .. import atomic, planning
from ..checkpoints import shipped_source
from ..machine import fast_autocast
from ..metrics.features import to_input
from ..metrics.perceptual import load_perceptual_network, perceptual_network_id
from ..nn import Generator
from ..nn.biggan import truncated_normal
from ..nn.layers import ConditionalBatchNorm2d
from ..train import BestCheckpoint, DivergenceError


class ScaleShift(nn.Module):
    """h ↦ γ ⊙ h + β per channel, starting at the identity."""

    def __init__(self, channels: int):
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(channels))
        self.beta = nn.Parameter(torch.zeros(channels))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h * self.gamma[None, :, None, None].to(h.dtype) + self.beta[None, :, None, None].to(h.dtype)


class AdaptedBatchNorm(nn.Module):
    """A pretrained (conditional) BN followed by a learned :class:`ScaleShift`.

    ``reset_class``: drop the class-conditional scale/shift (the official SNGAN
    variant resets them to 1/0) so that only the learned pair remains.
    """

    def __init__(self, base: nn.Module, reset_class: bool):
        super().__init__()
        self.base, self.reset_class = base, reset_class
        channels = base.num_features
        self.adapt = ScaleShift(channels)
        self.blend = 1.0  # 0: the source layer as it was, 1: the adapted one (§5.7 morphing)

    def forward(self, x: torch.Tensor, cond=None) -> torch.Tensor:
        conditional = isinstance(self.base, ConditionalBatchNorm2d)
        if conditional:
            h = self.base.norm(x) if self.reset_class or not self.base.conditional else self.base(x, cond)
        else:
            h = self.base(x)
        adapted = self.adapt(h)
        if self.blend == 1.0:
            return adapted
        source = self.base(x, cond) if conditional else self.base(x)
        return torch.lerp(source, adapted, self.blend)


class AdaptedGenerator(nn.Module):
    """A frozen copy of ``generator`` with BSA's scale/shift pairs and per-image latents.

    ``forward(z, y)`` behaves like the source generator's (a class-conditional source
    still takes labels unless ``reset_class``); ``reconstruct(index)`` renders the
    training images' codes.  The body always runs in evaluation mode.
    """

    def __init__(self, generator: Generator, num_images: int, reset_class: bool = True,
                 class_label: int = 0):
        super().__init__()
        self.generator = copy.deepcopy(generator).eval()
        for p in self.generator.parameters():
            p.requires_grad_(False)
        self.cfg, self.class_label = self.generator.cfg, class_label
        self.adapters = []
        for stage in self.generator.blocks:
            for name in ("bn1", "bn2"):
                layer = AdaptedBatchNorm(getattr(stage[0], name), reset_class)
                setattr(stage[0], name, layer)
                self.adapters.append(layer.adapt)
        output_bn = AdaptedBatchNorm(self.generator.output_layer[0], reset_class)
        self.generator.output_layer[0] = output_bn
        self.adapters.append(output_bn.adapt)
        channels = self.generator.linear.weight.shape[0] // self.cfg.bottom_width ** 2
        self.first = ScaleShift(channels)  # the extra pair after the first linear layer
        self.adapters.insert(0, self.first)
        self.latents = nn.Parameter(torch.zeros(num_images, self.cfg.dim_z))
        self.blend = 1.0

    def train(self, mode: bool = True):
        super().train(mode)
        self.generator.eval()  # pretrained BN statistics, no power iterations
        return self

    def adapter_parameters(self) -> list[nn.Parameter]:
        return [p for a in self.adapters for p in a.parameters()]

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        g = self.generator
        if self.cfg.num_classes and y is None:
            y = torch.full((len(z),), self.class_label, dtype=torch.long, device=z.device)
        z0, conds = g.conditioning(z, y)
        h = g.linear(z0).view(z.shape[0], -1, self.cfg.bottom_width, self.cfg.bottom_width)
        h = torch.lerp(h, self.first(h), self.blend) if self.blend != 1.0 else self.first(h)
        for stage, cond in zip(g.blocks, conds):
            for layer in stage:
                h = layer(h, cond)
        return torch.tanh(g.output_layer(h))

    def sample_inputs(self, n: int, classes=None, generator=None, device=None,
                      truncation: float | None = None, start: int = 0):
        """z from the truncated normal (BSA samples at ±0.3 or ±0.4); no labels: the
        adapted domain is one class.  Lets :func:`cgt.metrics.generate` sample it."""
        device = device or self.latents.device
        return truncated_normal(n, self.cfg.dim_z, truncation, generator).to(device), None

    @contextmanager
    def morphing(self, t: float):
        """Inside the block every adapted layer outputs (1 − t)·source + t·adapted
        (§5.7, Fig. 14): t = 0 is the source generator exactly, t = 1 the new domain."""
        if not 0.0 <= t <= 1.0:
            raise ValueError(f"morphing weight must lie in [0, 1], got {t}")
        layers = [self] + [m for m in self.modules() if isinstance(m, AdaptedBatchNorm)]
        for layer in layers:
            layer.blend = float(t)
        try:
            yield self
        finally:
            for layer in layers:
                layer.blend = 1.0

    def reconstruct(self, index: torch.Tensor, noise: float = 0.0) -> torch.Tensor:
        z = self.latents[index]
        if noise:
            z = z + noise * torch.randn_like(z)
        return self(z)


def chamfer_regulariser(z: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Eq. (3)'s third term: mean_j min_i ‖z_i − r_j‖² + mean_i min_j ‖z_i − r_j‖², each
    divided by the code dimension (a Chamfer distance between codes and N(0, I) samples)."""
    distances = torch.cdist(z, reference).pow(2) / z.shape[1]
    return distances.min(0).values.mean() + distances.min(1).values.mean()


def scale_shift_regulariser(adapters) -> torch.Tensor:
    """Eq. (3)'s fourth term: Σ_l [mean((γ_l − 1)²) + mean(β_l²)]."""
    return sum(((a.gamma - 1) ** 2).mean() + (a.beta ** 2).mean() for a in adapters)


def bsa_loss(model: AdaptedGenerator, images: torch.Tensor, index: torch.Tensor, features,
             layer_weights: list[float], lambda_z: float = 0.1, lambda_bn: float = 0.02,
             noise: float = 0.01, reference_factor: int = 10, encoder: nn.Module | None = None,
             autocast=nullcontext) -> dict:
    """The four terms of Eq. (3) for one batch (``images`` in [-1, 1], ``index`` into the
    latents); returns each term and their sum under ``"loss"``.

    With an ``encoder`` the codes are ``encoder(images)`` instead of the stored
    latents (the paper's encoder-generator baseline, whose loss is L1 + perceptual
    only: pass ``lambda_z = lambda_bn = 0``).  ``autocast`` wraps only the rendering
    and the feature network; the losses are taken in fp32.
    """
    with autocast():
        if encoder is None:
            codes = model.latents[index]
            fake = model(codes + noise * torch.randn_like(codes) if noise else codes)
        else:
            codes = encoder(images)
            fake = model(codes)
        fake = fake.float()
        fake_layers, real_layers = features(fake), features(images)
    pixel = F.l1_loss(fake, images)
    perceptual = sum(w * (f.float() - r.float()).abs().mean()
                     for w, f, r in zip(layer_weights, fake_layers, real_layers))
    zero = images.new_zeros(())
    latent = zero
    if lambda_z:
        reference = torch.randn(reference_factor * len(index), model.cfg.dim_z, device=images.device)
        latent = chamfer_regulariser(codes.float(), reference)
    scale_shift = scale_shift_regulariser(model.adapters) if lambda_bn else zero
    loss = pixel + perceptual + lambda_z * latent + lambda_bn * scale_shift
    return {"loss": loss, "pixel": pixel, "perceptual": perceptual, "latent": latent,
            "scale_shift": scale_shift}


class Encoder(nn.Module):
    """The encoder-generator baseline's small encoder (§5.2): three strided convolutions
    and a linear map from an image to a latent code."""

    def __init__(self, channels: int, dim_z: int, resolution: int = 32, width: int = 32):
        super().__init__()
        layers, cin = [], channels
        for cout in (width, 2 * width, 4 * width):
            layers += [nn.Conv2d(cin, cout, 4, 2, 1), nn.LeakyReLU(0.2)]
            cin = cout
        self.trunk = nn.Sequential(*layers, nn.Flatten())
        self.head = nn.Linear(cin * (resolution // 8) ** 2, dim_z)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk(x))


def classifier_layers(network: nn.Module):
    """``features(x)``: the post-ReLU activations of every conv of a trained classifier's
    ``trunk`` (the project's :class:`~cgt.metrics.perceptual.PerceptualNetwork`), for
    images in [-1, 1]."""
    relus = [i for i, m in enumerate(network.trunk) if isinstance(m, nn.ReLU)]

    def features(x: torch.Tensor) -> list[torch.Tensor]:
        h, out = to_input(x), []
        for i, module in enumerate(network.trunk):
            h = module(h) if not isinstance(module, nn.ReLU) else F.relu(h)
            if i in relus:
                out.append(h)
        return out

    return features


def body_parameters(model: AdaptedGenerator, part: str) -> list[nn.Parameter]:
    """The generator weights a comparison method updates: the first linear layer
    (``first``), the last block and output layer (``last``) or every weight (``all``)."""
    g = model.generator
    adapters = {id(p) for p in model.adapter_parameters()}
    if part == "first":
        chosen = list(g.linear.parameters())
    elif part == "last":
        chosen = list(g.blocks[-1].parameters()) + list(g.output_layer.parameters())
    elif part == "all":
        chosen = list(g.parameters())
    else:
        raise ValueError(f"unknown part '{part}'; valid: first, last, all")
    return [p for p in chosen if id(p) not in adapters]


@dataclass(frozen=True)
class BSAConfig:
    """How Eq. (3) is optimised: Adam (0.9, 0.999), every learning rate × ``decay``
    every ``decay_every`` iterations (the official schedule: 0.2 every 3,000 of 10,000;
    default 30 % of the run).

    ``lr_first`` also trains the first linear layer at that (tiny) rate, as the
    official BigGAN variant does.  ``also_train`` (``"first"``, ``"last"`` or
    ``"all"``) trains those generator weights at ``lr_body`` *instead of* the
    scale/shift, which stay at the identity: the paper's comparison of the same
    loss updating the first layer, the last layers or everything (§5.2).  With an
    encoder (the encoder-generator baseline) it trains at ``lr_encoder`` in place of
    the per-image latents.  ``precision`` is the training loop's fast-path switch.
    ``warmup`` ramps every rate up linearly over that many first steps: at the
    large rates a short run needs, a run started at full rate can stay stuck at the
    source's output.  ``eval_every``: evaluations (and loss entries) at iteration 0
    and every that many iterations.
    """

    iterations: int
    batch_size: int
    lr_adapters: float = 0.03
    lr_latents: float = 0.03
    lr_first: float | None = None
    decay_every: int | None = None
    decay: float = 0.2
    lambda_z: float = 0.1
    lambda_bn: float = 0.02
    seed: int = 0
    also_train: str | None = None
    lr_body: float = 1e-4
    lr_encoder: float = 1e-3
    precision: str = "auto"
    warmup: int = 0
    eval_every: int = 0

    def __post_init__(self):
        if self.iterations < 1 or self.batch_size < 1:
            raise ValueError(f"iterations and batch_size must be positive, got "
                             f"{self.iterations}, {self.batch_size}")
        if self.also_train not in (None, "first", "last", "all"):
            raise ValueError(f"unknown also_train '{self.also_train}'; valid: first, last, all")


def _optimiser(model: AdaptedGenerator, config: BSAConfig, encoder: nn.Module | None):
    """Adam over what ``config`` trains, with the warm-up and step-decay schedule."""
    groups = [] if config.also_train else [{"params": model.adapter_parameters(), "lr": config.lr_adapters}]
    if encoder is None:
        groups.append({"params": [model.latents], "lr": config.lr_latents})
    else:
        groups.append({"params": list(encoder.parameters()), "lr": config.lr_encoder})
    if config.lr_first:
        first = list(model.generator.linear.parameters())
        for p in first:
            p.requires_grad_(True)
        groups.append({"params": first, "lr": config.lr_first})
    if config.also_train is not None:
        body = body_parameters(model, config.also_train)
        for p in body:
            p.requires_grad_(True)
        groups.append({"params": body, "lr": config.lr_body})
    optimiser = torch.optim.Adam(groups, betas=(0.9, 0.999), eps=1e-8)
    step = config.decay_every or max(1, config.iterations * 3 // 10)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda i: min(1.0, (i + 1) / (config.warmup + 1)) * config.decay ** (i // step))
    return optimiser, schedule


def fit_bsa(model: AdaptedGenerator, images: torch.Tensor, features, layer_weights: list[float],
            config: BSAConfig, *, encoder: nn.Module | None = None, evaluate=None,
            keep: BestCheckpoint | None = None, progress: bool = True,
            checkpoint: Path | None = None) -> list[dict]:
    """Optimise Eq. (3) as ``config`` says.  Returns the loss terms (and metrics, when
    ``evaluate(model, iteration)`` is given) at iteration 0 and every
    ``config.eval_every`` iterations; ``keep`` keeps the state of the best evaluation.

    With ``checkpoint`` the state after each evaluation is written there, and a run
    that finds one continues from it exactly (batch order included)."""
    if len(images) != len(model.latents):
        raise ValueError(f"{len(images)} images but {len(model.latents)} latent codes")
    with planning.training("bsa", config.iterations, config.batch_size, config.eval_every) as planned:
        if planning.active():  # a few measured steps (see cgt.planning)
            steps = planning.planned_iterations(planned)
            config = replace(config, iterations=steps, batch_size=planned.measured_batch,
                             eval_every=config.eval_every and steps)
        return _fit(model, images, features, layer_weights, config, planned, encoder=encoder,
                    evaluate=evaluate, keep=keep, progress=progress, checkpoint=checkpoint)


def _fit(model, images, features, layer_weights, config: BSAConfig, planned, *, encoder,
         evaluate, keep, progress, checkpoint) -> list[dict]:
    device = images.device
    model.to(device).train()
    if encoder is not None:
        encoder.to(device).train()
    optimiser, schedule = _optimiser(model, config, encoder)
    rng = torch.Generator().manual_seed(config.seed)
    torch.manual_seed(config.seed)
    history, start = [], 0
    parts = {"model": model, "optimiser": optimiser, "schedule": schedule, **(
        {"encoder": encoder} if encoder is not None else {})}
    if checkpoint is not None and checkpoint.exists():
        state = torch.load(checkpoint, map_location=device, weights_only=True)
        for name, part in parts.items():
            part.load_state_dict(state[name])
        rng.set_state(state["rng"])
        torch.set_rng_state(state["torch_rng"])
        history, start = state["history"], state["iteration"]
        if keep is not None:
            keep.metrics = state["best"]

    def loss(index):
        return bsa_loss(model, images[index], index, features, layer_weights,
                        lambda_z=config.lambda_z, lambda_bn=config.lambda_bn, encoder=encoder,
                        autocast=lambda: fast_autocast(device, config.precision))

    def record(iteration: int, terms: dict) -> None:
        entry = {"iteration": iteration, **{k: float(v.detach()) for k, v in terms.items()}}
        if evaluate is not None:  # in a fork of the RNG: what is learned never depends on it
            model.eval()
            with torch.no_grad(), torch.random.fork_rng():
                entry.update(evaluate(model, iteration))
            model.train()
        history.append(atomic.plain(entry))
        if keep is not None:
            keep.offer(entry, weights)
        if checkpoint is not None:
            atomic.save_torch({**{n: part.state_dict() for n, part in parts.items()},
                               "rng": rng.get_state(), "torch_rng": torch.get_rng_state(),
                               "history": history, "iteration": iteration,
                               "best": keep and keep.metrics}, checkpoint)

    def weights() -> dict:
        return {"generator": model.state_dict(), "encoder": encoder and encoder.state_dict()}

    # where the run starts: a first batch's loss, no step (a plan skips it: see cgt.planning)
    if config.eval_every and start == 0 and not planning.skip_start_evaluation():
        with torch.no_grad(), torch.random.fork_rng():
            first = torch.randperm(len(images), generator=torch.Generator().manual_seed(config.seed))
            record(0, loss(first[:config.batch_size].to(device)))
    quiet = {} if progress else {"disable": True}
    for iteration in tqdm(range(start + 1, config.iterations + 1), initial=start,
                          total=config.iterations, desc="bsa", leave=False, **quiet):
        index = torch.randperm(len(images), generator=rng)[:config.batch_size].to(device)
        with planning.step(planned, iteration - start - 1):
            terms = loss(index)
            optimiser.zero_grad(set_to_none=True)
            terms["loss"].backward()
            optimiser.step()
            schedule.step()
        if not torch.isfinite(terms["loss"]):
            raise DivergenceError(f"the BSA loss became {terms['loss'].item()} at iteration {iteration}")
        if config.eval_every and (iteration % config.eval_every == 0 or iteration == config.iterations):
            record(iteration, terms)
    if keep is not None:
        keep.settle(history, weights)
    model.eval()
    if encoder is not None:
        encoder.eval()
    return history


class NormalisedScaleShift(ScaleShift):
    """A discriminator's per-channel scale/shift, the scale divided by max |γ| so the
    layer cannot raise D's Lipschitz constant (TransferGAN scale-and-shift, §5.2)."""

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        gamma = self.gamma / self.gamma.abs().max().clamp_min(1e-8)
        return h * gamma[None, :, None, None].to(h.dtype) + self.beta[None, :, None, None].to(h.dtype)


def with_scale_shift(discriminator: nn.Module) -> nn.Module:
    """``discriminator`` (modified in place) with a :class:`NormalisedScaleShift` after
    every residual block, starting at the identity."""
    for stage in discriminator.blocks:
        channels = stage[0].conv2.weight.shape[0]
        stage.append(NormalisedScaleShift(channels).to(stage[0].conv2.weight.device))
    return discriminator


def adversarial_scale_shift_parameters(generator: nn.Module, discriminator: nn.Module):
    """TransferGAN (scale and shift): G's new-class scale/shift rows; D's scale/shift
    pairs and its projection embedding (whose new row is the target class)."""
    d_params = [p for m in discriminator.modules() if isinstance(m, NormalisedScaleShift)
                for p in m.parameters()]
    return generator.rows_parameters(), d_params + list(discriminator.embed.parameters())


VGG16_VARIABLE = "CGT_VGG16"
VGG16_LAYERS = (1, 3, 6, 8, 11, 13, 15, 18, 20, 22)  # post-ReLU conv1_1 … conv4_3 in vgg16.features


def _resolve(kind: str) -> str:
    if kind == "auto":
        file = os.environ.get(VGG16_VARIABLE)
        return "vgg16" if file and os.path.exists(file) else "percnet"
    if kind not in ("percnet", "vgg16"):
        raise ValueError(f"unknown perceptual network '{kind}'; valid: auto, percnet, vgg16")
    return kind


def perceptual_choice(kind: str = "auto") -> str:
    """Which network :func:`perceptual_features` takes for ``kind`` here, named so that a
    run's key changes with it (the VGG16 file by size and time, the shipped one by id)."""
    file = os.environ.get(VGG16_VARIABLE)
    kind = _resolve(kind)
    if kind == "vgg16" and file and os.path.exists(file):
        return f"vgg16:{os.path.getsize(file)}:{os.stat(file).st_mtime_ns}"
    return perceptual_network_id() if kind == "percnet" else kind


def perceptual_features(kind: str = "auto"):
    """(name, ``features(x)``) of the classifier behind Eq. (3)'s perceptual term.

    ``vgg16``: torchvision's VGG16 with the ImageNet weights from the file in
    ``CGT_VGG16`` (BSA's choice: conv1_1 … conv4_3 after ReLU); ``percnet``: the
    project's perceptual network (:mod:`cgt.metrics.perceptual`), which is *not* the
    network that scores; ``auto``: VGG16 when its file is there, else ``percnet``.
    """
    file = os.environ.get(VGG16_VARIABLE)
    kind = _resolve(kind)
    if kind == "percnet":
        return perceptual_network_id(), classifier_layers(load_perceptual_network())
    if not file or not os.path.exists(file):
        raise FileNotFoundError(f"set {VGG16_VARIABLE} to torchvision's vgg16 ImageNet weights "
                                f"(a state_dict file); nothing is downloaded here")
    import torchvision

    vgg = torchvision.models.vgg16(weights=None)
    vgg.load_state_dict(torch.load(file, map_location="cpu", weights_only=True))
    trunk = vgg.features[:VGG16_LAYERS[-1] + 1].eval()
    for p in trunk.parameters():
        p.requires_grad_(False)
    mean = torch.tensor([0.485, 0.456, 0.406])[None, :, None, None]
    std = torch.tensor([0.229, 0.224, 0.225])[None, :, None, None]

    def features(x: torch.Tensor) -> list[torch.Tensor]:
        h = (x.expand(-1, 3, -1, -1) + 1) / 2
        h, out = (h - mean.to(h)) / std.to(h), []
        for i, module in enumerate(trunk):
            h = module(h)
            if i in VGG16_LAYERS:
                out.append(h)
        return out

    return "vgg16", features


@torch.no_grad()
def calibrated_weights(features, images: torch.Tensor, total: float = 1.0) -> list[float]:
    """Per-layer weights λ_l ∝ 1 / mean|C_l(x)| on real ``images``, summing to ``total``
    (so λ_l · mean|C_l(x)| is the same for every layer).

    BSA's 0.001 per VGG layer assumes Caffe's 0–255 input scale; other networks have
    other feature scales, so each layer is normalised by its own mean activation
    and every layer then counts equally.
    """
    scales = [float(layer.abs().mean()) for layer in features(images)]
    inverse = [1.0 / max(s, 1e-8) for s in scales]
    return [total * w / sum(inverse) for w in inverse]


@torch.no_grad()
def reestimate_batch_norm(generator: Generator, batches: int = 20, batch_size: int = 64,
                          seed: int = 0) -> Generator:
    """The running BN statistics of ``generator`` set to its own activations' averages over
    ``batches`` of N(0, I) inputs (a fresh network's 0/1 would be wrong in eval mode)."""
    norms = [m for m in generator.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average over the batches
    rng = torch.Generator().manual_seed(seed)
    generator.train()
    for _ in range(planning.preparation(batches)):  # a plan needs the shapes, not the statistics
        generator(*generator.sample_inputs(batch_size, generator=rng, device="cpu"))
    return generator.eval()


def source_generator(name: str, seed: int = 0) -> Generator:
    """A shipped source, or ``random``: the animals architecture freshly initialised with its
    BN statistics estimated on its own samples (Fig. 10)."""
    if name == "random":
        torch.manual_seed(seed)
        return reestimate_batch_norm(Generator(shipped_source("animals")[0].cfg), seed=seed)
    return shipped_source(name)[0]


def build_adapted(config: dict) -> AdaptedGenerator:
    """The untrained model of a same-loss run's config (registered in :mod:`cgt.builders`)."""
    t = config["target"]
    return AdaptedGenerator(source_generator(t["source"], t["seed"]), t["shots"])
