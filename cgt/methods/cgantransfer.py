"""cGANTransfer (Shahbazi et al., CVPR 2021): new classes from the old classes' BN parameters.

For each conditional BN layer ``l`` and each of its two parameters (scale γ and
shift β, learned separately), a new class ``y'`` gets

    γ_l^{y'} = [γ̂_l^1 … γ̂_l^N] S_γl^{y'} + r_γl^{y'}                    Eq. (5), (6)

where ``S`` are learned similarity scores (knowledge propagation), ``γ̂`` an
updatable copy of the old classes' parameters that all new classes share
("pseudo-classes", knowledge sharing) and ``r`` a residual.  Training adds
``λ_r Σ‖r‖² + λ_s Σ|S|`` to the generator loss (Eq. 7).  The old classes keep
their own, untouched parameters.

:class:`TransferConfig` defaults follow the paper's equations;
``TransferConfig.official()`` switches on the official code's deviations (listed in
the chapter's "paper vs official code" table).
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from ..nn import Generator
from .extension import ExtendedGenerator, IndependentRows, NewClassRows, rows_and_discriminator


@dataclass(frozen=True)
class TransferConfig:
    """What the knowledge-transfer block does; the ablations of Table 2 are switches here.

    ``tunable_prior``: knowledge sharing (update the copy of the old parameters).
    ``residuals``: add per-class residual vectors.  ``shared_scores``: one score
    matrix for all layers (Table 2, "Shared W").  ``lambda_r``/``lambda_s``: Eq. (7).
    The official-code switches: ``score_bias`` (scores are an affine map of the
    one-hot with one bias shared by all new classes), ``sn_prior`` (the prior copy
    is spectral-normalised, so a one-hot score no longer gives back an old class),
    ``residual_init`` (``zeros`` or N(0, 0.02) as the code does), ``mean_penalties``
    (sums of per-tensor means instead of Eq. 7's norms), ``update_bn_stats`` (the
    frozen generator's BN running statistics keep updating on the target batches),
    ``full_scales`` (combine full scales 1 + δ as Eq. 5 reads, or the stored deltas δ
    as the code does).
    """

    tunable_prior: bool = True
    residuals: bool = True
    shared_scores: bool = False
    lambda_r: float = 0.01
    lambda_s: float = 0.01
    score_bias: bool = False
    sn_prior: bool = False
    residual_init: str = "zeros"
    mean_penalties: bool = False
    update_bn_stats: bool = False
    full_scales: bool = True

    def __post_init__(self):
        if self.residual_init not in ("zeros", "N02"):
            raise ValueError(f"residual_init must be 'zeros' or 'N02', got '{self.residual_init}'")
        if self.lambda_r < 0 or self.lambda_s < 0:
            raise ValueError("the regulariser weights lambda_r and lambda_s cannot be negative")

    @classmethod
    def official(cls, imagenet: bool = False, **changes) -> "TransferConfig":
        """The official code's behaviour (CIFAR flavour; ``imagenet`` adds spectral norm on
        the prior copy as its ImageNet module does)."""
        return cls(**{**dict(score_bias=True, sn_prior=imagenet, residual_init="N02",
                             mean_penalties=True, update_bn_stats=True, full_scales=False),
                      **changes})

    @property
    def quirks(self) -> bool:
        return any((self.score_bias, self.sn_prior, self.residual_init != "zeros",
                    self.mean_penalties, self.update_bn_stats, not self.full_scales))

    def to_dict(self) -> dict:
        return asdict(self)


class PriorCopy(nn.Module):
    """The updatable copy of the old classes' parameters (C×N as a linear map of scores)."""

    def __init__(self, old_rows: torch.Tensor, spectral: bool):
        super().__init__()
        linear = nn.Linear(old_rows.shape[0], old_rows.shape[1], bias=False)
        with torch.no_grad():
            linear.weight.copy_(old_rows.T)
        self.map = spectral_norm(linear) if spectral else linear

    @property
    def rows(self) -> torch.Tensor:
        """N×C: row j is pseudo-class j."""
        return self.map.weight.T


class KnowledgeTransfer(NewClassRows):
    """Eq. (5)–(6) for one parameter (scale or shift) of one layer: ``S · P̂ + R``.

    ``scores`` may be passed in to share one score matrix between layers.
    Paper default: scores start at 1/N (each new class begins as the mean of the old
    ones) and residuals at zero; the official code starts both at random.
    """

    def __init__(self, old_rows: torch.Tensor, num_new: int, config: TransferConfig,
                 scores: nn.Parameter | None = None, score_bias: nn.Parameter | None = None,
                 is_gain: bool = False):
        super().__init__()
        num_old, features = old_rows.shape
        self.config, self.num_old, self.num_new = config, num_old, num_new
        self.gain_offset = 0.0 if (is_gain and config.full_scales) else 1.0
        prior_rows = old_rows + (1.0 - self.gain_offset)  # full scales 1 + δ when combining them
        self.prior = PriorCopy(prior_rows, config.sn_prior)
        self.scores = scores if scores is not None else nn.Parameter(initial_scores(num_new, num_old, config))
        self.score_bias = score_bias
        if config.score_bias and score_bias is None:
            bound = 1.0 / math.sqrt(num_new)  # nn.Linear's default bias init, as in the code
            self.score_bias = nn.Parameter(torch.empty(num_old).uniform_(-bound, bound))
        self.residual = None
        if config.residuals:
            start = torch.zeros(num_new, features)
            if config.residual_init == "N02":
                start.normal_(0.0, 0.02)
            self.residual = nn.Parameter(start)

    def effective_scores(self) -> torch.Tensor:
        """M×N: row y' is S^{y'} (plus the shared bias in the official form)."""
        return self.scores + self.score_bias if self.score_bias is not None else self.scores

    def rows(self) -> torch.Tensor:
        """M×C: row y' is S^{y'} · [γ̂^1 … γ̂^N] + r^{y'} (Eq. 5, 6; β alike)."""
        out = self.effective_scores() @ self.prior.rows
        return out + self.residual if self.residual is not None else out

    def pseudo_rows(self) -> torch.Tensor:
        """N×C: the pseudo-classes (the updated prior), in the same units as :meth:`rows`."""
        return self.prior.rows

    def score_tensors(self) -> list[nn.Parameter]:
        return [p for p in (self.scores, self.score_bias) if p is not None]

    def trainable(self) -> list[nn.Parameter]:
        params = self.score_tensors()
        if self.config.tunable_prior:
            params += list(self.prior.parameters())
        if self.residual is not None:
            params.append(self.residual)
        return params


def initial_scores(num_new: int, num_old: int, config: TransferConfig) -> torch.Tensor:
    if config.score_bias:  # the official CIFAR module: N(0, 0.02) weights, the bias does the rest
        return torch.randn(num_new, num_old) * 0.02
    return torch.full((num_new, num_old), 1.0 / num_old)


def extend_with_transfer(generator: Generator, new_class_names: list[str],
                         config: TransferConfig = TransferConfig()) -> ExtendedGenerator:
    """The pretrained ``generator`` extended by M new classes through knowledge transfer."""
    count = len(new_class_names)
    shared: dict[str, tuple] = {}

    def make_rows(layer_index, bn, old_gain, old_bias):
        made = []
        for kind, old in (("gain", old_gain), ("bias", old_bias)):
            scores = bias = None
            if config.shared_scores:
                if kind not in shared:
                    first = KnowledgeTransfer(old, count, config, is_gain=kind == "gain")
                    shared[kind] = (first.scores, first.score_bias)
                    made.append(first)
                    continue
                scores, bias = shared[kind]
            made.append(KnowledgeTransfer(old, count, config, scores, bias, is_gain=kind == "gain"))
        return tuple(made)

    return ExtendedGenerator(generator, new_class_names, make_rows,
                             frozen_body=not config.update_bn_stats)


def transfer_blocks(generator: ExtendedGenerator) -> list[tuple[KnowledgeTransfer, KnowledgeTransfer]]:
    """(scale block, shift block) per layer, first layer first."""
    return [(layer.new_gain, layer.new_bias) for layer in generator.extended_layers]


def transfer_penalty(generator: ExtendedGenerator) -> torch.Tensor:
    """λ_r L_r + λ_s L_s of Eq. (7).

    Paper form: squared ℓ2 norms of the residuals and ℓ1 norms of the
    scores, summed over layers and new classes.  Official form
    (``mean_penalties``): the mean of each tensor's squares / absolute
    values, summed over tensors, score biases included.
    """
    blocks = [b for pair in transfer_blocks(generator) for b in pair]
    config = blocks[0].config
    reduce = torch.mean if config.mean_penalties else torch.sum
    seen, sparsity, residual = set(), 0.0, 0.0
    for block in blocks:
        for scores in block.score_tensors():
            if id(scores) not in seen:
                seen.add(id(scores))
                sparsity = sparsity + reduce(scores.abs())
        if block.residual is not None:
            residual = residual + reduce(block.residual ** 2)
    return config.lambda_r * residual + config.lambda_s * sparsity


bn_stage_parameters = rows_and_discriminator  # the BN stage: transfer blocks (and z copies), all of D


def finetune_stage(generator: ExtendedGenerator) -> ExtendedGenerator:
    """Table 3's second stage: scores and prior copy frozen, residuals and the body train.

    Returns a copy whose body trains normally (batch statistics, power iterations).
    """
    tuned = copy.deepcopy(generator)
    tuned.frozen_body = False
    for layer in tuned.extended_layers:
        for block in (layer.new_gain, layer.new_bias):
            if block.residual is None:  # the ablations without residuals get zero ones to tune
                block.residual = nn.Parameter(torch.zeros_like(block.rows().detach()))
    return tuned


def finetune_parameters(generator: ExtendedGenerator, discriminator: nn.Module):
    residuals = [b.residual for pair in transfer_blocks(generator) for b in pair]
    z_maps = [p for layer in generator.extended_layers for part in (layer.z_gain, layer.z_bias)
              if part is not None for p in part.parameters()]
    return generator.body_parameters() + residuals + z_maps, list(discriminator.parameters())


def pseudo_class_generator(generator: ExtendedGenerator) -> ExtendedGenerator:
    """Fig. 8: a copy whose new classes are the N pseudo-classes (the updated prior
    rows taken directly, no scores, no residuals)."""
    names = [f"pseudo-{name}" for name in generator.cfg.class_names[:generator.num_old]]
    blocks = transfer_blocks(generator)

    def make_rows(layer_index, bn, old_gain, old_bias):
        made = []
        for block in blocks[layer_index]:
            rows = IndependentRows(len(names), old_gain.shape[1],
                                   block.pseudo_rows().detach() + (block.gain_offset - 1.0))
            made.append(rows)
        return tuple(made)

    base = plain_base(generator)
    return ExtendedGenerator(base, names, make_rows, frozen_body=True).eval()


def plain_base(generator: ExtendedGenerator) -> Generator:
    """The pretrained generator inside an extended one (old classes only)."""
    cfg = copy.deepcopy(generator.cfg)
    cfg.num_classes, cfg.class_names = generator.num_old, cfg.class_names[:generator.num_old]
    base = Generator(cfg)
    state = {k.replace(".base.", "."): v for k, v in generator.state_dict().items()
             if ".new_gain." not in k and ".new_bias." not in k and ".z_gain." not in k
             and ".z_bias." not in k}
    base.load_state_dict(state)
    return base.to(next(generator.parameters()).device).eval()


def with_scores_of_first_layer(generator: ExtendedGenerator, keep_layers: int) -> ExtendedGenerator:
    """Fig. 9: a copy where every layer from ``keep_layers`` on uses the first layer's
    learned scores (``keep_layers = 1``: all layers use layer 1's; L: the trained model)."""
    copied = copy.deepcopy(generator).eval()
    first = transfer_blocks(copied)[0]
    with torch.no_grad():
        for pair in transfer_blocks(copied)[keep_layers:]:
            for block, source in zip(pair, first):
                block.scores = nn.Parameter(source.scores.detach().clone())
                if source.score_bias is not None:
                    block.score_bias = nn.Parameter(source.score_bias.detach().clone())
    return copied


def learned_scores(generator: ExtendedGenerator):
    """A tidy table of the effective scores: layer, parameter, new class, old class, score."""
    import pandas as pd

    names = generator.cfg.class_names
    rows = []
    for layer, pair in enumerate(transfer_blocks(generator), start=1):
        for kind, block in zip(("scale", "shift"), pair):
            scores = block.effective_scores().detach().cpu()
            for i in range(generator.num_new):
                for j in range(generator.num_old):
                    rows.append({"layer": layer, "parameter": kind,
                                 "new class": names[generator.num_old + i], "old class": names[j],
                                 "score": float(scores[i, j])})
    return pd.DataFrame(rows)
