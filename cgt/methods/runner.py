"""One cell of a transfer table: a method, a target, a shot count and a seed.

Every method starts from the same shipped source model, sees the same k-shot
target images and trains under the same :class:`~cgt.train.TrainConfig`; only
what trains differs.  Each cell is a run of :mod:`cgt.runs` (skipped when already
complete, resumed when interrupted): it keeps the generator with the best
selection FID in ``best.pt`` beside its record, and reports that generator's
fresh score (:class:`cgt.metrics.Scoring`).
"""

from __future__ import annotations

import copy
import functools
from dataclasses import asdict, dataclass, replace

import torch

from .. import data, planning
from ..checkpoints import load_source, source_fingerprint
from ..metrics import ImageScoring, Scoring, SplitScoring
from ..nn import Discriminator, GANConfig, Generator
from ..runs import RunRecord, RunSpec, completed_record, load_run, run
from ..train import TrainConfig, all_parameters, train_gan
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


def shipped_source(name: str):
    """A source model loaded once per process (building its spectral norms costs seconds);
    never modified: class extension and fine-tuning work on copies.  A plan loads its own
    (once per plan), since it may stand in for weights that are absent."""
    if planning.active():
        return planning.memo(("source", name), lambda: load_source(name))
    return _loaded_source(name)


@functools.lru_cache(maxsize=2)
def _loaded_source(name: str):
    return load_source(name)


def task_scoring(task: TransferTask, selection_samples: int, final_samples: int) -> Scoring:
    """Samples of the target classes against every training image of those classes
    (the official code's protocol, with a fresh score of the chosen checkpoint)."""
    return Scoring(task.dataset, "train", tuple(task.classes), task.tiny, selection_samples,
                   final_samples)


def run_transfer(method: str, task: TransferTask, train: TrainConfig, *, profile: str,
                 eval_samples: int, score_samples: int, name: str | None = None,
                 transfer: kt.TransferConfig | None = None, start_run: str | None = None,
                 chapter: str = "cgantransfer", progress: bool = True,
                 images: data.ImageSet | None = None, scoring: Scoring | SplitScoring | None = None,
                 home=None) -> RunRecord:
    """Train one cell and return its run record (metrics: score, best, history,
    trainable counts).  ``finetune`` and ``bn-continued`` continue the finished run ``start_run``.

    ``images`` (labels 0..M-1 for ``task.classes``) replace the task's k-shot draw of
    its dataset; they are then also what the run is scored against
    (:class:`~cgt.metrics.ImageScoring`) unless ``scoring`` says otherwise. ``home``
    keeps the record in that folder.
    """
    name = name or f"{method}-{task.dataset}-{len(task.classes)}x{task.shots}-s{task.seed}"
    start_record = completed_record(chapter, start_run, profile) if start_run else None
    if start_record and start_record["config"]["transfer"]:  # fine-tuning keeps its start's blocks
        transfer = kt.TransferConfig(**start_record["config"]["transfer"])
    config = {"method": method, "task": asdict(task), "train": asdict(replace(train, seed=task.seed)),
              "transfer": (transfer or kt.TransferConfig()).to_dict()
              if method in ("cgantransfer", *CONTINUING) else None,
              "start_run": start_run,
              "start_key": start_record["key"] if start_record else None,
              "source": source_fingerprint(task.source)}
    if images is not None:
        config["images"] = images.digest()
    score = scoring or (task_scoring(task, eval_samples, score_samples) if images is None
                        else ImageScoring.of(images, eval_samples, score_samples))
    spec = RunSpec(chapter, name, profile, config, task.seed, builder=f"{__name__}:build_generator",
                   scoring=score, home=None if home is None else str(home))

    def work(record: RunRecord, folder):
        start = load_run(chapter, start_run, profile) if start_run else None
        generator, discriminator, select, regulariser, offset = build(method, task, transfer, start)
        trained_on = target_images(task) if images is None else images
        record.metrics["trainable_g"] = sum(p.numel() for p in select(generator, discriminator)[0])
        record.metrics["total_g"] = sum(p.numel() for p in generator.parameters())
        result = train_gan(generator, discriminator, trained_on.to_tensor(),
                           torch.from_numpy(trained_on.labels) + offset,
                           replace(train, seed=task.seed), select_parameters=select,
                           evaluate=spec.scoring.evaluator(), regulariser=regulariser,
                           out_dir=folder, record=record, progress=progress,
                           select_by=getattr(spec.scoring, "select_by", "fid"))
        record.metrics["best"] = result.best
        record.metrics["train_images"] = len(trained_on)
        (folder / "last.pt").unlink(missing_ok=True)  # only an interrupted run needs it

    return run(spec, work)


def build_generator(config: dict) -> Generator:
    """The untrained generator of a transfer run's config (what :func:`cgt.runs.load_run`
    loads ``best.pt`` into); fine-tuning runs rebuild their start's architecture."""
    task = TransferTask(**{**config["task"], "classes": tuple(config["task"]["classes"])})
    transfer = kt.TransferConfig(**config["transfer"]) if config["transfer"] else None
    start = build("cgantransfer", task, transfer)[0] if config["method"] in CONTINUING else None
    return build(config["method"], task, transfer, start)[0]


def best_iteration(record: RunRecord | dict) -> tuple[int, float]:
    """(iteration, wall seconds) at which a run reached its best selection score."""
    metrics = record.metrics if isinstance(record, RunRecord) else record["metrics"]
    best = metrics["best"]
    return best["iteration"], best["wall_time_s"]


def fid_at(record: RunRecord | dict, iteration: int) -> float:
    """The FID a run had at the evaluation closest to ``iteration`` (BSA-early of Table 1)."""
    metrics = record.metrics if isinstance(record, RunRecord) else record["metrics"]
    history = metrics["history"]
    return min(history, key=lambda h: abs(h["iteration"] - iteration))["fid"]
