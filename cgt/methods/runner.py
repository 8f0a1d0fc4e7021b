"""One cell of a transfer table: a method, a target, a shot count and a seed.

Every method starts from the same shipped source model, sees the same k-shot
target images and trains under the same :class:`~cgt.train.TrainConfig`; only
what trains differs.  Each cell is a run of :mod:`cgt.runs` (skipped when already
complete, resumed when interrupted): it keeps the generator with the best
selection FID in ``best.pt`` beside its record, and reports that generator's
fresh score (:class:`cgt.metrics.Scoring`).
"""

from __future__ import annotations

from dataclasses import asdict, replace

import torch

from .. import data
from ..checkpoints import source_fingerprint
from ..metrics import ImageScoring, Scoring, SplitScoring
from ..runs import RunRecord, RunSpec, completed_record, load_run, run
from ..train import TrainConfig, train_gan
from . import cgantransfer as kt
from .transfer import CONTINUING, TransferTask, build, target_images


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
    spec = RunSpec(chapter, name, profile, config, task.seed, builder="transfer",
                   scoring=score, home=None if home is None else str(home))

    def train_cell(record: RunRecord, folder):
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
                           select_by=spec.scoring.select_by)
        record.metrics["train_images"] = len(trained_on)
        return result.best

    return run(spec, train_cell)


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
