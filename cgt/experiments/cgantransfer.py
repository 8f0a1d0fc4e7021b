"""The cGANTransfer chapter's experiments: Table 1–3 and Fig. 5 analogues on embedded data.

Source: the shipped ``fashion8`` model (8 Fashion-MNIST classes).  Targets: the two
remaining Fashion-MNIST classes (Table 1 left, the CIFAR-100 80 → 20 analogue) and
five Animal-Shape classes (Table 1 right, the ImageNet → Places365 analogue: another
dataset).  Sizes come from ``cgt.profiles.SIZES["cgantransfer"]``.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import torch

from .. import claims as protocol
from .. import paths, planning
from ..checkpoints import BIGGAN_VARIABLE, IMPORTED_BIGGAN, CheckpointError, load_source
from ..data import splits
from ..data.real import REAL_DATASETS, real_root
from ..methods import cgantransfer as kt
from ..methods.extension import extend_independent, fold_new_classes
from ..pretrain import ensure_source
from ..methods.runner import TransferTask, fid_at, run_transfer, shipped_source
from ..runs import RunRecord
from ..train import TrainConfig

CHAPTER = "cgantransfer"
SOURCE = "fashion8"
METHOD_LABELS = {"scratch": "Scratch", "transfergan": "TransferGAN", "bsa": "BSA-full",
                 "cgantransfer": "Ours", "finetune": "Ours + fine-tuning"}

# Table 2's rows as switches of TransferConfig; row 8 is the full method.
ABLATIONS = {
    1: ("Frozen prior, w/o res", dict(tunable_prior=False, residuals=False)),
    2: ("Frozen prior, with res", dict(tunable_prior=False)),
    3: ("Tunable prior, w/o res", dict(residuals=False)),
    4: ("Shared W, tunable prior, w/o res", dict(shared_scores=True, residuals=False)),
    5: ("Final w/o reg", dict(lambda_r=0.0, lambda_s=0.0)),
    6: ("Final w/o ℓ1", dict(lambda_s=0.0)),
    7: ("Final w/o ℓ2", dict(lambda_r=0.0)),
    8: ("Final, with ℓ1 & ℓ2", {}),
}


def fashion_task(classes: int, shots: int, seed: int, sizes) -> TransferTask:
    targets = splits.CGANTRANSFER["target_classes"]
    if not 1 <= classes <= len(targets):
        raise ValueError(f"Fashion-MNIST has {len(targets)} classes outside the source; asked for {classes}")
    return TransferTask(SOURCE, "fashion_mnist", tuple(targets[:classes]), shots, seed, sizes["tiny"])


def cross_task(seed: int, sizes) -> TransferTask:
    dataset, classes = splits.CGANTRANSFER["cross_dataset"]
    return TransferTask(SOURCE, dataset, tuple(classes), sizes["cross_shots"], seed, sizes["tiny"])


def train_config(method: str, sizes) -> TrainConfig:
    """The official CIFAR settings (hinge, Adam (0, 0.999), one D step, no EMA) at this
    profile's length; BN-stage methods use ``lr_rows``."""
    rows_only = method in ("bsa", "cgantransfer")
    return TrainConfig(iterations=sizes["iterations"], batch_size=sizes["batch_size"],
                       lr_g=sizes["lr_rows"] if rows_only else sizes["lr_weights"],
                       lr_d=sizes["lr_d"], betas=(0.0, 0.999), adam_eps=1e-8, d_steps=1,
                       eval_every=sizes["eval_every"])


def run(method: str, task: TransferTask, sizes, profile: str, *, name: str | None = None,
        transfer: kt.TransferConfig | None = None, start_run: str | None = None,
        progress: bool = True) -> RunRecord:
    return run_transfer(method, task, train_config(method, sizes), profile=profile,
                        eval_samples=sizes["eval_samples"], score_samples=sizes["score_samples"],
                        name=name, transfer=transfer,
                        start_run=start_run, chapter=CHAPTER, progress=progress)


def run_name(method: str, task: TransferTask) -> str:
    return f"{method}-{task.dataset}-{len(task.classes)}x{task.shots}-s{task.seed}"


def _row(method: str, task: TransferTask, record: RunRecord, **extra) -> dict:
    """A table row: the fresh score of the chosen checkpoint (``fid``, ``kid``), and the
    selection FID that chose it (``selection_fid``, the scale of the histories)."""
    score, status = record.reported_score()
    best = record.metrics.get("best") or {}
    return {"method": method, "setting": task.label(), "dataset": task.dataset, "seed": task.seed,
            "fid": score.get("fid", np.nan), "kid": score.get("kid", np.nan),
            "kid_std": score.get("kid_std", np.nan), "kmmd": score.get("kmmd", np.nan),
            "selection_fid": best.get("fid", np.nan) if score else np.nan,
            "best_iteration": best.get("iteration", np.nan),
            "best_wall_s": best.get("wall_time_s", np.nan), "status": status,
            "trainable_g": record.metrics.get("trainable_g"), "run": record.name,
            "history": record.metrics.get("history", []), **extra}


def main_grid(profile: str, sizes, progress: bool = True) -> pd.DataFrame:
    """Every method × Fashion-MNIST setting × seed: the cells of Table 1 (left)."""
    rows = []
    for classes, shots in sizes["settings"]:
        for seed in sizes["seeds"]:
            task = fashion_task(classes, shots, seed, sizes)
            for method in ("scratch", "transfergan", "bsa", "cgantransfer"):
                record = run(method, task, sizes, profile, progress=progress)
                rows.append(_row(method, task, record))
    return pd.DataFrame(rows)


def with_bsa_early(grid: pd.DataFrame) -> pd.DataFrame:
    """Add BSA-early rows: BSA's FID at the iteration where ours reached its best (Table 1).

    Only the evaluation at that iteration exists (its checkpoint is not kept), so this
    row is a selection FID, not a fresh score like the others."""
    extra = []
    for (setting, dataset, seed), cell in grid.groupby(["setting", "dataset", "seed"]):
        ours, bsa = cell[cell.method == "cgantransfer"], cell[cell.method == "bsa"]
        if ours.empty or bsa.empty or ours.iloc[0].status != "complete" or bsa.iloc[0].status != "complete":
            continue
        iteration = ours.iloc[0].best_iteration
        fid = fid_at({"metrics": {"history": bsa.iloc[0].history}}, iteration)
        extra.append({**bsa.iloc[0].to_dict(), "method": "bsa-early", "fid": fid, "kmmd": np.nan,
                      "kid": np.nan, "kid_std": np.nan, "selection_fid": fid,
                      "best_iteration": iteration})
    return pd.concat([grid, pd.DataFrame(extra)], ignore_index=True)


def mean_std(values: pd.Series) -> str:
    values = values.dropna()
    if values.empty:
        return "failed"
    if len(values) == 1:
        return f"{values.iloc[0]:.1f}"
    return f"{values.mean():.1f} ± {values.std(ddof=1):.1f}"


def table1_left(grid: pd.DataFrame) -> pd.DataFrame:
    """Methods × settings (mean ± std over seeds) plus mFID, in the paper's row order."""
    order = ["scratch", "transfergan", "bsa-early", "bsa", "cgantransfer"]
    labels = {**METHOD_LABELS, "bsa-early": "BSA-early"}
    settings = list(dict.fromkeys(grid.setting))
    table = {}
    for method in order:
        cells = grid[grid.method == method]
        row = {s: mean_std(cells[cells.setting == s].fid) for s in settings}
        per_seed = cells.groupby("seed").fid.mean()
        row["mFID"] = mean_std(per_seed)
        table[labels[method]] = row
    return pd.DataFrame(table).T


def convergence(grid: pd.DataFrame) -> pd.DataFrame:
    """Fig. 5: iterations and wall time to the best FID, BSA vs ours, and the speed-ups."""
    rows = []
    for (setting, dataset, seed), cell in grid.groupby(["setting", "dataset", "seed"], sort=False):
        ours, bsa = cell[cell.method == "cgantransfer"], cell[cell.method == "bsa"]
        if ours.empty or bsa.empty:
            continue
        o, b = ours.iloc[0], bsa.iloc[0]
        rows.append({"setting": setting, "dataset": dataset, "seed": seed,
                     "BSA iterations": b.best_iteration, "ours iterations": o.best_iteration,
                     "BSA wall s": b.best_wall_s, "ours wall s": o.best_wall_s,
                     "BSA FID": b.fid, "ours FID": o.fid,
                     "speed-up (iterations)": _ratio(b.best_iteration, o.best_iteration),
                     "speed-up (wall time)": _ratio(b.best_wall_s, o.best_wall_s),
                     "ours reaches BSA's best at": (reach := first_reaching(o.history, b.selection_fid)),
                     "speed-up (to BSA's best)": _ratio(b.best_iteration, reach),
                     "BSA best at its last evaluation": b.best_iteration == b.history[-1]["iteration"]})
    return pd.DataFrame(rows)


def _ratio(a: float, b: float) -> float:
    """a / b, NaN when b is 0 (a run that was best at its start: no speed-up to state)."""
    return a / b if b else np.nan


def first_reaching(history: list, target: float):
    """The first evaluated iteration whose FID is at or below ``target`` (NaN if never)."""
    return next((h["iteration"] for h in history if h["fid"] <= target and not h.get("collapsed")),
                np.nan)


def ablations(profile: str, sizes, progress: bool = True) -> pd.DataFrame:
    """Table 2's eight rows, plus the official code's switches, at the focus setting (seed 0)."""
    classes, shots = sizes["focus"]
    task = fashion_task(classes, shots, 0, sizes)
    rows = []
    variants = [(row, label, kt.TransferConfig(**changes)) for row, (label, changes) in ABLATIONS.items()]
    variants.append(("official", "Final, official-code switches", kt.TransferConfig.official()))
    for row, label, config in variants:
        name = run_name("cgantransfer", task) if row == 8 else f"ablation{row}-{run_name('cgantransfer', task)}"
        record = run("cgantransfer", task, sizes, profile, name=name, transfer=config, progress=progress)
        history = record.metrics.get("history") or [{"fid": np.nan}]
        rows.append(_row("cgantransfer", task, record, row=row, experiment=label,
                         first_fid=history[0]["fid"], last_fid=history[-1]["fid"]))
    return pd.DataFrame(rows)


def cross_dataset(profile: str, sizes, progress: bool = True) -> pd.DataFrame:
    """Table 1 (right): five Animal-Shape classes from the Fashion-MNIST source (seed 0)."""
    task = cross_task(0, sizes)
    rows = []
    for method in sizes["cross_methods"]:
        rows.append(_row(method, task, run(method, task, sizes, profile, progress=progress)))
    return pd.DataFrame(rows)


def finetuning(profile: str, sizes, progress: bool = True) -> pd.DataFrame:
    """Table 3: the fine-tuning stage after cGANTransfer, on both targets (seed 0)."""
    classes, shots = sizes["focus"]
    rows = []
    for task in (fashion_task(classes, shots, 0, sizes), cross_task(0, sizes)):
        start = run("cgantransfer", task, sizes, profile, progress=progress)
        tuned = run("finetune", task, sizes, profile, start_run=start.name, progress=progress)
        rows.append(_row("cgantransfer", task, start))
        rows.append(_row("finetune", task, tuned))
    return pd.DataFrame(rows)


def records_folder(profile: str):
    return paths.runs_dir(profile) / CHAPTER


def histories(frame: pd.DataFrame) -> pd.DataFrame:
    """Long form of every run's evaluations: method, setting, seed, iteration, wall, FID."""
    rows = [{"method": METHOD_LABELS.get(r.method, r.method), "setting": r.setting, "seed": r.seed,
             "iteration": h["iteration"], "wall_s": h["wall_time_s"], "fid": h["fid"]}
            for r in frame.itertuples() for h in (r.history or [])]
    return pd.DataFrame(rows)


def parameter_growth(class_counts, source: str = SOURCE) -> pd.DataFrame:
    """Trainable G parameters per method as the number of new classes grows, and what the
    folded model keeps for inference."""
    generator = load_source(source)[0]

    def count(params) -> int:
        return int(sum(p.numel() for p in params))

    rows = []
    for m in class_counts:
        names = [f"new-{i}" for i in range(m)]
        ours = kt.extend_with_transfer(generator, names)
        rows.append({"new classes": m,
                     "BSA-style rows": count(extend_independent(generator, names).rows_parameters()),
                     "cGANTransfer (training)": count(ours.rows_parameters()),
                     "cGANTransfer (folded, inference)": count(fold_new_classes(ours).rows_parameters()),
                     "frozen G": count(generator.parameters())})
    return pd.DataFrame(rows)


def old_class_drift(extended, source, samples_per_class: int = 16, seed: int = 0) -> float:
    """Max |G_extended(z, y) − G_source(z, y)| over old classes y and fixed z."""
    generator = torch.Generator().manual_seed(seed)
    n = samples_per_class * source.cfg.num_classes
    z, y = source.sample_inputs(n, generator=generator, device="cpu")
    with torch.no_grad():
        a = extended.cpu().eval()(z, y)
        b = source.cpu().eval()(z, y)
    return float((a - b).abs().max())


def _claim(key: str, text: str, kind: str, metric: str = "FID", arms=("ours", "BSA"),
           **rule) -> protocol.Claim:
    return protocol.Claim(CHAPTER, key, text, kind, metric, arms, **rule)


# Fixed before the runs: "reaches BSA's FID" means within ±10 % of it (the paper's own
# gap is 1 %), and "faster" means any speed-up above 1×, with the paper's factor beside it.
QUALITY_MARGIN = 0.10


def _by_unit(frame: pd.DataFrame, method: str, column: str = "fid") -> dict:
    """``column`` of ``method``'s runs keyed by (setting, dataset, seed): the pairing unit
    (same k-shot subset, D init and data order for every method of that unit)."""
    cells = frame[frame.method == method]
    return {(r.setting, r.dataset, r.seed): getattr(r, column) for r in cells.itertuples()}


def _time_to_reach(history: list, target: float) -> float | None:
    reached = first_reaching(history, target)
    return None if np.isnan(reached) else float(reached)


def _speed_evidence(grid: pd.DataFrame) -> tuple[list, int]:
    """Per unit, the target is BSA's best selection FID of that run (the scale of the
    histories): BSA's time to it is known
    exactly (its best iteration); ours is censored at its length if it never gets there.
    Also how many BSA runs were still improving at their last evaluation."""
    ours, bsa, length_ours, length_bsa = {}, {}, {}, {}
    improving = 0
    for unit, cell in grid.groupby(["setting", "dataset", "seed"], sort=False):
        o, b = cell[cell.method == "cgantransfer"], cell[cell.method == "bsa"]
        if o.empty or b.empty:
            continue
        o, b = o.iloc[0], b.iloc[0]
        if not (o.history and b.history) or np.isnan(b.fid) or np.isnan(o.fid):
            ours[unit] = bsa[unit] = length_ours[unit] = length_bsa[unit] = np.nan
            continue
        length_ours[unit], length_bsa[unit] = o.history[-1]["iteration"], b.history[-1]["iteration"]
        ours[unit] = _time_to_reach(o.history, b.selection_fid)
        bsa[unit] = float(b.best_iteration)
        improving += int(b.best_iteration == length_bsa[unit])
    return [ours, bsa, length_ours, length_bsa], improving


def _ablation_claim(ablation: pd.DataFrame) -> protocol.Result:
    """The full model (row 8) against the other row with the lowest mean FID, paired by
    seed: the hardest test of "better than every row"; gated on every row having a score."""
    others = ablation[ablation.row.isin([r for r in ABLATIONS if r != 8])]
    failed = sorted(set(others[others.fid.isna()].row))
    means = others.groupby("row").fid.mean()
    strongest = means.idxmin() if means.notna().any() else None
    claim = _claim("cgantransfer-ablation", "Every component matters: the full model beats the "
                   f"strongest other row of Table 2 (row {strongest or '—'})", "superiority",
                   arms=("full model", "strongest ablation"))
    gate = protocol.Precondition("every ablation row has a score", not failed,
                                 f"failed rows: {', '.join(map(str, failed))}" if failed else "")
    by_seed = {row: {r.seed: r.fid for r in ablation[ablation.row == row].itertuples()}
               for row in (8, strongest)}
    return protocol.superiority(claim, by_seed[8], by_seed[strongest], [gate])


def claims(grid: pd.DataFrame, ablation: pd.DataFrame, cross: pd.DataFrame,
           tuned: pd.DataFrame, drift: float) -> list[protocol.Result]:
    """The paper's claims, each judged by :mod:`cgt.claims` on paired runs."""
    rows = [protocol.equivalence(
        _claim("cgantransfer-quality", "Ours reaches BSA's best FID (Table 1 settings; "
               f"equivalent within ±{QUALITY_MARGIN:.0%})", "equivalence", margin=QUALITY_MARGIN),
        _by_unit(grid, "cgantransfer"), _by_unit(grid, "bsa"))]
    evidence, improving = _speed_evidence(grid)
    rows.append(protocol.speed(
        _claim("cgantransfer-speed", "Ours reaches BSA's best FID in fewer iterations than BSA "
               f"needs for it (BSA still improving at its end in {improving} of "
               f"{len(evidence[0])} runs)", "speed", metric="iterations"), *evidence))
    rows.append(protocol.superiority(
        _claim("cgantransfer-cross", "On another dataset ours beats BSA in FID", "superiority"),
        _by_unit(cross, "cgantransfer"), _by_unit(cross, "bsa")))
    rows.append(_ablation_claim(ablation))
    rows.append(protocol.superiority(
        _claim("cgantransfer-finetune", "Fine-tuning after the BN stage improves FID further",
               "superiority", arms=("fine-tuned", "BN stage only")),
        _by_unit(tuned, "finetune"), _by_unit(tuned, "cgantransfer")))
    rows.append(protocol.exact(
        _claim("cgantransfer-old-classes", "Class extension leaves the old classes exactly as "
               "they were", "exact", metric="max |Δ|", arms=("extended", "source")),
        drift, 0.0, f"max |Δ| = {drift:.1e} over old-class samples"))
    return rows


def real_data_status() -> pd.DataFrame:
    """Which of the paper's own datasets and weights are on this machine."""
    rows = [{"what": name, "found at": str(real_root(name) or "—"), "set with": variable}
            for name, (variable, _) in REAL_DATASETS.items()]
    folder = os.environ.get(BIGGAN_VARIABLE, str(paths.data_cache() / "real" / "biggan-imagenet128"))
    rows.append({"what": "BigGAN-PyTorch ImageNet-128 weights",
                 "found at": folder if os.path.isdir(folder) else "—", "set with": BIGGAN_VARIABLE})
    return pd.DataFrame(rows)


def cifar100_grid(profile: str, sizes, progress: bool = True) -> pd.DataFrame | None:
    """Table 1 (left) on CIFAR-100 itself (80 → 20 and 80 → 10, our stated split), when the
    CIFAR-100 files are on disk; the 80-class source is trained first (``cifar100-80``)."""
    if real_root("cifar100") is None:
        return None
    ensure_source("cifar100-80", progress=progress)
    targets = splits.CGANTRANSFER_CIFAR100["target_classes"]
    rows = []
    for count in planning.repeats((20, 10)):
        for shots in planning.repeats(splits.CGANTRANSFER_CIFAR100["shots"]):
            for seed in sizes["seeds"]:
                task = TransferTask("cifar100-80", "cifar100", tuple(targets[:count]), shots, seed)
                for method in ("scratch", "transfergan", "bsa", "cgantransfer"):
                    rows.append(_row(method, task, run(method, task, sizes, profile, progress=progress)))
    return pd.DataFrame(rows)


def places365_cross(profile: str, sizes, progress: bool = True) -> pd.DataFrame | None:
    """Table 1 (right) as published: BigGAN-PyTorch ImageNet-128 → five Places365 classes
    × 500 images, when both the weights and the images are on disk."""
    if real_root("places365") is None:
        return None
    try:
        shipped_source(IMPORTED_BIGGAN)  # loaded once: the runs below reuse it
    except CheckpointError:
        return None
    task = TransferTask("biggan-imagenet128", "places365", tuple(splits.CGANTRANSFER_PLACES365),
                        min(500, sizes["cross_shots"]), 0, size=128)
    # a dry run trains one method here: the others' code runs on the other tasks, and a
    # step of this 128-px ImageNet BigGAN takes a CPU most of a minute
    rows = [_row(m, task, run(m, task, sizes, profile, progress=progress))
            for m in planning.repeats(("transfergan", "bsa", "cgantransfer"))]
    return pd.DataFrame(rows)
