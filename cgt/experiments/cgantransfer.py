"""The cGANTransfer chapter's experiments: Table 1–3 and Fig. 5 analogues on embedded data.

Source: the shipped ``fashion8`` model (8 Fashion-MNIST classes).  Targets: the two
remaining Fashion-MNIST classes (Table 1 left, the CIFAR-100 80 → 20 analogue) and
five Animal-Shape classes (Table 1 right, the ImageNet → Places365 analogue: another
dataset).  Sizes come from ``cgt.profiles.SIZES["cgantransfer"]``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .. import paths
from ..data import splits
from ..methods import cgantransfer as kt
from ..methods.runner import TransferTask, fid_at, run_transfer
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
                        eval_samples=sizes["eval_samples"], name=name, transfer=transfer,
                        start_run=start_run, chapter=CHAPTER, progress=progress)


def run_name(method: str, task: TransferTask) -> str:
    return f"{method}-{task.dataset}-{len(task.classes)}x{task.shots}-s{task.seed}"


def _row(method: str, task: TransferTask, record: RunRecord, **extra) -> dict:
    best = (record.metrics.get("best") or {}) if record.status == "complete" else {}
    return {"method": method, "setting": task.label(), "dataset": task.dataset,
            "seed": task.seed, "fid": best.get("fid", np.nan), "kmmd": best.get("kmmd", np.nan),
            "best_iteration": best.get("iteration", np.nan),
            "best_wall_s": best.get("wall_time_s", np.nan), "status": record.status,
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
    """Add BSA-early rows: BSA's FID at the iteration where ours reached its best (Table 1)."""
    extra = []
    for (setting, dataset, seed), cell in grid.groupby(["setting", "dataset", "seed"]):
        ours, bsa = cell[cell.method == "cgantransfer"], cell[cell.method == "bsa"]
        if ours.empty or bsa.empty or ours.iloc[0].status != "complete" or bsa.iloc[0].status != "complete":
            continue
        iteration = ours.iloc[0].best_iteration
        fid = fid_at({"metrics": {"history": bsa.iloc[0].history}}, iteration)
        extra.append({**bsa.iloc[0].to_dict(), "method": "bsa-early", "fid": fid, "kmmd": np.nan,
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
                     "speed-up (iterations)": b.best_iteration / o.best_iteration,
                     "speed-up (wall time)": b.best_wall_s / o.best_wall_s,
                     "ours reaches BSA's best at": first_reaching(o.history, b.fid)})
    return pd.DataFrame(rows)


def first_reaching(history: list, target: float):
    """The first evaluated iteration whose FID is at or below ``target`` (NaN if never)."""
    return next((h["iteration"] for h in history if h["fid"] <= target), np.nan)


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
        rows.append(_row("cgantransfer", task, record, row=row, experiment=label))
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
