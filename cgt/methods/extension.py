"""Class extension: a pretrained conditional generator learns M new classes, the N old stay.

Both the BSA-style baseline and cGANTransfer extend a generator the same way:
every conditional BN layer keeps its pretrained parameters for the old classes
and asks a small "new-class rows" module for the scale and shift of the new
ones.  The rows module is where the methods differ:

* :class:`IndependentRows`: one free scale/shift vector per new class
  (BSA-style class extension, and TransferGAN's new table rows);
* :class:`cgt.methods.cgantransfer.KnowledgeTransfer`: combinations of the old
  classes' parameters (cGANTransfer, Eq. 5–7).

The generator body (convolutions, the first linear layer, BN statistics) is
shared; whether it is frozen is the caller's choice (``frozen_body``).
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from ..nn import Discriminator, GANConfig, Generator
from ..nn.layers import ConditionalBatchNorm2d, initialise


class NewClassRows(nn.Module):
    """Base of the modules that give the M new classes' scale or shift rows (M×C).

    ``gain_offset`` says how a gain row becomes a BN scale: 1 when the rows are
    deltas from the identity (BigGAN's ``1 + W y``), 0 when they are full scales.
    """

    gain_offset: float = 1.0

    def rows(self) -> torch.Tensor:
        raise NotImplementedError

    def trainable(self) -> list[nn.Parameter]:
        return list(self.parameters())


class IndependentRows(NewClassRows):
    """One free vector per new class, initialised to the identity transform (scale 1,
    shift 0), as BSA resets its class-conditional parameters."""

    def __init__(self, num_new: int, num_features: int, initial: torch.Tensor | None = None):
        super().__init__()
        start = torch.zeros(num_new, num_features) if initial is None else initial.clone()
        if start.shape != (num_new, num_features):
            raise ValueError(f"initial rows must be {num_new}×{num_features}, got {tuple(start.shape)}")
        self.weight = nn.Parameter(start)

    def rows(self) -> torch.Tensor:
        return self.weight


def old_class_rows(bn: ConditionalBatchNorm2d, shared: nn.Embedding | None) -> tuple:
    """The pretrained per-class (gain delta, bias) rows, each N×C.

    Table form: the tables themselves.  Linear form (BigGAN's shared embedding):
    the class columns of the maps applied to every class embedding,
    ``W[:, :S] · shared.T`` (as the official code initialises its prior), without the z
    columns.
    """
    with torch.no_grad():
        if bn.num_classes:
            return bn.gain.weight.detach().clone(), bn.bias.weight.detach().clone()
        embedding = shared.weight.detach()
        dim = embedding.shape[1]
        return (embedding @ bn.gain.weight.detach()[:, :dim].T,
                embedding @ bn.bias.weight.detach()[:, :dim].T)


class ExtendedBatchNorm(nn.Module):
    """A pretrained conditional BN plus new classes.

    Old classes (label < N) go through the untouched pretrained layer, so their
    outputs stay exactly what they were.  New classes take ``gain_offset + rows``
    and ``rows`` from the two rows modules; with BigGAN's hierarchical z a
    trainable copy of the z columns adds its per-sample term (as in the official code).
    """

    def __init__(self, base: ConditionalBatchNorm2d, num_old: int, new_gain: NewClassRows,
                 new_bias: NewClassRows, z_dim: int = 0):
        super().__init__()
        self.base, self.num_old = base, num_old
        self.new_gain, self.new_bias = new_gain, new_bias
        self.z_gain = self.z_bias = None
        if z_dim:
            class_dim = base.cond_dim - z_dim
            self.z_gain = nn.Linear(z_dim, base.num_features, bias=False)
            self.z_bias = nn.Linear(z_dim, base.num_features, bias=False)
            with torch.no_grad():
                self.z_gain.weight.copy_(base.gain.weight[:, class_dim:])
                self.z_bias.weight.copy_(base.bias.weight[:, class_dim:])

    def new_rows(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(scale deltas, shifts) of the new classes, M×C each: what folding stores."""
        gain = self.new_gain.rows() + (self.new_gain.gain_offset - 1.0)
        return gain, self.new_bias.rows()

    def forward(self, x: torch.Tensor, cond) -> torch.Tensor:
        y, base_cond, z_chunk = cond
        out = self.base.norm(x)
        old_gain, old_bias = self.base.scale_shift(base_cond)
        gain_rows, bias_rows = self.new_rows()
        index = (y - self.num_old).clamp(min=0)
        new_gain, new_bias = 1.0 + gain_rows[index], bias_rows[index]
        if self.z_gain is not None:
            new_gain = new_gain + self.z_gain(z_chunk)
            new_bias = new_bias + self.z_bias(z_chunk)
        is_new = (y >= self.num_old)[:, None]
        gain = torch.where(is_new, new_gain, old_gain)
        bias = torch.where(is_new, new_bias, old_bias)
        return out * gain[:, :, None, None].to(out.dtype) + bias[:, :, None, None].to(out.dtype)


class ExtendedGenerator(Generator):
    """A copy of a pretrained :class:`~cgt.nn.Generator` with N + M classes.

    ``make_rows(layer_index, bn, old_gain, old_bias)`` returns the (gain, bias)
    rows modules of one layer.  With ``frozen_body`` the copied body stays in
    evaluation mode even while training (pretrained BN statistics, no spectral-norm
    power iterations), so nothing but the rows modules can change.
    """

    def __init__(self, base: Generator, new_class_names: list[str], make_rows,
                 frozen_body: bool = True):
        nn.Module.__init__(self)
        old = base.cfg
        if not old.num_classes:
            raise ValueError("class extension needs a class-conditional generator")
        if not new_class_names:
            raise ValueError("give at least one new class name")
        names = list(old.class_names) or [f"class-{i}" for i in range(old.num_classes)]
        clash = sorted(set(names) & set(new_class_names))
        if clash:
            raise ValueError(f"new class names {clash} are already classes of the source generator")
        self.cfg = GANConfig(**{**old.to_dict(), "num_classes": old.num_classes + len(new_class_names),
                                "class_names": names + list(new_class_names)})
        self.num_old, self.num_new = old.num_classes, len(new_class_names)
        self.frozen_body = frozen_body
        body = copy.deepcopy(base)
        self.linear, self.blocks, self.output_layer = body.linear, body.blocks, body.output_layer
        if old.shared_dim:
            self.shared = body.shared
        z_dim = old.z_chunk if old.hier else 0
        self.extended_layers = []
        for stage in self.blocks:
            block = stage[0]
            for name in ("bn1", "bn2"):
                bn = getattr(block, name)
                old_gain, old_bias = old_class_rows(bn, getattr(self, "shared", None))
                gain_rows, bias_rows = make_rows(len(self.extended_layers), bn, old_gain, old_bias)
                extended = ExtendedBatchNorm(bn, self.num_old, gain_rows, bias_rows, z_dim)
                setattr(block, name, extended)
                self.extended_layers.append(extended)
        self.to(next(base.parameters()).device)
        self.train(base.training)

    @property
    def new_classes(self) -> list[int]:
        return list(range(self.num_old, self.num_old + self.num_new))

    def conditioning(self, z: torch.Tensor, y: torch.Tensor | None):
        if y is None:
            raise ValueError("this generator is class-conditional: pass class labels y")
        old_y = y.clamp(max=self.num_old - 1)  # the base layers only know the old classes
        z0, base_conds = Generator.conditioning(self, z, old_y)
        if self.cfg.hier:
            chunks = torch.split(z, self.cfg.z_chunk, dim=1)[1:len(self.blocks) + 1]
        else:
            chunks = [None] * len(self.blocks)
        return z0, [(y, c, chunk) for c, chunk in zip(base_conds, chunks)]

    def train(self, mode: bool = True):
        super().train(mode)
        if mode and self.frozen_body:
            for module in self.modules():
                module.training = False
            for layer in self.extended_layers:
                for part in (layer.new_gain, layer.new_bias, layer.z_gain, layer.z_bias):
                    if part is not None:
                        part.train(True)
        return self

    def rows_parameters(self) -> list[nn.Parameter]:
        """What a BN-stage method trains: the rows modules' trainable parts and z copies."""
        found, seen = [], set()
        for layer in self.extended_layers:
            params = layer.new_gain.trainable() + layer.new_bias.trainable()
            for part in (layer.z_gain, layer.z_bias):
                if part is not None:
                    params += list(part.parameters())
            for p in params:
                if id(p) not in seen:
                    seen.add(id(p))
                    found.append(p)
        return found

    def body_parameters(self) -> list[nn.Parameter]:
        """The copied pretrained generator's own parameters: not the old-class tables, and
        no part of the new-class rows, frozen ones included (a frozen prior copy is not body)."""
        rows = {id(p) for layer in self.extended_layers
                for part in (layer.new_gain, layer.new_bias, layer.z_gain, layer.z_bias)
                if part is not None for p in part.parameters()}
        old_tables = {id(p) for layer in self.extended_layers for p in layer.base.parameters()}
        return [p for p in self.parameters() if id(p) not in rows and id(p) not in old_tables]


def rows_and_discriminator(generator: ExtendedGenerator, discriminator: nn.Module):
    """What a BN-stage method trains: G's new-class rows (and z copies) and all of D."""
    return generator.rows_parameters(), list(discriminator.parameters())


START_POINTS = ("identity", "mean")


def extend_independent(generator: Generator, new_class_names: list[str],
                       frozen_body: bool = True, start: str = "identity") -> ExtendedGenerator:
    """BSA-style class extension: an independent scale/shift per new class and layer.

    ``start="identity"`` begins every new class at scale 1, shift 0 (BSA); ``"mean"``
    at the mean of the old classes' rows, the function cGANTransfer starts from with
    its scores at 1/N (the start-point control of the cGANTransfer chapter)."""
    if start not in START_POINTS:
        raise ValueError(f"unknown start point {start!r}; valid: {', '.join(START_POINTS)}")
    count = len(new_class_names)

    def make_rows(layer_index, bn, old_gain, old_bias):
        if start == "identity":
            return IndependentRows(count, old_gain.shape[1]), IndependentRows(count, old_gain.shape[1])
        return tuple(IndependentRows(count, old.shape[1], old.mean(0).expand(count, -1))
                     for old in (old_gain, old_bias))

    return ExtendedGenerator(generator, new_class_names, make_rows, frozen_body)


def fold_new_classes(generator: ExtendedGenerator) -> ExtendedGenerator:
    """The same generator with every new class stored as plain per-class vectors.

    Whatever produced the rows (scores, prior copy, residuals) is evaluated once
    and discarded, so inference costs what a BSA-style extension costs: 2·C numbers
    per class and layer (the paper's point that the cost grows linearly with M).
    """
    folded = copy.deepcopy(generator)
    with torch.no_grad():
        for layer in folded.extended_layers:
            gain, bias = layer.new_rows()
            layer.new_gain = IndependentRows(generator.num_new, gain.shape[1], gain.detach())
            layer.new_bias = IndependentRows(generator.num_new, bias.shape[1], bias.detach())
    return folded.to(next(generator.parameters()).device).train(generator.training)


def as_plain_generator(generator: ExtendedGenerator) -> Generator:
    """A standard :class:`~cgt.nn.Generator` with N + M per-class BN tables.

    Only for the table form (the small models here); BigGAN's shared-embedding
    form cannot hold arbitrary per-class vectors, so use :func:`fold_new_classes`.
    """
    if generator.cfg.shared_dim:
        raise ValueError("a shared-embedding generator has no per-class tables; use "
                         "fold_new_classes() to keep the new classes as plain vectors")
    plain = Generator(generator.cfg)
    state = {}
    for key, value in generator.state_dict().items():
        if ".new_gain." in key or ".new_bias." in key:
            continue
        state[key.replace(".base.", ".")] = value
    with torch.no_grad():
        for i, layer in enumerate(generator.extended_layers):
            gain, bias = layer.new_rows()
            stage, name = divmod(i, 2)
            prefix = f"blocks.{stage}.0.bn{name + 1}"
            state[f"{prefix}.gain.weight"] = torch.cat([state[f"{prefix}.gain.weight"], gain])
            state[f"{prefix}.bias.weight"] = torch.cat([state[f"{prefix}.bias.weight"], bias])
    plain.load_state_dict(state)
    return plain.to(next(generator.parameters()).device).eval()


def extend_discriminator(discriminator: Discriminator, new_class_names: list[str]) -> Discriminator:
    """A copy of ``discriminator`` with projection rows for the new classes.

    The body and the old classes' rows are copied; the new rows are initialised
    afresh (the official code re-initialises the class embedding for new classes).
    """
    old = discriminator.cfg
    names = list(old.class_names) or [f"class-{i}" for i in range(old.num_classes)]
    cfg = GANConfig(**{**old.to_dict(), "num_classes": old.num_classes + len(new_class_names),
                       "class_names": names + list(new_class_names)})
    extended = copy.deepcopy(discriminator)
    extended.cfg = cfg
    dim = discriminator.embed.weight.shape[1]
    embedding = initialise(nn.Embedding(cfg.num_classes, dim), cfg.init)
    with torch.no_grad():
        embedding.weight[:old.num_classes] = discriminator.embed.parametrizations.weight.original
    extended.embed = spectral_norm(embedding, eps=cfg.sn_eps)  # 15 power iterations on the new matrix
    return extended.to(next(discriminator.parameters()).device)
