"""The methods of a transfer cell: which source model, which new classes, and what trains.

Every method starts from the same shipped source model and differs only in how the
new classes enter G and D and which parameters train (:func:`build`); the run layer
rebuilds a finished cell's generator from its configuration alone
(:func:`build_generator`, registered in :mod:`cgt.builders`).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch

from .. import data
from ..checkpoints import shipped_source
from ..nn import Discriminator, GANConfig, Generator
from ..train import all_parameters
from . import bsa
from . import cgantransfer as kt
from .extension import extend_discriminator, extend_independent, rows_and_discriminator

METHODS = ("scratch", "transfergan", "transfergan-ss", "bsa", "bsa-mean", "cgantransfer", "finetune",
           "bn-continued")
CONTINUING = ("finetune", "bn-continued")  # the methods that go on from a trained cGANTransfer run
DESCRIPTIONS = {
    "scratch": "a fresh G and D trained on the target images only",
    "transfergan": "TransferGAN: every weight of the pretrained G and D fine-tuned, new class rows added",
    "transfergan-ss": "TransferGAN (scale and shift): frozen G and D, adversarially trained "
                      "scale/shift in both (BSA's Fig. 4 baseline)",
    "bsa": "BSA-style class extension: frozen G, an independent scale/shift per new class and layer",
    "bsa-mean": "the start-point control: BSA-style rows that start at the mean old class, "
                "where cGANTransfer starts",
    "cgantransfer": "cGANTransfer: frozen G, new classes as learned combinations of old ones (Eq. 5–7)",
    "finetune": "Table 3: after cGANTransfer, scores and prior frozen, residuals and G's body tuned",
    "bn-continued": "Table 3's control: after cGANTransfer, the BN stage alone trains on for as long",
}


@dataclass(frozen=True)
class TransferTask:
    """Which source model learns which target classes from how many images."""

    source: str
    dataset: str
    classes: tuple
    shots: int
    seed: int = 0
    tiny: bool = False
    size: int = 32  # the generator's resolution; FID features are taken at 32 px

    def __post_init__(self):
        if not self.classes:
            raise ValueError("a transfer task needs at least one target class")
        if self.shots < 1:
            raise ValueError(f"shots must be at least 1, got {self.shots}")

    def label(self) -> str:
        return f"{len(self.classes)}/{self.shots}"


def target_images(task: TransferTask) -> data.ImageSet:
    """The k-shot training set of the target classes (labels 0..M-1 in task order)."""
    everything = data.load(task.dataset, "train", size=task.size, tiny=task.tiny)
    chosen = data.select_classes(everything, list(task.classes))
    return data.k_shot(chosen, task.shots, seed=task.seed)


def build(method: str, task: TransferTask, transfer: kt.TransferConfig | None = None,
          start: Generator | None = None):
    """(G, D, select_parameters, regulariser, label offset) of ``method`` on ``task``.

    ``start`` is the trained cGANTransfer generator that ``finetune`` and ``bn-continued``
    continue from (each with a fresh copy of the source's D).
    """
    if method not in METHODS:
        raise ValueError(f"unknown method '{method}'; valid: {', '.join(METHODS)}")
    # loaded before seeding: the first load builds modules (drawing from the global RNG), and
    # a run's initialisation must not depend on whether an earlier run loaded the source
    source_g, source_d = shipped_source(task.source)  # the extension functions copy what they change
    torch.manual_seed(task.seed)
    new = list(task.classes)
    if method == "scratch":
        cfg = GANConfig(**{**source_g.cfg.to_dict(), "num_classes": len(new), "class_names": new})
        return Generator(cfg), Discriminator(cfg), all_parameters, None, 0
    discriminator = extend_discriminator(source_d, new)
    offset = source_g.cfg.num_classes
    if method == "transfergan":
        generator = extend_independent(source_g, new, frozen_body=False)
        return generator, discriminator, all_parameters, None, offset
    if method in ("bsa", "bsa-mean"):
        generator = extend_independent(source_g, new, frozen_body=True,
                                       start="identity" if method == "bsa" else "mean")
        return generator, discriminator, rows_and_discriminator, None, offset
    if method == "transfergan-ss":
        generator = extend_independent(source_g, new, frozen_body=True)
        return (generator, bsa.with_scale_shift(discriminator), bsa.adversarial_scale_shift_parameters,
                None, offset)
    if method == "cgantransfer":
        generator = kt.extend_with_transfer(source_g, new, transfer or kt.TransferConfig())
        return generator, discriminator, kt.bn_stage_parameters, kt.transfer_penalty, offset
    if start is None:
        raise ValueError(f"{method} continues a trained cGANTransfer generator: pass start=")
    if method == "bn-continued":
        return (copy.deepcopy(start), discriminator, kt.bn_stage_parameters, kt.transfer_penalty,
                offset)
    return kt.finetune_stage(start), discriminator, kt.finetune_parameters, kt.transfer_penalty, offset


def build_generator(config: dict) -> Generator:
    """The untrained generator of a transfer run's config (what :func:`cgt.runs.load_run`
    loads ``best.pt`` into); fine-tuning runs rebuild their start's architecture."""
    task = TransferTask(**{**config["task"], "classes": tuple(config["task"]["classes"])})
    transfer = kt.TransferConfig(**config["transfer"]) if config["transfer"] else None
    start = build("cgantransfer", task, transfer)[0] if config["method"] in CONTINUING else None
    return build(config["method"], task, transfer, start)[0]
