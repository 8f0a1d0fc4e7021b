"""The CTF chapter's experiments: Table I and II analogues and the ablations.

Table I's CIFAR-10 becomes Fashion-MNIST (the paper profile adds CIFAR-10 when it is
on disk); Table II's 3,755 CASIA-HWDB1.0 characters become the embedded Hanzi glyphs
(a subset in the quick profile), with the real 8×8 digits as the low-quality images
from another domain, as the paper used MNIST.  Every run is a run record; phase 1
(G_LH against D_LH) is its own record, shared by runs that differ only after it.
Sizes come from ``cgt.profiles.SIZES["ctf"]``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np
import pandas as pd
import torch

from .. import claims as protocol
from .. import atomic, data, paths
from ..data import to_uint8  # noqa: F401  (the chapter's figures use it)
from ..methods import ctf
from ..metrics import Scoring
from ..nn import Discriminator, GANConfig, Generator
from ..runs import COMPUTING_CODE, RunRecord, RunSpec, load_run, run
from ..train import TrainConfig, all_parameters, train_gan

CHAPTER = "ctf"
METHOD_LABELS = {"baseline": "SN-GAN+Projection", "ctf": "Ours (CTF)"}


@dataclass(frozen=True)
class Setting:
    """One training set: which high-quality images, which low-quality ones."""

    dataset: str  # high-quality images: fashion_mnist, hanzi (or cifar10 when on disk)
    classes: int  # the first ``classes`` classes of the dataset
    per_class: int  # the "entire" high-quality set, per class
    fraction: float  # share of it used: 1.0 ("Entire HQ") or ~0.65 ("Fewer HQ")
    low: str  # "downsampled" (other images of the same classes), "digits" or "none"
    low_count: int  # low-quality images in all
    low_size: int = 8
    seed: int = 0
    tiny: bool = False

    def __post_init__(self):
        if self.low not in ("downsampled", "digits", "none"):
            raise ValueError(f"unknown low-quality source '{self.low}'; valid: downsampled, digits, none")
        if not 0 < self.fraction <= 1:
            raise ValueError(f"fraction must lie in (0, 1], got {self.fraction}")

    @property
    def used_per_class(self) -> int:
        return max(1, int(round(self.fraction * self.per_class)))

    def label(self) -> str:
        hq = self.used_per_class * self.classes
        return f"{hq}+{self.low_count if self.low != 'none' else 0}"


@dataclass(frozen=True)
class Variant:
    """What trains: the baseline, or CTF with its switches (the ablations)."""

    method: str = "ctf"  # "baseline" or "ctf"
    self_supervision: bool = True
    domain: str = "dct"  # "dct" or "pixel"

    def __post_init__(self):
        if self.method not in METHOD_LABELS:
            raise ValueError(f"unknown method '{self.method}'; valid: {', '.join(METHOD_LABELS)}")


def class_names(s: Setting) -> list[str]:
    return data.load(s.dataset, "train", tiny=s.tiny).classes[:s.classes]


def high_quality(s: Setting) -> data.ImageSet:
    """The first ``used_per_class`` of a seeded ``per_class`` draw per class (nested:
    the Fewer-HQ set lies inside the Entire-HQ set)."""
    everything = data.select_classes(data.load(s.dataset, "train", tiny=s.tiny), class_names(s))
    entire = data.k_shot(everything, s.per_class, seed=s.seed)
    keep = np.concatenate([np.flatnonzero(entire.labels == c)[:s.used_per_class]
                           for c in range(s.classes)])
    return entire.subset(np.sort(keep))


def low_quality(s: Setting) -> tuple[torch.Tensor, torch.Tensor, int]:
    """(images N×1×size×size in [-1, 1], labels g_L, number of low-quality classes)."""
    if s.low == "none":
        raise ValueError("this setting has no low-quality images")
    if s.low == "digits":
        digits = data.load("digits", "train", tiny=s.tiny)
        per = -(-s.low_count // len(digits.classes))
        chosen = data.k_shot(digits, per, seed=s.seed).subset(np.arange(s.low_count))
        images, labels, count = chosen.images, chosen.labels, len(digits.classes)
    else:  # down-sampled images of the same classes that the high-quality set does not hold
        everything = data.select_classes(data.load(s.dataset, "train", tiny=s.tiny), class_names(s))
        per = -(-s.low_count // s.classes)
        wider = data.k_shot(everything, s.per_class + per, seed=s.seed)
        extra = np.concatenate([np.flatnonzero(wider.labels == c)[s.per_class:] for c in range(s.classes)])
        chosen = wider.subset(np.sort(extra)[:s.low_count])
        images = data.low_quality(chosen.images, s.low_size)
        labels, count = chosen.labels, s.classes
    tensor = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1
    return tensor, torch.from_numpy(labels).long(), count  # in colour: Eq. (3) greys them itself


def gan_config(s: Setting, sizes) -> GANConfig:
    images = high_quality(s)
    return GANConfig(resolution=32, channels=images.channels, num_classes=s.classes, ch=sizes["ch"],
                     dim_z=128, init="N02", class_names=class_names(s))


def train_config(sizes, iterations: int) -> TrainConfig:
    return TrainConfig(iterations=iterations, batch_size=sizes["batch_size"], lr_g=sizes["lr_g"],
                       lr_d=sizes["lr_d"], betas=(0.0, 0.999), d_steps=1, eval_every=sizes["eval_every"])


def scoring(s: Setting, sizes) -> Scoring:
    """Class-balanced samples against the test images of the classes; the fresh score
    also gives the classifier score and conditional accuracy."""
    return Scoring(s.dataset, "test", tuple(class_names(s)), s.tiny, sizes["eval_samples"],
                   sizes["score_samples"])


def run_name(s: Setting, v: Variant) -> str:
    switches = ("" if v.self_supervision else "-noss") + ("" if v.domain == "dct" else f"-{v.domain}")
    return f"{v.method}{switches}-{s.dataset}{s.classes}-{s.label()}-{s.low}-s{s.seed}"


# What a run computes from: the table specs are in its Setting, the rest is not read.
PHASE_ONE_SIZES = ("ch", "batch_size", "lr_g", "lr_d", "phase1_iterations", "eval_every",
                   "eval_samples", "lambda_ss", "g_lh")
RUN_SIZES = ("ch", "batch_size", "lr_g", "lr_d", "iterations", "eval_every", "eval_samples",
             "score_samples", "lambda_ss", "g_lh")
CODE = COMPUTING_CODE + (__name__,)


def phase_one(s: Setting, v: Variant, sizes, profile: str, progress: bool = True) -> RunRecord:
    """Tasks ② + ③: G_LH learns low → high quality against D_LH (with the box head)."""
    name = f"phase1-{run_name(s, replace(v, domain='dct'))}"
    config = {"setting": asdict(s), "self_supervision": v.self_supervision,
              "sizes": {k: sizes[k] for k in PHASE_ONE_SIZES}}
    spec = RunSpec(CHAPTER, name, profile, config, s.seed, code=CODE)

    def work(record, folder):
        cfg = gan_config(s, sizes)
        images = high_quality(s)
        low, g_low, low_classes = low_quality(s)
        torch.manual_seed(s.seed)
        low_to_high = ctf.LowToHigh(cfg.channels, s.classes, low_classes, **sizes["g_lh"])
        sampler = ctf.LowToHighSampler(low_to_high, cfg, low, g_low)
        discriminator = ctf.BoxDiscriminator(cfg)
        real = images.to_tensor()
        result = train_gan(sampler, discriminator, real, torch.from_numpy(images.labels),
                           train_config(sizes, sizes["phase1_iterations"]),
                           select_parameters=ctf.select_low_to_high,
                           d_regulariser=ctf.self_supervision(real, sizes["lambda_ss"], s.seed)
                           if v.self_supervision else None,
                           evaluate=scoring(s, sizes).evaluator(), out_dir=folder, record=record,
                           progress=progress)
        atomic.save_torch({"low_to_high": low_to_high.state_dict(),
                           "discriminator": discriminator.state_dict()}, folder / "phase1.pt")
        record.metrics["best"] = result.best
        (folder / "last.pt").unlink(missing_ok=True)

    return run(spec, work)


def run_cell(s: Setting, v: Variant, sizes, profile: str, progress: bool = True) -> RunRecord:
    """One cell: the baseline, or CTF's phase 2 (tasks ① + ③) after its phase 1."""
    config = {"setting": asdict(s), "variant": asdict(v), "sizes": {k: sizes[k] for k in RUN_SIZES}}
    if v.method == "ctf" and s.low != "none":
        first = phase_one(s, v, sizes, profile, progress)
        config.update(phase1=first.name, phase1_key=first.key)
    spec = RunSpec(CHAPTER, run_name(s, v), profile, config, s.seed,
                   builder=f"{__name__}:build_from_config", scoring=scoring(s, sizes), code=CODE)

    def work(record, folder):
        cfg = gan_config(s, sizes)
        images = high_quality(s)
        real = images.to_tensor()
        torch.manual_seed(s.seed)
        uses_box = v.method == "ctf"
        discriminator = ctf.BoxDiscriminator(cfg) if uses_box else Discriminator(cfg)
        generator, select = build_generator(s, v, sizes), all_parameters
        if isinstance(generator, ctf.CTFGenerator):
            saved = torch.load(paths.runs_dir(profile) / CHAPTER / first.name / "phase1.pt",
                               map_location="cpu", weights_only=False)
            generator.low_to_high.load_state_dict(saved["low_to_high"])
            discriminator.load_state_dict(saved["discriminator"])  # D_LH carries on from phase 1
            select = ctf.select_conditional
        result = train_gan(generator, discriminator, real, torch.from_numpy(images.labels),
                           train_config(sizes, sizes["iterations"]), select_parameters=select,
                           d_regulariser=ctf.self_supervision(real, sizes["lambda_ss"], s.seed)
                           if uses_box and v.self_supervision else None,
                           evaluate=spec.scoring.evaluator(), out_dir=folder, record=record,
                           progress=progress)
        record.metrics.update(best=result.best, train_high=len(images),
                              train_low=s.low_count if s.low != "none" and v.method == "ctf" else 0)
        (folder / "last.pt").unlink(missing_ok=True)

    return run(spec, work)


def row(s: Setting, v: Variant, record: RunRecord, name: str) -> dict:
    """A table row: the fresh score of the chosen checkpoint (FID, KID, classifier score,
    conditional accuracy; a collapsed generator keeps only its accuracy)."""
    score, status = record.reported_score()
    if status == "collapsed":
        score = {"conditional_accuracy": record.metrics["score"].get("conditional_accuracy", np.nan)}
    best = record.metrics.get("best") or {}
    return {"row": name, "method": v.method, "dataset": s.dataset, "classes": s.classes, "seed": s.seed,
            "training data": s.label() if v.method == "ctf" else str(s.used_per_class * s.classes),
            "high-quality": s.used_per_class * s.classes,
            "low-quality": s.low_count if (v.method == "ctf" and s.low != "none") else 0,
            "fid": score.get("fid", np.nan), "kid": score.get("kid", np.nan),
            "kid_std": score.get("kid_std", np.nan),
            "best_fid_during_training": best.get("fid", np.nan),
            "classifier_score": score.get("classifier_score", np.nan),
            "conditional_accuracy": score.get("conditional_accuracy", np.nan),
            "status": status, "wall_s": record.wall_time_s, "run": record.name,
            "history": record.metrics.get("history", [])}


def settings(table: str, sizes) -> dict[str, tuple[Setting, Variant]]:
    """The rows of Table I (``"table1"``) or Table II (``"table2"``): the baseline on all
    and on ~65 % of the high-quality images, ours Fewer HQ and Entire HQ."""
    spec = sizes[table]
    base = Setting(spec["dataset"], spec["classes"], spec["per_class"], 1.0, spec["low"],
                   spec["low_count"], sizes["low_size"], 0, sizes["tiny"])
    fewer = replace(base, fraction=sizes["fraction"])
    return {"SN-GAN+Projection (entire HQ)": (replace(base, low="none"), Variant("baseline")),
            "SN-GAN+Projection (fewer HQ)": (replace(fewer, low="none"), Variant("baseline")),
            "Ours (Fewer HQ)": (fewer, Variant("ctf")),
            "Ours (Entire HQ)": (base, Variant("ctf"))}


def table(name: str, sizes, profile: str, progress: bool = True) -> pd.DataFrame:
    return pd.DataFrame([row(s, v, run_cell(s, v, sizes, profile, progress), label)
                         for label, (s, v) in settings(name, sizes).items()])


def real_table(sizes, profile: str, progress: bool = True) -> pd.DataFrame | None:
    """Table I on CIFAR-10 itself (``table1_real`` of the paper profile), when a user has
    it on disk (``CGT_CIFAR10``); None otherwise.  STL-10 has no loader here."""
    if "table1_real" not in sizes or data.real.real_root(sizes["table1_real"]["dataset"]) is None:
        return None
    return table("table1_real", sizes, profile, progress)


def ablations(sizes, profile: str, progress: bool = True) -> pd.DataFrame:
    """Ours (Fewer HQ) on Table I's data without one part at a time."""
    fewer, full = settings("table1", sizes)["Ours (Fewer HQ)"]
    cells = {"Ours (Fewer HQ)": (fewer, full),
             "w/o self-supervision": (fewer, replace(full, self_supervision=False)),
             "w/o DCT (pixel-domain differences)": (fewer, replace(full, domain="pixel")),
             "w/o low-quality data (no G_LH, no CTFs)": (replace(fewer, low="none"), full)}
    return pd.DataFrame([row(s, v, run_cell(s, v, sizes, profile, progress), label)
                         for label, (s, v) in cells.items()])


def build_generator(s: Setting, v: Variant, sizes) -> torch.nn.Module:
    """An untrained generator of a cell (G_A with its G_LH and pool for CTF cells)."""
    generator = Generator(gan_config(s, sizes))
    if v.method == "ctf" and s.low != "none":
        low, g_low, low_classes = low_quality(s)
        low_to_high = ctf.LowToHigh(generator.cfg.channels, s.classes, low_classes, domain=v.domain,
                                    **sizes["g_lh"])
        generator = ctf.CTFGenerator(generator, low_to_high, low, g_low)
    return generator


def build_from_config(config: dict) -> torch.nn.Module:
    """The untrained generator of a cell's config (for :func:`cgt.runs.load_run`)."""
    return build_generator(Setting(**config["setting"]), Variant(**config["variant"]), config["sizes"])


def load(s: Setting, v: Variant, profile: str) -> torch.nn.Module:
    """The chosen generator of a finished cell."""
    return load_run(CHAPTER, run_name(s, v), profile)


# Fixed before the runs: "matches" means a classifier score within ±10 % of the baseline's.
SCORE_MARGIN = 0.10
FULL, BASELINE = "Ours (Fewer HQ)", "SN-GAN+Projection (entire HQ)"


def learns_its_classes(frame: pd.DataFrame, rows=(FULL, BASELINE)) -> protocol.Precondition:
    """The gate of every CTF claim: a conditional generator must produce its classes,
    i.e. conditional accuracy above twice chance (1 / classes) in each compared row."""
    t = frame.set_index("row")
    chance = 1.0 / int(t.classes.iloc[0])
    accuracy = {r: float(t.loc[r, "conditional_accuracy"]) for r in rows}
    return protocol.Precondition(
        "conditional accuracy above 2× chance", all(a > 2 * chance for a in accuracy.values()),
        ", ".join(f"{r}: {a:.3f}" for r, a in accuracy.items()) + f"; chance {chance:.4f}")


def _claim(key: str, text: str, kind: str, metric: str, arms, **rule) -> protocol.Claim:
    return protocol.Claim(CHAPTER, key, text, kind, metric, arms, **rule)


def _unit(frame: pd.DataFrame, row: str, column: str) -> dict:
    """``column`` of one table row's runs keyed by seed (the pairing unit of the arms)."""
    cells = frame[frame.row == row]
    return {int(seed): float(value) for seed, value in zip(cells.seed, cells[column])}


def claims(table1: pd.DataFrame, table2: pd.DataFrame, ablation: pd.DataFrame) -> list[protocol.Result]:
    """The paper's claims, each judged by :mod:`cgt.claims`, gated on a generator that
    learned its classes."""
    rows = []
    for key, name, frame in (("ctf-table1", "Table I", table1), ("ctf-table2", "Table II", table2)):
        rows.append(protocol.equivalence(
            _claim(key, f"{name}: ours with ~65 % of the high-quality images matches the baseline "
                   f"with all of them (classifier score within ±{SCORE_MARGIN:.0%})", "equivalence",
                   "classifier score", ("ours, fewer HQ", "baseline, entire HQ"),
                   lower_is_better=False, margin=SCORE_MARGIN),
            _unit(frame, FULL, "classifier_score"), _unit(frame, BASELINE, "classifier_score"),
            [learns_its_classes(frame)]))
    rows.append(protocol.superiority(
        _claim("ctf-classes", "The advantage grows with the number of classes", "superiority",
               "classifier-score gap", ("3,755-class gap", "10-class gap"), lower_is_better=False),
        {0: np.nan}, {0: np.nan},
        [learns_its_classes(table1), learns_its_classes(table2),
         protocol.Precondition("gaps on one scale", False,
                               "absolute score gaps of a 10-way and a many-way head do not compare")]))
    for key, removed in (("ctf-self-supervision", "w/o self-supervision"),
                         ("ctf-low-quality", "w/o low-quality data (no G_LH, no CTFs)"),
                         ("ctf-dct", "w/o DCT (pixel-domain differences)")):
        rows.append(protocol.superiority(
            _claim(key, f"The full model beats the ablation {removed} in FID", "superiority",
                   "FID", ("full model", removed)),
            _unit(ablation, FULL, "fid"), _unit(ablation, removed, "fid"),
            [learns_its_classes(ablation, (FULL, removed))]))
    return rows


