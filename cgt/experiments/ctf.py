"""The CTF chapter's experiments: Table I and II analogues and the ablations.

Table I's CIFAR-10 becomes Fashion-MNIST (the paper profile adds CIFAR-10 when it is
on disk); Table II's 3,755 CASIA-HWDB1.0 characters become the embedded Hanzi glyphs
(a subset in the quick profile), with the real 8×8 digits as the low-quality images
from another domain, as the paper used MNIST.  Every run is a run record; phase 1
(G_LH against D_LH) is its own record, shared by runs that differ only after it.
Sizes come from ``cgt.profiles.SIZES["ctf"]``.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, replace

import numpy as np
import pandas as pd
import torch

from .. import claims as protocol
from .. import atomic, data, planning
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
    classes = data.load(s.dataset, "train", tiny=s.tiny).classes
    return classes[:planning.take(s.dataset, "classes", s.classes, len(classes),
                                  data.class_count(s.dataset))]


def _class_orders(s: Setting) -> tuple[data.ImageSet, list[np.ndarray]]:
    """The setting's classes and, per class, its images in one seeded random order (the
    order of :func:`cgt.data.k_shot` with the setting's seed)."""
    names = class_names(s)

    def orders():
        everything = data.select_classes(data.load(s.dataset, "train", tiny=s.tiny), names)
        rng = np.random.default_rng(s.seed)
        return everything, [members[rng.permutation(len(members))] for members in
                            (np.flatnonzero(everything.labels == c) for c in range(len(everything.classes)))]
    # a plan's many settings of one dataset, classes and seed share them (see cgt.planning)
    return planning.memo(("ctf class orders", s.dataset, s.tiny, tuple(names), s.seed), orders)


def low_per_class(s: Setting) -> int:
    """Down-sampled low-quality images taken from each class (Table I's kind)."""
    return -(-s.low_count // s.classes)


def demands(s: Setting) -> list[str]:
    """What the setting asks of its datasets that they cannot give, checked against the
    committed sizes of their smallest classes (no arrays loaded); [] when it fits.

    High-quality sets are prefixes of each class's order and Table I's low-quality
    images its tail, so Fewer HQ and the low-quality images must fit in one class
    side by side; Entire HQ may then contain them (the class has no other images)."""
    problems = []
    smallest = data.smallest_class(s.dataset, "train", s.tiny)
    if smallest is not None and s.per_class > smallest:
        problems.append(f"{s.dataset}: {s.per_class} high-quality images per class, but its "
                        f"smallest class has {smallest}")
    side_by_side = s.used_per_class + low_per_class(s) if s.fraction < 1 else low_per_class(s)
    if s.low == "downsampled" and smallest is not None and side_by_side > smallest:
        problems.append(f"{s.dataset}: {s.used_per_class if s.fraction < 1 else 0} high-quality "
                        f"+ {low_per_class(s)} low-quality images apart per class, but its "
                        f"smallest class has {smallest}")
    if s.low == "digits":
        digits = data.smallest_class("digits", "train", s.tiny)
        if digits is not None and -(-s.low_count // 10) > digits:
            problems.append(f"digits: {-(-s.low_count // 10)} low-quality images per digit, but "
                            f"the smallest digit class has {digits}")
    return problems


def high_quality(s: Setting) -> data.ImageSet:
    """The first ``used_per_class`` images of each class's seeded order (nested: the
    Fewer-HQ set lies inside the Entire-HQ set, the first ``per_class``)."""
    everything, orders = _class_orders(s)
    per_class = planning.take(s.dataset, "high-quality images per class", s.per_class,
                              min(len(o) for o in orders), data.smallest_class(s.dataset, "train"))
    short = [everything.classes[c] for c, o in enumerate(orders) if len(o) < per_class]
    if short:
        raise ValueError(f"{s.dataset} has fewer than {s.per_class} images in class(es) "
                         f"{', '.join(short[:5])}")
    return planning.memo(("ctf high quality", s), lambda: everything.subset(
        np.sort(np.concatenate([o[:s.used_per_class] for o in orders]))))


def low_quality(s: Setting) -> tuple[torch.Tensor, torch.Tensor, int]:
    """(images N×1×size×size in [-1, 1], labels g_L, number of low-quality classes)."""
    if s.low == "none":
        raise ValueError("this setting has no low-quality images")
    if s.low == "digits":
        digits = data.load("digits", "train", tiny=s.tiny)
        per = -(-s.low_count // len(digits.classes))
        chosen = data.k_shot(digits, per, seed=s.seed)
        chosen = chosen.subset(np.arange(min(s.low_count, len(chosen))))
        images, labels, count = chosen.images, chosen.labels, len(digits.classes)
    else:  # down-sampled images of the same classes: the tail of each class's order
        everything, orders = _class_orders(s)
        per = low_per_class(s)
        apart = (s.used_per_class if s.fraction < 1 else 0) + per  # Entire HQ may hold them
        apart = planning.take(s.dataset, "high-quality + low-quality images apart per class",
                              apart, min(len(o) for o in orders),
                              data.smallest_class(s.dataset, "train"))
        short = [everything.classes[c] for c, o in enumerate(orders) if apart > len(o)]
        if short:
            raise ValueError(f"{s.dataset} cannot give {apart - per} high-quality and {per} "
                             f"low-quality images apart in class(es) {', '.join(short[:5])}")
        chosen = everything.subset(np.sort(np.concatenate([o[len(o) - per:] for o in orders]))[:s.low_count])
        # a plan's many runs of one setting down-sample the same images: once
        images = planning.memo(("low quality", s), lambda: data.low_quality(chosen.images, s.low_size))
        labels, count = chosen.labels, s.classes
    tensor = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1
    return tensor, torch.from_numpy(labels).long(), count  # in colour: Eq. (3) greys them itself


def low_in_high(s: Setting) -> int:
    """How many of Table I's low-quality images are also in the setting's high-quality
    set (0 for Fewer HQ; for Entire HQ those the classes had no room for elsewhere)."""
    if s.low != "downsampled":
        return 0
    _, orders = _class_orders(s)
    per = low_per_class(s)
    return int(sum(max(0, min(s.used_per_class, len(o)) - (len(o) - per)) for o in orders))


@dataclass
class Training:
    """What a CTF run learns from: high-quality images (labels 0..C-1) and the pool of
    low-quality ones (images N×c×h×w in [-1, 1], labels g_L of ``low_classes`` classes)."""

    high: data.ImageSet
    low: torch.Tensor | None = None
    low_labels: torch.Tensor | None = None
    low_classes: int = 0


def training_data(s: Setting) -> Training:
    if s.low == "none":
        return Training(high_quality(s))
    return Training(high_quality(s), *low_quality(s))


def training_digest(d: Training) -> str:
    """What names given training images in a run key: the pixels and labels of both sets."""
    if d.low is None:
        return d.high.digest()
    low = hashlib.sha256(d.low.numpy().tobytes() + d.low_labels.numpy().tobytes()).hexdigest()
    return f"{d.high.digest()}+{low[:16]}"


def gan_config(high: data.ImageSet, sizes) -> GANConfig:
    return GANConfig(resolution=32, channels=high.channels, num_classes=len(high.classes),
                     ch=sizes["ch"], dim_z=128, init="N02", class_names=list(high.classes))


def model_config(d: Training, v: Variant, sizes) -> dict:
    """What :func:`build_from_config` rebuilds a cell's generator from (the pool's shape:
    its images are buffers of the saved weights)."""
    uses_pool = v.method == "ctf" and d.low is not None
    return {"gan": gan_config(d.high, sizes).to_dict(), "domain": v.domain, "g_lh": sizes["g_lh"],
            "pool": list(d.low.shape) if uses_pool else None, "low_classes": d.low_classes}


def train_config(sizes, iterations: int, seed: int) -> TrainConfig:
    """Checkpoints at every evaluation, so that an interrupted run resumes there; ``seed``
    sets the batch order and z stream, the same for every arm at one seed."""
    return TrainConfig(iterations=iterations, batch_size=sizes["batch_size"], lr_g=sizes["lr_g"],
                       lr_d=sizes["lr_d"], betas=(0.0, 0.999), d_steps=1, eval_every=sizes["eval_every"],
                       checkpoint_every=sizes["eval_every"], seed=seed)


def scoring(s: Setting, sizes) -> Scoring:
    """Class-balanced samples against the test images of the classes.  Every evaluation
    also gives the conditional accuracy and the classifier score, both with the
    classifier's head cut to the setting's classes (chance 1 / classes; a score of at
    most ``classes``) and the score over all samples at once, without splits."""
    return Scoring(s.dataset, "test", tuple(class_names(s)), s.tiny, sizes["eval_samples"],
                   sizes["score_samples"], restrict_head=True, score_splits=1)


def run_name(s: Setting, v: Variant) -> str:
    switches = ("" if v.self_supervision else "-noss") + ("" if v.domain == "dct" else f"-{v.domain}")
    return f"{v.method}{switches}-{s.dataset}{s.classes}-{s.label()}-{s.low}-s{s.seed}"


# What a run computes from: the table specs are in its Setting, the rest is not read.
PHASE_ONE_SIZES = ("ch", "batch_size", "lr_g", "lr_d", "phase1_iterations", "eval_every",
                   "eval_samples", "lambda_ss", "g_lh")
RUN_SIZES = ("ch", "batch_size", "lr_g", "lr_d", "iterations", "phase1_iterations", "eval_every",
             "eval_samples", "score_samples", "lambda_ss", "g_lh")
CODE = COMPUTING_CODE + (__name__,)


def run_cell(s: Setting, v: Variant, sizes, profile: str, progress: bool = True) -> RunRecord:
    """One cell of a setting: the baseline, or CTF's phase 2 after its phase 1 (shared by
    the cells that differ only after it: the DCT and pixel-domain variants)."""
    with planning.run_named(CHAPTER, run_name(s, v)):  # its images are taken before the run
        return train_cell(training_data(s), v, sizes, seed=s.seed, profile=profile,
                          name=run_name(s, v), data_config=asdict(s), scoring=scoring(s, sizes),
                          phase_one_name=f"phase1-{run_name(s, replace(v, domain='dct'))}",
                          progress=progress)


def train_phase_one(d: Training, v: Variant, sizes, *, seed: int, profile: str, name: str,
                    data_config: dict, scoring, home=None, progress: bool = True) -> RunRecord:
    """Tasks ② + ③: G_LH learns low → high quality against D_LH (with the box head).
    ``data_config`` names the images ``d`` holds in the run's key."""
    config = {"setting": data_config, "self_supervision": v.self_supervision,
              "sizes": {k: sizes[k] for k in PHASE_ONE_SIZES}}
    spec = RunSpec(CHAPTER, name, profile, config, seed, code=CODE,
                   home=None if home is None else str(home))

    def work(record, folder):
        torch.manual_seed(seed)
        cfg = gan_config(d.high, sizes)
        low_to_high = ctf.LowToHigh(cfg.channels, cfg.num_classes, d.low_classes, **sizes["g_lh"])
        sampler = ctf.LowToHighSampler(low_to_high, cfg, d.low, d.low_labels)
        discriminator = ctf.BoxDiscriminator(cfg)
        real = d.high.to_tensor()
        result = train_gan(sampler, discriminator, real, torch.from_numpy(d.high.labels),
                           train_config(sizes, sizes["phase1_iterations"], seed),
                           select_parameters=ctf.select_low_to_high,
                           d_regulariser=ctf.self_supervision(real, sizes["lambda_ss"], seed)
                           if v.self_supervision else None,
                           evaluate=scoring.evaluator(), out_dir=folder, record=record,
                           progress=progress)
        atomic.save_torch({"low_to_high": low_to_high.state_dict(),
                           "discriminator": discriminator.state_dict()}, folder / "phase1.pt")
        record.metrics["best"] = result.best
        (folder / "last.pt").unlink(missing_ok=True)

    return run(spec, work)


def steps(sizes, has_phase_one: bool) -> int:
    """Training steps of a run: CTF's phase 2 ``iterations`` after its phase 1; a run
    without phase 1 (the baseline, CTF without low-quality data) both phases' steps, so
    that every arm's discriminator trains for as many steps."""
    return sizes["iterations"] + (0 if has_phase_one else sizes["phase1_iterations"])


def train_cell(d: Training, v: Variant, sizes, *, seed: int, profile: str, name: str,
               data_config: dict, scoring, phase_one_name: str = "phase1", home=None,
               progress: bool = True) -> RunRecord:
    """The baseline, or CTF's phase 2 (tasks ① + ③) after its phase 1 (a run of its own,
    ``phase_one_name``), on the images of ``d``; ``home`` keeps both records there.
    Steps: :func:`steps`."""
    config = {"setting": data_config, "variant": asdict(v),
              "sizes": {k: sizes[k] for k in RUN_SIZES}, "model": model_config(d, v, sizes)}
    first = None
    if v.method == "ctf" and d.low is not None:
        first = train_phase_one(d, v, sizes, seed=seed, profile=profile, name=phase_one_name,
                                data_config=data_config, scoring=scoring, home=home,
                                progress=progress)
        config.update(phase1=first.name, phase1_key=first.key)
    spec = RunSpec(CHAPTER, name, profile, config, seed, builder=f"{__name__}:build_from_config",
                   scoring=scoring, code=CODE, home=None if home is None else str(home))

    def work(record, folder):
        real = d.high.to_tensor()
        torch.manual_seed(seed)
        cfg = gan_config(d.high, sizes)
        uses_box = v.method == "ctf"
        discriminator = ctf.BoxDiscriminator(cfg) if uses_box else Discriminator(cfg)
        generator, select = build_generator(d, v, sizes), all_parameters
        if first is not None:
            saved = torch.load(first.path.with_suffix("") / "phase1.pt", map_location="cpu",
                               weights_only=True)
            generator.low_to_high.load_state_dict(saved["low_to_high"])
            discriminator.load_state_dict(saved["discriminator"])  # D_LH carries on from phase 1
            select = ctf.select_conditional
        result = train_gan(generator, discriminator, real, torch.from_numpy(d.high.labels),
                           train_config(sizes, steps(sizes, first is not None), seed),
                           select_parameters=select,
                           d_regulariser=ctf.self_supervision(real, sizes["lambda_ss"], seed)
                           if uses_box and v.self_supervision else None,
                           evaluate=spec.scoring.evaluator(), out_dir=folder, record=record,
                           progress=progress)
        record.metrics.update(best=result.best, train_high=len(d.high),
                              trainable_g=sum(p.numel() for p in select(generator, discriminator)[0]),
                              train_low=len(d.low) if first is not None else 0,
                              phase1_history=[] if first is None else first.metrics.get("history", []))
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
            "chance_accuracy": 1 / s.classes, "best_iteration": best.get("iteration", np.nan),
            "late_fid": protocol.late_score(record.metrics.get("history", []), "fid"),
            "status": status, "wall_s": record.wall_time_s, "run": record.name,
            "history": record.metrics.get("history", []),
            "phase1_history": record.metrics.get("phase1_history", [])}


FULL, BASELINE = "Ours (Fewer HQ)", "SN-GAN+Projection (entire HQ)"


def settings(table: str, sizes) -> dict[str, tuple[Setting, Variant]]:
    """The rows of Table I (``"table1"``) or Table II (``"table2"``) at seed 0: the
    baseline on all and on ~65 % of the high-quality images, ours Fewer HQ and Entire HQ."""
    spec = sizes[table]
    base = Setting(spec["dataset"], spec["classes"], spec["per_class"], 1.0, spec["low"],
                   spec["low_count"], sizes["low_size"], 0, sizes["tiny"])
    fewer = replace(base, fraction=sizes["fraction"])
    return {BASELINE: (replace(base, low="none"), Variant("baseline")),
            "SN-GAN+Projection (fewer HQ)": (replace(fewer, low="none"), Variant("baseline")),
            FULL: (fewer, Variant("ctf")),
            "Ours (Entire HQ)": (base, Variant("ctf"))}


def row_seeds(label: str, sizes) -> list[int]:
    """The paired seeds of a table row: ``seeds`` for the two arms of the claim (ours
    Fewer HQ, the entire-HQ baseline), ``other_seeds`` for the other two rows."""
    return list(sizes["seeds"] if label in (FULL, BASELINE) else planning.repeats(sizes["other_seeds"]))


def table(name: str, sizes, profile: str, progress: bool = True) -> pd.DataFrame | None:
    """Every run of Table I or II, one row per cell and seed; None for a table the
    profile does not run (``sizes[name]`` None)."""
    if sizes.get(name) is None:
        return None
    return pd.DataFrame([row(replace(s, seed=seed), v, run_cell(replace(s, seed=seed), v, sizes,
                                                                 profile, progress), label)
                         for label, (s, v) in settings(name, sizes).items()
                         for seed in row_seeds(label, sizes)])


def real_table(sizes, profile: str, progress: bool = True) -> pd.DataFrame | None:
    """Table I on CIFAR-10 itself (``table1_real`` of the paper profile), when a user has
    it on disk (``CGT_CIFAR10``); None otherwise.  STL-10 has no loader here."""
    if "table1_real" not in sizes or not data.real.real_available(
            sizes["table1_real"]["dataset"]):
        return None
    return table("table1_real", sizes, profile, progress)


# The ablations that train: the DCT-domain one is an identity (see ``dct_identity``).
ABLATIONS = {"w/o self-supervision": lambda s, v: (s, replace(v, self_supervision=False)),
             "w/o low-quality data (no G_LH, no CTFs)": lambda s, v: (replace(s, low="none"), v)}


def ablations(sizes, profile: str, progress: bool = True) -> pd.DataFrame | None:
    """Ours (Fewer HQ) on Table I's data without one part at a time, at
    ``ablation_seeds`` (the full model's runs are Table I's); None when there are none."""
    seeds = planning.repeats(sizes["ablation_seeds"])
    if not seeds:
        return None
    fewer, full = settings("table1", sizes)[FULL]
    cells = {FULL: (fewer, full), **{label: change(fewer, full) for label, change in ABLATIONS.items()}}
    return pd.DataFrame([row(replace(s, seed=seed), v, run_cell(replace(s, seed=seed), v, sizes,
                                                                 profile, progress), label)
                         for label, (s, v) in cells.items() for seed in seeds])


# Fixed before the runs: the pilot's target (5× chance on Fashion-MNIST's 10 classes).
PILOT_TARGET = 0.5


def pilot(sizes, profile: str, progress: bool = True) -> dict:
    """How many steps the entire-HQ baseline of Table I needs to reach conditional
    accuracy ``PILOT_TARGET``: one run of ``pilot["iterations"]`` steps on a seed no
    verdict uses, evaluated every ``pilot["eval_every"]`` steps.  Returns its curve and
    the first evaluated step at the target (None if never)."""
    spec = sizes["pilot"]
    s, v = settings("table1", sizes)[BASELINE]
    s = replace(s, seed=spec["seed"])
    pilot_sizes = {**sizes, "iterations": spec["iterations"], "phase1_iterations": 0,
                   "eval_every": spec["eval_every"]}
    with planning.run_named(CHAPTER, "pilot-" + run_name(s, v)):
        record = train_cell(training_data(s), v, pilot_sizes, seed=s.seed, profile=profile,
                            name="pilot-" + run_name(s, v), data_config=asdict(s),
                            scoring=scoring(s, sizes), progress=progress)
    curve = [(h["iteration"], h["conditional_accuracy"]) for h in record.metrics.get("history", [])
             if "conditional_accuracy" in h]
    reached = next((i for i, a in curve if a >= PILOT_TARGET), None)
    return {"seed": s.seed, "iterations": spec["iterations"], "curve": curve, "reached": reached,
            "target": PILOT_TARGET, "budget": steps(sizes, False), "chance": 1 / s.classes}


def pilot_summary(result: dict) -> str:
    """The pilot in one sentence, with the budget of the profile's runs beside it."""
    reached = (f"reached {result['target']:.2f} at step {result['reached']}" if result["reached"] is not None
               else f"did not reach {result['target']:.2f} within {result['iterations']} steps")
    final = result["curve"][-1][1] if result["curve"] else float("nan")
    return (f"pilot (entire-HQ baseline, seed {result['seed']}): conditional accuracy {reached} "
            f"(last {final:.3f}, chance {result['chance']:.3f}); each run of this profile trains "
            f"{result['budget']} steps")


def dct_identity(seed: int = 0) -> float:
    """Largest gap between DCT-domain and pixel-domain difference maps (Eq. 3/4) of
    random feature maps: zero up to float rounding, since the DCT is linear."""
    torch.manual_seed(seed)
    current, previous = torch.randn(4, 16, 16, 16), torch.randn(4, 16, 8, 8)
    return float((ctf.difference_maps(current, previous, "dct")
                  - ctf.difference_maps(current, previous, "pixel")).abs().max())


def build_generator(d: Training, v: Variant, sizes) -> torch.nn.Module:
    """An untrained generator of a cell (G_A with its G_LH and pool for CTF cells)."""
    generator = Generator(gan_config(d.high, sizes))
    if v.method == "ctf" and d.low is not None:
        low_to_high = ctf.LowToHigh(generator.cfg.channels, generator.cfg.num_classes, d.low_classes,
                                    domain=v.domain, **sizes["g_lh"])
        generator = ctf.CTFGenerator(generator, low_to_high, d.low, d.low_labels)
    return generator


def build_from_config(config: dict) -> torch.nn.Module:
    """The untrained generator of a cell's config (for :func:`cgt.runs.load_run`): the
    pool is a placeholder of its shape until the saved weights fill it."""
    model = config["model"]
    generator = Generator(GANConfig(**model["gan"]))
    if model["pool"] is None:
        return generator
    low_to_high = ctf.LowToHigh(generator.cfg.channels, generator.cfg.num_classes,
                                model["low_classes"], domain=model["domain"], **model["g_lh"])
    return ctf.CTFGenerator(generator, low_to_high, torch.zeros(model["pool"]),
                            torch.zeros(model["pool"][0], dtype=torch.long))


def load(s: Setting, v: Variant, profile: str) -> torch.nn.Module:
    """The chosen generator of a finished cell."""
    return load_run(CHAPTER, run_name(s, v), profile)


# Fixed before the runs: "matches" means a classifier score within ±10 % of the baseline's;
# float32 rounding of the DCT identity.  (A generator "learns its classes" by the shared rule,
# cgt.claims.learned_level.)
SCORE_MARGIN = 0.10
DCT_TOLERANCE = 1e-5


def arm_checks(frame: pd.DataFrame, rows=(FULL, BASELINE)) -> list[protocol.Precondition]:
    """The gates of every CTF claim, per compared row (:mod:`cgt.claims`): each run left its
    start (a checkpoint past iteration 0 with a better selection FID), converged, and
    renders its classes (conditional accuracy of its fresh samples at least
    :func:`cgt.claims.learned_level` of chance, 1 / classes with the head cut to them)."""
    if frame.empty:
        return [protocol.Precondition("runs of the compared rows", False, "none ran")]
    chance = float(frame.chance_accuracy.iloc[0])
    checks = []
    for name in rows:
        runs = frame[frame.row == name]
        curves = {int(r.seed): protocol.curve(r.history, "fid") for r in runs.itertuples()}
        checks += [protocol.adapted(name, curves, {int(r.seed): r.best_iteration for r in runs.itertuples()}),
                   protocol.converged(name, curves),
                   protocol.learned(name, {int(r.seed): r.conditional_accuracy for r in runs.itertuples()},
                                    chance)]
    return checks


def not_run(what: str) -> protocol.Precondition:
    return protocol.Precondition("run in this profile", False, what)


def _claim(key: str, text: str, kind: str, metric: str, arms, **rule) -> protocol.Claim:
    return protocol.Claim(CHAPTER, key, text, kind, metric, arms, **rule)


def _unit(frame: pd.DataFrame | None, row: str, column: str) -> dict:
    """``column`` of one table row's runs keyed by seed (the pairing unit of the arms)."""
    if frame is None:
        return {}
    cells = frame[frame.row == row]
    return {int(seed): float(value) for seed, value in zip(cells.seed, cells[column])}


def table_claim(key: str, name: str) -> protocol.Claim:
    """Table I's or II's claim: ours on fewer HQ images matches the entire-HQ baseline."""
    return _claim(key, f"{name}: ours with ~65 % of the high-quality images matches the baseline "
                  f"with all of them (classifier score within ±{SCORE_MARGIN:.0%})", "equivalence",
                  "classifier score", ("ours, fewer HQ", "baseline, entire HQ"),
                  lower_is_better=False, margin=SCORE_MARGIN)


def claims(table1: pd.DataFrame, table2: pd.DataFrame | None, ablation: pd.DataFrame | None,
           pilot_result: dict) -> list[protocol.Result]:
    """The paper's claims, each judged by :mod:`cgt.claims`, gated on generators that
    learned their classes; a table the profile does not run is untestable, the pilot's
    numbers given."""
    rows = []
    for key, name, frame in (("ctf-table1", "Table I", table1), ("ctf-table2", "Table II", table2)):
        gate = arm_checks(frame) if frame is not None else [
            not_run(f"{name} is judged in the paper profile only; {pilot_summary(pilot_result)}")]
        rows.append(protocol.equivalence(table_claim(key, name), _unit(frame, FULL, "classifier_score"),
                                         _unit(frame, BASELINE, "classifier_score"), gate))
    rows.append(protocol.superiority(
        _claim("ctf-classes", "The advantage grows with the number of classes", "superiority",
               "classifier-score gap", ("many-class gap", "10-class gap"), lower_is_better=False),
        {}, {}, [protocol.Precondition(
            "gaps measured within one dataset", False,
            "Tables I and II differ in dataset and head; testing this needs one dataset at two "
            "class counts with the same images per class (e.g. Hanzi, 10 and 3,755 characters)")]))
    for key, removed in (("ctf-self-supervision", "w/o self-supervision"),
                         ("ctf-low-quality", "w/o low-quality data (no G_LH, no CTFs)")):
        gate = (arm_checks(ablation, (FULL, removed)) if ablation is not None else
                [not_run("the ablations are judged in the paper profile only")])
        rows.append(protocol.superiority(
            _claim(key, f"The full model beats the ablation {removed} in FID", "superiority",
                   "FID", ("full model", removed)),
            _unit(ablation, FULL, "fid"), _unit(ablation, removed, "fid"), gate))
    gap = dct_identity()
    rows.append(protocol.exact(
        _claim("ctf-dct", "A test of construction, not a claim of the paper: DCT-domain "
               "differences (Eq. 3/4) equal pixel-domain ones", "exact", "max |DCT − pixel|",
               ("DCT", "pixel")),
        0.0 if gap <= DCT_TOLERANCE else gap, 0.0,
        f"largest gap {gap:.1e} (float32 rounding below {DCT_TOLERANCE:g} counts as 0)"))
    return protocol.holm(rows)
