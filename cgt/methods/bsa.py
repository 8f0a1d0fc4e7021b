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

import torch
from torch import nn
from torch.nn import functional as F

from ..nn import Generator
from ..nn.biggan import truncated_normal  # noqa: F401  (BSA samples with it)
from ..nn.layers import ConditionalBatchNorm2d


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

    def forward(self, x: torch.Tensor, cond=None) -> torch.Tensor:
        if isinstance(self.base, ConditionalBatchNorm2d):
            h = self.base.norm(x) if self.reset_class or not self.base.conditional else self.base(x, cond)
        else:
            h = self.base(x)
        return self.adapt(h)


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
        h = self.first(h)
        for stage, cond in zip(g.blocks, conds):
            for layer in stage:
                h = layer(h, cond)
        return torch.tanh(g.output_layer(h))

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


def perceptual_distance(features, fake: torch.Tensor, real: torch.Tensor,
                        weights: list[float]) -> torch.Tensor:
    """Σ_l λ_l · mean |C_l(x) − C_l(G)| over the layers ``features(x)`` returns."""
    fake_layers, real_layers = features(fake), features(real)
    return sum(w * (f - r).abs().mean() for w, f, r in zip(weights, fake_layers, real_layers))


def bsa_loss(model: AdaptedGenerator, images: torch.Tensor, index: torch.Tensor, features,
             layer_weights: list[float], lambda_z: float = 0.1, lambda_bn: float = 0.02,
             noise: float = 0.01, reference_factor: int = 10) -> dict:
    """The four terms of Eq. (3) for one batch (``images`` in [-1, 1], ``index`` into the
    latents); returns each term and their sum under ``"loss"``."""
    fake = model.reconstruct(index, noise)
    pixel = F.l1_loss(fake.float(), images)
    perceptual = perceptual_distance(features, fake.float(), images, layer_weights)
    reference = torch.randn(reference_factor * len(index), model.cfg.dim_z, device=images.device)
    latent = chamfer_regulariser(model.latents[index], reference)
    scale_shift = scale_shift_regulariser(model.adapters)
    loss = pixel + perceptual + lambda_z * latent + lambda_bn * scale_shift
    return {"loss": loss, "pixel": pixel, "perceptual": perceptual, "latent": latent,
            "scale_shift": scale_shift}


def classifier_layers(network: nn.Module):
    """``features(x)``: the post-ReLU activations of every conv stage of a trained classifier
    (the project's :class:`~cgt.metrics.FeatureNetwork`), for images in [-1, 1]."""
    from ..metrics.features import to_input

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
    """The generator weights a comparison method also updates: the first linear layer
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


def fit_bsa(model: AdaptedGenerator, images: torch.Tensor, features, layer_weights: list[float], *,
            iterations: int, batch_size: int, lr_adapters: float = 0.03, lr_latents: float = 0.03,
            lr_first: float | None = None, decay_every: int | None = None, decay: float = 0.2,
            lambda_z: float = 0.1, lambda_bn: float = 0.02, seed: int = 0,
            also_train: str | None = None, lr_body: float = 1e-4,
            evaluate=None, eval_every: int = 0, progress: bool = True) -> list[dict]:
    """Optimise Eq. (3) with Adam (0.9, 0.999): every learning rate × ``decay`` every
    ``decay_every`` iterations (the official schedule: 0.2 every 3,000 of 10,000).

    ``lr_first`` also trains the first linear layer at that (tiny) rate, as the
    official BigGAN variant does.  ``also_train`` (``"first"``, ``"last"`` or
    ``"all"``) adds generator weights at ``lr_body``: the paper's comparison of the
    same loss updating the first layer, the last layers or everything (§5.2).  Returns the loss terms (and metrics, when
    ``evaluate(model, iteration)`` is given) every ``eval_every`` iterations.
    """
    from tqdm import tqdm

    if len(images) != len(model.latents):
        raise ValueError(f"{len(images)} images but {len(model.latents)} latent codes")
    device = images.device
    model.to(device).train()
    groups = [{"params": model.adapter_parameters(), "lr": lr_adapters},
              {"params": [model.latents], "lr": lr_latents}]
    if lr_first:
        first = list(model.generator.linear.parameters())
        for p in first:
            p.requires_grad_(True)
        groups.append({"params": first, "lr": lr_first})
    if also_train is not None:
        body = body_parameters(model, also_train)
        for p in body:
            p.requires_grad_(True)
        groups.append({"params": body, "lr": lr_body})
    optimiser = torch.optim.Adam(groups, betas=(0.9, 0.999), eps=1e-8)
    schedule = torch.optim.lr_scheduler.StepLR(optimiser, decay_every or max(1, iterations * 3 // 10),
                                               gamma=decay)
    rng = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    history = []
    quiet = {} if progress else {"disable": True}
    for iteration in tqdm(range(1, iterations + 1), desc="bsa", leave=False, **quiet):
        index = torch.randperm(len(images), generator=rng)[:batch_size].to(device)
        terms = bsa_loss(model, images[index], index, features, layer_weights,
                         lambda_z=lambda_z, lambda_bn=lambda_bn)
        optimiser.zero_grad(set_to_none=True)
        terms["loss"].backward()
        optimiser.step()
        schedule.step()
        if not torch.isfinite(terms["loss"]):
            from ..train import DivergenceError

            raise DivergenceError(f"the BSA loss became {terms['loss'].item()} at iteration {iteration}")
        if eval_every and (iteration % eval_every == 0 or iteration == iterations):
            entry = {"iteration": iteration, **{k: float(v.detach()) for k, v in terms.items()}}
            if evaluate is not None:
                model.eval()
                with torch.no_grad():
                    entry.update(evaluate(model, iteration))
                model.train()
            history.append(entry)
    model.eval()
    return history


VGG16_VARIABLE = "CGT_VGG16"
VGG16_LAYERS = (1, 3, 6, 8, 11, 13, 15, 18, 20, 22)  # post-ReLU conv1_1 … conv4_3 in vgg16.features


def perceptual_features(kind: str = "auto"):
    """(name, ``features(x)``) of the classifier behind the perceptual term.

    ``vgg16``: torchvision's VGG16 with the ImageNet weights from the file in
    ``CGT_VGG16`` (BSA's choice: conv1_1 … conv4_3 after ReLU); ``cgt``: the
    project's feature network; ``auto``: VGG16 when its file is there.  Note that
    the cgt network also scores FID, so a BSA run trained through it is judged by
    the features it optimised.
    """
    import os

    file = os.environ.get(VGG16_VARIABLE)
    if kind == "auto":
        kind = "vgg16" if file and os.path.exists(file) else "cgt"
    if kind == "cgt":
        from ..metrics import load_feature_network

        network = load_feature_network()
        for p in network.parameters():
            p.requires_grad_(False)
        return "cgt-featnet", classifier_layers(network)
    if kind != "vgg16":
        raise ValueError(f"unknown perceptual network '{kind}'; valid: auto, cgt, vgg16")
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
