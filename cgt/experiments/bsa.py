"""The BSA chapter's experiments: Fig. 4–10 and §5.7 analogues on embedded data.

Targets (``TARGETS``): the scikit-image LFW faces (grey, the FFHQ analogue) adapted
from the shipped ``animals`` generator, and the Noto face emoji (colour, the anime
analogue) adapted from ``emoji-objects``, which never saw a face.  At each seed a
target's images are split once (:func:`split`) into a test part, a validation part
and a training pool; every method and size at that seed trains on the first
``shots`` images of the same pool, is chosen (checkpoint and truncation) on the
validation part and is reported on the test part (:class:`~cgt.metrics.SplitScoring`).
Sizes come from ``cgt.profiles.SIZES["bsa"]``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace

import numpy as np
import pandas as pd
import torch

from .. import claims as protocol
from .. import data, planning, tuning
from ..data import to_uint8
from ..checkpoints import source_fingerprint
from ..methods import bsa
from ..methods.runner import run_transfer
from ..methods.transfer import TransferTask
from ..metrics import (COLLAPSE_STD, ImageScoring, SplitScoring, extract_features,
                       fid_from_features, generate, kmmd, real_statistics, spread)
from ..metrics.evaluate import at_32px, sampled_classes
from ..nn import Generator
from ..pretrain import recipe
from ..profiles import RunSizes
from ..runs import COMPUTING_CODE, RunRecord, RunSpec, load_run, record_path, run
from ..train import BestCheckpoint, TrainConfig

CHAPTER = "bsa"
TARGETS = {"lfw": ("lfw", "animals"), "emoji": ("emoji_faces", "emoji-objects")}
TARGET_CLASS = "face"
METRIC = "kid"  # chooses on validation and judges on test: unbiased at 15-25 real images

# The same-loss methods (Eq. 3, no discriminator) and the adversarial ones (train_gan).
SUPERVISED = {"bsa": None, "update-first": "first", "update-last": "last", "update-all": "all",
              "encoder": None}
ADVERSARIAL = {"scratch": "scratch", "transfergan": "transfergan",
               "transfergan-ss": "transfergan-ss"}
LABELS = {"bsa": "Ours (BSA)", "update-first": "Update first", "update-last": "Update last",
          "update-all": "Update all", "encoder": "Encoder-generator", "scratch": "GAN from scratch",
          "transfergan": "TransferGAN", "transfergan-ss": "TransferGAN (scale/shift)"}
DESCRIPTIONS = {
    "bsa": "frozen G; per-channel scale/shift and one latent per image; L1 + perceptual + regularisers",
    "update-first": "the same loss; G's first linear layer trains instead of the scale/shift",
    "update-last": "the same loss; G's last block and output layer train instead of the scale/shift",
    "update-all": "the same loss; every weight of G trains instead of the scale/shift",
    "encoder": "an encoder gives the latents; G's scale/shift and the encoder learn L1 + perceptual",
    "scratch": "a fresh G and D trained adversarially on the target images",
    "transfergan": "the pretrained G and D fine-tuned adversarially (all weights)",
    "transfergan-ss": "the pretrained G and D frozen; their scale/shift trained adversarially",
}
# A same-loss run whose pixel L1 at its last evaluation is still above 90 % of the L1 it
# started from never left the source's output (set when verdict seed 4 did so at lr 0.1,
# before the runs the chapter now judges).
STUCK_SHARE = 0.9
# The same-loss methods with one learned code per training image, whose reconstructions
# G(z_i) the *fitted* check (cgt.claims.fitted) compares with their images.
CODED = ("bsa", "update-first", "update-last", "update-all")


@dataclass(frozen=True)
class Target:
    """Which images a method learns and which generator it starts from: the first
    ``shots`` of seed ``seed``'s training pool, after ``test`` and ``validation``
    images were split off (:func:`split`)."""

    target: str
    shots: int
    source: str
    tiny: bool = False
    seed: int = 0
    test: int = 25
    validation: int = 15

    def __post_init__(self):
        if self.target not in TARGETS:
            raise ValueError(f"unknown target '{self.target}'; valid: {', '.join(TARGETS)}")
        if self.shots < 1:
            raise ValueError(f"shots must be at least 1, got {self.shots}")

    @property
    def dataset(self) -> str:
        return TARGETS[self.target][0]

    def task(self) -> TransferTask:
        return TransferTask(self.source, self.dataset, (TARGET_CLASS,), self.shots, self.seed, self.tiny)


def target(name: str, shots: int, sizes, source: str | None = None, seed: int = 0) -> Target:
    return Target(name, shots, source or TARGETS[name][1], sizes["tiny"], seed,
                  sizes["split"]["test"], sizes["split"]["validation"])


def faces(t: Target) -> data.ImageSet:
    return data.select_classes(data.load(t.dataset, "train", tiny=t.tiny), [TARGET_CLASS])


def split(t: Target) -> dict[str, np.ndarray]:
    """Indices into the target's images: ``test`` and ``validation`` parts and the
    training ``pool``, from one permutation seeded by ``t.seed`` alone, so that every
    method and every size at that seed shares them (the 25 images lie inside the 50)."""
    count = len(faces(t))
    if t.test + t.validation >= count:
        raise ValueError(f"{t.dataset} has {count} '{TARGET_CLASS}' images: a test split of "
                         f"{t.test} and a validation split of {t.validation} leave none to train on")
    order = np.random.default_rng(t.seed).permutation(count)
    return {"test": order[:t.test], "validation": order[t.test:t.test + t.validation],
            "pool": order[t.test + t.validation:]}


def training_indices(t: Target) -> np.ndarray:
    """The images a method trains on: the first ``shots`` of the seed's pool."""
    pool = split(t)["pool"]
    # named apart from the dataset: a plan must judge the demand against the pool, which the
    # splits shrink on every variant of the data alike
    shots = planning.take(f"{t.dataset} training pool", f"'{TARGET_CLASS}' images", t.shots,
                          len(pool))
    if shots > len(pool):
        raise ValueError(f"{t.dataset}'s training pool holds {len(pool)} images after the test "
                         f"and validation splits; asked for {t.shots}")
    return pool[:shots]


def training_set(t: Target) -> data.ImageSet:
    """What every method of the chapter, same-loss or adversarial, trains on."""
    return faces(t).subset(training_indices(t))


def training_images(t: Target) -> torch.Tensor:
    return training_set(t).to_tensor()


def split_counts(t: Target) -> dict[str, int]:
    parts = split(t)
    return {"train": len(training_indices(t)), "pool": len(parts["pool"]),
            "validation": len(parts["validation"]), "test": len(parts["test"])}


def scoring(t: Target, sizes) -> SplitScoring:
    """Checkpoint and truncation chosen on the validation split, reported on the test split;
    the same grid of thresholds for every method."""
    images, parts = faces(t), split(t)
    return SplitScoring.of(images.subset(parts["validation"]), images.subset(parts["test"]),
                           sizes["eval_samples"], sizes["score_samples"],
                           tuple(sizes["truncation_grid"]), METRIC, training=training_set(t))


def reference_features(t: Target) -> np.ndarray:
    """Features of the test split: what the chapter's figures compare samples with."""
    return extract_features(at_32px(faces(t).subset(split(t)["test"]).images))


@dataclass(frozen=True)
class AdaptationSizes(RunSizes):
    """What a same-loss run reads of the chapter's sizes, all of it in its run key."""

    iterations: int
    batch_size: int
    eval_every: int
    eval_samples: int
    score_samples: int
    score_truncation: float | None
    lr_adapters: float
    lr_latents: float
    lr_body: float
    decay_at: float
    warmup: int
    perceptual: str
    perceptual_weight: float


def bsa_config(method: str, shots: int, seed: int, sizes: AdaptationSizes) -> bsa.BSAConfig:
    lambdas = {"lambda_z": 0.0, "lambda_bn": 0.0} if method == "encoder" else {}
    return bsa.BSAConfig(iterations=sizes.iterations, batch_size=min(sizes.batch_size, shots),
                         lr_adapters=sizes.lr_adapters, lr_latents=sizes.lr_latents,
                         decay_every=int(sizes.iterations * sizes.decay_at),
                         also_train=SUPERVISED[method], lr_body=sizes.lr_body, seed=seed,
                         warmup=sizes.warmup, eval_every=sizes.eval_every, **lambdas)


def stability_check(sizes, rates, seeds, name: str = "lfw", progress: bool = False) -> pd.DataFrame:
    """How the quick learning rate was chosen: BSA at each rate (scale/shift and codes alike)
    on ``focus_shots`` images of tuning ``seeds`` (no verdict uses them), the samples'
    spread at ±1 every 50 steps.  The rule, :func:`stable_rate`: the largest rate at which
    every run keeps its spread at or above twice ``COLLAPSE_STD`` and ends below
    ``STUCK_SHARE`` of its starting L1."""
    network, features = bsa.perceptual_features(sizes["perceptual"])
    rows = []
    for rate in rates:
        for seed in seeds:
            t = target(name, sizes["focus_shots"], sizes, seed=seed)
            images = training_images(t)
            trial = replace(AdaptationSizes.of(sizes), lr_adapters=rate, lr_latents=rate,
                            eval_every=50)
            model = bsa.AdaptedGenerator(bsa.source_generator(t.source), len(images))
            history = bsa.fit_bsa(
                model, images, features, bsa.calibrated_weights(features, images),
                bsa_config("bsa", len(images), seed, trial), progress=progress,
                evaluate=lambda g, it: spread(generate(g, 200, seed=1, truncation=1.0)[0]))
            rows.append({"rate": rate, "seed": seed, "start_l1": history[0]["pixel"],
                         "end_l1": history[-1]["pixel"],
                         "least_spread": min(h["sample_std"] for h in history)})
    return pd.DataFrame(rows)


def stable_rate(check: pd.DataFrame) -> float | None:
    """The largest rate of :func:`stability_check` that passed at every seed (None: none did)."""
    passed = check.assign(ok=(check.least_spread >= 2 * COLLAPSE_STD)
                          & (check.end_l1 < STUCK_SHARE * check.start_l1)).groupby("rate").ok.all()
    return max(passed[passed].index, default=None)


def perceptual_check(sizes, profile: str = "quick", name: str = "lfw",
                     progress: bool = False) -> tuple[tuning.Tuning, pd.DataFrame]:
    """How the perceptual weight (Eq. 3's second term, ``perceptual_weight``) was checked:
    the book's tuning rule (:mod:`cgt.tuning`) applied to BSA's weight over
    ``perceptual_grid`` on ``focus_shots`` images of ``tuning_seeds`` (no verdict uses
    them), each trial scored by the mean validation KID of its last two evaluations after
    iteration 0 (a failed run scores NaN, which rules its weight out).  Returns the rule's
    outcome and every trial's row, with the share of its images the chosen checkpoint
    fitted (:func:`fitted_share`)."""
    rows = []

    def trial(arm: str, weight: float, seed: int) -> float:
        t = target(name, sizes["focus_shots"], sizes, seed=seed)
        record = adapt_images(arm, t.source, training_set(t), {**sizes, "perceptual_weight": weight},
                              seed=seed, profile=profile, name=f"check-pw{weight:g}-{run_name(arm, t)}",
                              target=asdict(t), scoring=scoring(t, sizes), progress=progress)
        done = record.status == "complete"
        trained = [h for h in record.metrics.get("history") or [] if h["iteration"] > 0]
        rows.append({"weight": weight, "seed": seed,
                     "late_validation_kid": protocol.late_score(trained, METRIC, last=2) if done else np.nan,
                     "chosen_iteration": (record.metrics.get("best") or {}).get("iteration"),
                     "fitted_share": (fitted_share(load_run(CHAPTER, record.name, profile), training_images(t))
                                      if done else np.nan)})
        return rows[-1]["late_validation_kid"]

    verdict = [*(s for group in sizes["seeds"].values() for s in group), *sizes["size_seeds"],
               *sizes["source_seeds"]]
    outcome = tuning.tune({"bsa": sizes["perceptual_grid"]}, trial, sizes["tuning_seeds"], verdict,
                          parameter="perceptual weight")
    return outcome, pd.DataFrame(rows)


def fit_supervised(method: str, t: Target, sizes, profile: str, progress: bool = True) -> RunRecord:
    """One run of a same-loss method (ours, update-first/last/all, encoder-generator)
    on the seed's training images, chosen on validation, scored on test."""
    return adapt_images(method, t.source, training_set(t), sizes, seed=t.seed, profile=profile,
                        name=run_name(method, t), target=asdict(t), scoring=scoring(t, sizes),
                        progress=progress)


def adapt_images(method: str, source: str, given: data.ImageSet, sizes, *, seed: int, profile: str,
                 name: str, target: dict, scoring: SplitScoring | ImageScoring, home=None,
                 progress: bool = True) -> RunRecord:
    """One run of a same-loss method on the images of ``given`` from ``source``.

    ``target`` says in the config where the images come from; the config adds the
    ``source``, ``seed`` and ``shots`` that :func:`cgt.methods.bsa.build_adapted` rebuilds from, and the
    images' digest.
    The run keeps the state with the best selection score (``scoring.select_by``, FID
    by default; the adversarial runs do the same) in ``best.pt`` beside its record and
    reports its fresh score.
    """
    if method not in SUPERVISED:
        raise ValueError(f"unknown supervised method '{method}'; valid: {', '.join(SUPERVISED)}")
    images, sizes = given.to_tensor(), AdaptationSizes.of(sizes)
    target = {**target, "source": source, "seed": seed, "shots": len(images), "images": given.digest()}
    config = {"method": method, "target": target, "sizes": asdict(sizes),
              "perceptual_network": bsa.perceptual_choice(sizes.perceptual),
              "source": source_fingerprint(source) if source != "random" else "random"}
    spec = RunSpec(CHAPTER, name, profile, config, seed, builder="bsa-adapted",
                   scoring=scoring, code=COMPUTING_CODE + (__name__,),
                   home=None if home is None else str(home))

    def train(record: RunRecord, folder):
        model = bsa.AdaptedGenerator(bsa.source_generator(source, seed), len(images))
        encoder = bsa.Encoder(images.shape[1], model.cfg.dim_z) if method == "encoder" else None
        network, features = bsa.perceptual_features(sizes.perceptual)
        weights = bsa.calibrated_weights(features, images, sizes.perceptual_weight)
        keep = BestCheckpoint(folder, spec.scoring.select_by)
        history = bsa.fit_bsa(model, images, features, weights,
                              bsa_config(method, len(images), seed, sizes),
                              encoder=encoder, evaluate=spec.scoring.evaluator(), keep=keep,
                              progress=progress, checkpoint=folder / "last.pt")
        record.metrics.update(history=history, perceptual=network, layer_weights=weights,
                              trainable_g=trainable_count(model, method, encoder),
                              train_images=len(images))
        return keep.metrics

    return run(spec, train)


def trainable_count(model: bsa.AdaptedGenerator, method: str, encoder) -> int:
    if SUPERVISED[method]:  # these methods train weights instead of the scale/shift
        count = sum(p.numel() for p in bsa.body_parameters(model, SUPERVISED[method]))
    else:
        count = sum(p.numel() for p in model.adapter_parameters())
    if encoder is not None:
        return count + sum(p.numel() for p in encoder.parameters())
    return count + model.latents.numel()


def fit_adversarial(method: str, t: Target, sizes, profile: str, progress: bool = True) -> RunRecord:
    """One run of an adversarial baseline through the shared transfer runner, on the same
    images as the same-loss methods, chosen and scored as they are."""
    kind = ADVERSARIAL[method]
    rows_only = kind == "transfergan-ss"
    lr = sizes["lr_rows"] if rows_only else sizes["lr_gan"]
    train = TrainConfig(iterations=sizes["iterations"], batch_size=min(sizes["batch_size"], t.shots),
                        lr_g=lr, lr_d=lr, betas=(0.0, 0.999), adam_eps=1e-8, d_steps=1,
                        eval_every=sizes["eval_every"])
    return run_transfer(kind, t.task(), train, profile=profile, eval_samples=sizes["eval_samples"],
                        score_samples=sizes["score_samples"], name=run_name(method, t),
                        chapter=CHAPTER, progress=progress, images=training_set(t),
                        scoring=scoring(t, sizes))


def fit(method: str, t: Target, sizes, profile: str, progress: bool = True) -> RunRecord:
    with planning.run_named(CHAPTER, run_name(method, t)):  # its images are taken before the run
        if method in SUPERVISED:
            return fit_supervised(method, t, sizes, profile, progress)
        if method in ADVERSARIAL:
            return fit_adversarial(method, t, sizes, profile, progress)
    raise ValueError(f"unknown method '{method}'; valid: {', '.join(list(SUPERVISED) + list(ADVERSARIAL))}")


def run_name(method: str, t: Target) -> str:
    return f"{method}-{t.target}-{t.shots}-{t.source}-s{t.seed}"


def load(method: str, t: Target, profile: str):
    """The chosen generator of any method's finished run."""
    return load_run(CHAPTER, run_name(method, t), profile)


def failure(record: RunRecord) -> str:
    """Why a run counts as failed rather than scored ("" if it does not): its chosen
    samples stopped varying (collapsed), or a same-loss run never left the source's
    output (its last pixel L1 still above ``STUCK_SHARE`` of where it started).  A run
    that trained but whose start scored best on validation keeps its start: that is a
    score (the method did no better than the source), not a failure."""
    score, status = record.reported_score()
    if status == "collapsed":
        std = record.metrics.get("score", {}).get("sample_std", np.nan)
        return f"collapsed (test samples' pixel std {std:.2f})"
    if status != "complete":
        return status
    pixel = {h["iteration"]: h["pixel"] for h in record.metrics.get("history", []) if "pixel" in h}
    start, end = (min(pixel), max(pixel)) if pixel else (None, None)
    if pixel and end > start and pixel[end] > STUCK_SHARE * pixel[start]:
        return (f"never left the source (L1 {pixel[start]:.3f} at the start, "
                f"{pixel[end]:.3f} at iteration {end})")
    return ""


NOVELTY = ("memorisation_ratio", "nearer_than_held_out", "training_neighbours", "coverage", "density")
COLUMNS = ["method", "label", "target", "shots", "source", "seed", "kid", "fid", "kmmd", "truncation",
           "validation_kid", "start_kid", "late_kid", "best_iteration", *NOVELTY, "fitted_share", "failure",
           "train_images", "image_indices", "images", "trainable_g", "wall_s", "history"]


def threshold_text(threshold) -> str:
    return "none" if threshold is None else threshold if isinstance(threshold, str) else f"±{threshold:g}"


def row(method: str, t: Target, record: RunRecord) -> dict:
    """A table row: the test score of the checkpoint and threshold chosen on validation
    (NaN with the reason when the run failed)."""
    score, _ = record.reported_score()
    best = record.metrics.get("best") or {}
    history = record.metrics.get("history", [])
    start = dict(protocol.curve(history, METRIC)).get(0, np.nan)
    failed = failure(record)
    value = (lambda k: np.nan) if failed else (lambda k: score.get(k, np.nan))
    return {"method": method, "label": LABELS[method], "target": t.target, "shots": t.shots,
            "source": t.source, "seed": t.seed, "kid": value("kid"), "fid": value("fid"),
            "kmmd": value("kmmd"), "truncation": threshold_text(best.get("truncation", "—")),
            "validation_kid": best.get("kid", np.nan), "start_kid": start,
            "late_kid": protocol.late_score(history, METRIC),
            "best_iteration": best.get("iteration", np.nan),
            **{k: score.get(k, np.nan) for k in NOVELTY},
            "failure": failed or "—", "train_images": record.metrics.get("train_images"),
            "image_indices": training_indices(t).tolist(),
            "images": record.config.get("images") or record.config.get("target", {}).get("images"),
            "trainable_g": record.metrics.get("trainable_g"), "wall_s": record.wall_time_s,
            "history": record.metrics.get("history", [])}


@torch.no_grad()
def reference_rows(t: Target, sizes) -> list[dict]:
    """Two rows scored exactly like a method's, for every seed: ``copy`` returns the
    training images themselves (its test KID is what memorising would earn), ``source``
    is the model every same-loss method starts from, untouched (threshold chosen on
    validation as for the methods)."""
    scorer, images = scoring(t, sizes), training_set(t)
    rows = [{"method": "copy", "label": "Copy the training set", **_reference(
        scorer.score_samples(images.images, extract_features(at_32px(images.images))), t)}]
    start = bsa.AdaptedGenerator(bsa.source_generator(t.source, t.seed), len(images))
    chosen = scorer.evaluator()(start, 0)
    rows.append({"method": "source", "label": "The source, no adaptation",
                 **_reference(scorer.final(start, chosen), t)})
    return rows


@torch.no_grad()
def sampling(profile: str, sizes) -> pd.DataFrame:
    """BSA's chosen checkpoint at every (target, seed) of the comparison, scored on the test
    split like a method at two fixed thresholds: ``truncation`` (±0.3, how the official
    code samples) and untruncated, the two ends of Fig. 5's fidelity/diversity trade-off.
    Runs that did not complete have no checkpoint to score and give no row."""
    rows = []
    for name in sizes["methods"]:
        for seed in sizes["seeds"][name]:
            t = target(name, sizes["focus_shots"], sizes, seed=seed)
            saved = json.loads(record_path(CHAPTER, run_name("bsa", t), profile).read_text())
            if saved["status"] != "complete":
                continue
            model, scorer = load("bsa", t, profile), scoring(t, sizes)
            for threshold in (sizes["truncation"], None):
                at = "untruncated" if threshold is None else f"at {threshold_text(threshold)}"
                rows.append({"method": "bsa", "label": f"Ours (BSA), {at}",
                             **_reference(scorer.final(model, {"truncation": threshold}), t)})
    return pd.DataFrame(rows)


def _reference(score: dict, t: Target) -> dict:
    return {"target": t.target, "shots": t.shots, "source": t.source, "seed": t.seed,
            **{k: score.get(k, np.nan) for k in ("kid", "fid", "kmmd") + NOVELTY},
            "truncation": threshold_text(score.get("truncation"))}


def references(profile: str, sizes) -> pd.DataFrame:
    """:func:`reference_rows` at every (target, seed) of the comparison."""
    return pd.DataFrame([r for name in sizes["methods"] for seed in sizes["seeds"][name]
                         for r in reference_rows(target(name, sizes["focus_shots"], sizes, seed=seed),
                                                 sizes)])


@torch.no_grad()
def fitted_share(model: bsa.AdaptedGenerator, images: torch.Tensor) -> float:
    """The share of training images x_i whose reconstruction G(z_i) lies nearer to x_i than
    to any other training image, in the scoring network's features (chance: 1 / N)."""
    made = extract_features(model.reconstruct(torch.arange(len(images))))
    distances = ((made[:, None] - extract_features(images)[None]) ** 2).sum(-1)
    return float((distances.argmin(1) == np.arange(len(images))).mean())


def _run_all(jobs, sizes, profile: str, progress: bool) -> pd.DataFrame:
    """Rows of (method, target) jobs, each run once however many steps list it; a coded
    method's row gets its chosen checkpoint's :func:`fitted_share`."""
    seen, rows = set(), []
    for method, t in jobs:
        if (method, t) not in seen:
            seen.add((method, t))
            record = fit(method, t, sizes, profile, progress)
            rows.append(row(method, t, record))
            if method in CODED and record.status == "complete" and not planning.active():
                rows[-1]["fitted_share"] = fitted_share(load(method, t, profile), training_images(t))
    return pd.DataFrame(rows, columns=COLUMNS)


def comparison(profile: str, sizes, progress: bool = True) -> pd.DataFrame:
    """Fig. 4: on ``focus_shots`` images of each target, the headline methods at every
    seed of ``seeds[target]``, the other methods at the first seed (an illustration)."""
    jobs = []
    for name, methods in sizes["methods"].items():
        for i, seed in enumerate(sizes["seeds"][name]):
            t = target(name, sizes["focus_shots"], sizes, seed=seed)
            jobs += [(m, t) for m in methods if i == 0 or m in sizes["headline"]]
    return _run_all(jobs, sizes, profile, progress)


def dataset_sizes(profile: str, sizes, progress: bool = True) -> pd.DataFrame:
    """Fig. 8/9: ours, TransferGAN and Update-all on LFW as the number of images grows,
    at every seed of ``size_seeds`` (the smaller sets lie inside the larger ones)."""
    jobs = [(m, target("lfw", shots, sizes, seed=seed)) for seed in sizes["size_seeds"]
            for shots in sizes["shots"] for m in sizes["size_methods"]]
    return _run_all(jobs, sizes, profile, progress)


def source_selection(profile: str, sizes, progress: bool = True) -> pd.DataFrame:
    """Fig. 10: ours on the LFW faces from a random generator and from each grey source,
    at every seed of ``source_seeds``."""
    jobs = [("bsa", target("lfw", sizes["focus_shots"], sizes, source=source, seed=seed))
            for seed in sizes["source_seeds"] for source in sizes["sources"]]
    return _run_all(jobs, sizes, profile, progress)


@torch.no_grad()
def truncation_sweep(model, t: Target, sizes, thresholds) -> pd.DataFrame:
    """Fig. 5: FID, KMMD and diversity (mean pairwise feature distance) per threshold."""
    rows = []
    real = reference_features(t)
    for threshold in thresholds:
        fake, _ = generate(model, sizes["eval_samples"], seed=7, truncation=threshold)
        features = extract_features(fake)
        rows.append({"truncation": threshold, "fid": fid_from_features(real, features),
                     "kmmd": kmmd(real, features), "diversity": mean_pairwise_distance(features)})
    return pd.DataFrame(rows)


def mean_pairwise_distance(features: np.ndarray, limit: int = 500) -> float:
    x = torch.from_numpy(np.asarray(features[:limit], np.float64))
    distances = torch.cdist(x, x)
    n = len(x)
    return float(distances.sum() / (n * (n - 1)))


@torch.no_grad()
def interpolation(model: bsa.AdaptedGenerator, first: int, second: int, steps: int) -> np.ndarray:
    """Fig. 6/7: images along the straight line between two learned latents (uint8 N×H×W×C)."""
    weights = torch.linspace(0, 1, steps)[:, None]
    z = (1 - weights) * model.latents[first] + weights * model.latents[second]
    return to_uint8(model(z))


def roughness(frames: np.ndarray) -> float:
    """How unevenly an interpolation moves: the largest step between neighbouring
    frames divided by the mean step (1 for a perfectly even path)."""
    steps = np.abs(np.diff(frames.astype(np.float64), axis=0)).mean(axis=(1, 2, 3))
    return float(steps.max() / max(steps.mean(), 1e-12))


@torch.no_grad()
def morph(model: bsa.AdaptedGenerator, source_class: int, target_index: int, steps: int,
          seed: int = 0) -> np.ndarray:
    """Fig. 14: from a source-class sample to a learned target image, scale/shift and
    latent blended together."""
    rng = torch.Generator().manual_seed(seed)
    z_source = bsa.truncated_normal(1, model.cfg.dim_z, 1.0, rng)[0]
    frames = []
    for weight in np.linspace(0, 1, steps):
        z = (1 - weight) * z_source + weight * model.latents[target_index]
        with model.morphing(float(weight)):
            frames.append(model(z[None], torch.tensor([source_class])))
    return to_uint8(torch.cat(frames))


@torch.no_grad()
def source_disturbance(model: bsa.AdaptedGenerator, source: Generator, source_name: str,
                       tiny: bool, samples: int = 500, seed: int = 3) -> dict:
    """§5.7: does the adapted generator still render the source domain?  With every
    adapter blended out (``morphing(0)``) it should equal the source exactly; a
    method that changed the kernels cannot.  Returns the largest pixel difference
    and the FID of the source classes before and after, against the source's test images."""
    z, y = source.sample_inputs(samples, generator=torch.Generator().manual_seed(seed), device="cpu")
    before = source(z, y)
    with model.morphing(0.0):
        after = model(z, y)
    spec = recipe(source_name)
    real = real_statistics(spec.dataset, "test", tiny, list(spec.classes))["features"].astype(np.float64)
    return {"max_abs_difference": float((before - after).abs().max()),
            "source_fid_before": fid_from_features(real, extract_features(to_uint8(before))),
            "source_fid_after": fid_from_features(real, extract_features(to_uint8(after)))}


def _claim(key: str, text: str, kind: str, arms=("BSA", "other method"),
           metric: str = "KID (test split)", lower_is_better: bool = True) -> protocol.Claim:
    return protocol.Claim(CHAPTER, key, text, kind, metric, arms, lower_is_better=lower_is_better)


def by_seed(frame: pd.DataFrame, method: str, measure: str = "kid", **where) -> dict:
    """{seed: test ``measure``} of one method's runs in ``frame`` (NaN for a failed run)."""
    cell = frame[frame.method == method]
    for column, value in where.items():
        cell = cell[cell[column] == value]
    return {int(r.seed): np.nan if r.failure != "—" else float(getattr(r, measure))
            for r in cell.itertuples()}


def _ran(frame: pd.DataFrame, what: str,
         why: str = "this profile's budget holds the 25-image pairs first") -> protocol.Precondition:
    """Whether this profile ran ``frame``'s runs at all (some run in the paper profile only)."""
    return protocol.Precondition(f"{what} is judged in the paper profile only", len(frame) > 0, why)


def arm_checks(frame: pd.DataFrame, method: str, **where) -> list[protocol.Precondition]:
    """Did ``method``'s runs in ``frame`` do what an arm must (:mod:`cgt.claims`): leave the
    source (chosen past iteration 0, better on validation), converge, make new images and,
    for a coded method, reproduce its training images?"""
    cell = frame[frame.method == method]
    for column, value in where.items():
        cell = cell[cell[column] == value]
    label = LABELS[method] + "".join(f" ({v})" for v in where.values())
    curves = {int(r.seed): protocol.curve(r.history, METRIC) for r in cell.itertuples()}
    checks = [protocol.adapted(label, curves, {int(r.seed): r.best_iteration for r in cell.itertuples()}),
              protocol.converged(label, curves),
              protocol.not_memorising(label, {int(r.seed): r.memorisation_ratio for r in cell.itertuples()})]
    if method in CODED:
        checks.append(protocol.fitted(label, {int(r.seed): r.fitted_share for r in cell.itertuples()}))
    return checks


def truncation_claims(grid: pd.DataFrame, sampled: pd.DataFrame, sizes) -> list[protocol.Result]:
    """Fig. 5 as the paper states it, a trade-off, on BSA's LFW runs paired by seed: the
    official threshold gives samples nearer the real faces (density, the fidelity of
    Naeem et al. 2020), untruncated sampling covers more of them (coverage, their
    diversity), both against the test split.  Gated on BSA's runs having worked."""
    low, high = threshold_text(sizes["truncation"]), threshold_text(None)
    lfw = sampled[sampled.target == "lfw"] if len(sampled) else sampled
    checks = arm_checks(grid[(grid.target == "lfw") & (grid.shots == sizes["focus_shots"])], "bsa")

    def at(measure: str, threshold: str) -> dict:
        return {int(r.seed): float(getattr(r, measure))
                for r in lfw.itertuples() if r.truncation == threshold}

    return [protocol.superiority(
                _claim("bsa-truncation", f"On LFW, sampling at {low} gives samples nearer the real "
                       "faces than untruncated sampling (fidelity)", "superiority",
                       (f"BSA at {low}", "untruncated"), "density (test split)", False),
                at("density", low), at("density", high), checks),
            protocol.superiority(
                _claim("bsa-truncation", f"On LFW, untruncated sampling covers more of the real "
                       f"faces than sampling at {low} (diversity)", "superiority",
                       ("BSA untruncated", f"at {low}"), "coverage (test split)", False),
                at("coverage", high), at("coverage", low), checks)]


def copy_note(cell: pd.DataFrame, refs: pd.DataFrame, methods) -> str:
    """What copying the training set earns on the claim's metric, beside the measure it
    cannot win (the memorisation ratio: 0 for the copy)."""
    copies = {int(r.seed): r.kid for r in refs[refs.method == "copy"].itertuples()}
    runs = {m: by_seed(cell, m) for m in methods}
    beaten = [s for s in copies if all(copies[s] < runs[m].get(s, np.inf) for m in methods)]
    ratios = ", ".join(f"{LABELS[m]} {cell[cell.method == m].memorisation_ratio.mean():.2f}"
                       for m in methods)
    return (f"; copying the training set: test KID {np.mean(list(copies.values())):.3g}, better than "
            f"both arms at {len(beaten)} of {len(copies)} seeds; memorisation ratio (copy 0): {ratios}")


def _gap(frame: pd.DataFrame, other: str, shots: int) -> dict:
    """{seed: KID(BSA) − KID(other)} at ``shots`` images (the seeds both ran)."""
    ours, theirs = by_seed(frame, "bsa", shots=shots), by_seed(frame, other, shots=shots)
    return {s: ours[s] - theirs[s] for s in ours if s in theirs}


def claims(grid: pd.DataFrame, by_size: pd.DataFrame, sources: pd.DataFrame,
           sampled: pd.DataFrame, disturbance: dict, sizes,
           refs: pd.DataFrame | None = None) -> list[protocol.Result]:
    """The paper's claims, each judged by :mod:`cgt.claims` on paired seeds (the same
    split, training images, initialisation and batch streams for both arms), every arm
    checked (:func:`arm_checks`), the quality rows beside what copying the training set
    earns (``refs``: :func:`references`), §5.2's collapse contrast on test coverage, the truncation trade-off on BSA's test scores at
    the two thresholds of :func:`sampling` (``sampled``), and Holm's correction across them."""
    rows = []
    headline = [m for m in sizes["headline"] if m != "bsa"]
    for name, methods in sizes["methods"].items():
        cell = grid[(grid.target == name) & (grid.shots == sizes["focus_shots"])]
        for other in headline:
            ran = [] if other in methods else [_ran(
                cell[cell.method == other], f"{LABELS[other]} on {name}",
                f"this profile's budget runs {LABELS[other]} on the other target only")]
            result = protocol.superiority(
                _claim("bsa-quality", f"At {sizes['focus_shots']} images ({name}) BSA beats "
                       f"{LABELS[other]}", "superiority", ("BSA", LABELS[other])),
                by_seed(cell, "bsa"), by_seed(cell, other),
                ran or arm_checks(cell, "bsa") + arm_checks(cell, other))
            if refs is not None and len(cell) and result.verdict != "untestable":
                result.ours += copy_note(cell, refs[refs.target == name], ("bsa", other))
            rows.append(result)
        if "transfergan" in methods:  # §5.2's contrast, on a measure of the samples' spread
            result = protocol.superiority(
                _claim("bsa-collapse", f"At {sizes['focus_shots']} images ({name}) BSA's samples "
                       "cover more of the test images than TransferGAN's, which collapse to a few "
                       "modes", "superiority", ("BSA", "TransferGAN"), "coverage (test split)", False),
                by_seed(cell, "bsa", "coverage"), by_seed(cell, "transfergan", "coverage"),
                arm_checks(cell, "bsa") + arm_checks(cell, "transfergan"))
            copies = refs[(refs.target == name) & (refs.method == "copy")] if refs is not None else []
            if len(copies) and result.verdict != "untestable":
                result.ours += f"; copying the training set covers {copies.coverage.mean():.3g}"
            rows.append(result)
    small, large = min(sizes["shots"]), max(sizes["shots"])
    for other in [m for m in sizes["size_methods"] if m != "bsa"]:
        ran = [_ran(by_size, "the size trend")] + [  # the arms are checked where they ran
            check for shots in (small, large) for m in ("bsa", other)
            for check in arm_checks(by_size, m, shots=shots)] * (len(by_size) > 0)
        rows.append(protocol.superiority(
            _claim("bsa-size-trend", f"{LABELS[other]} gains on BSA as the images grow from "
                   f"{small} to {large}", "superiority",
                   (f"BSA − {LABELS[other]} at {small}", f"at {large}"), "KID difference (test)"),
            _gap(by_size, other, small) if len(by_size) else {},
            _gap(by_size, other, large) if len(by_size) else {}, ran))
    pretrained = [x for x in sizes["sources"] if x != "random"]
    for source in pretrained if "random" in sizes["sources"] else []:
        ran = [_ran(sources, "the source comparison")]
        rows.append(protocol.superiority(
            _claim("bsa-source", f"A pretrained source ({source}) transfers better than a random "
                   "generator (BN statistics re-estimated on its own samples)", "superiority",
                   (source, "random")),
            by_seed(sources, "bsa", source=source), by_seed(sources, "bsa", source="random"),
            ran + (arm_checks(sources, "bsa", source=source)
                   + arm_checks(sources, "bsa", source="random")) * (len(sources) > 0)))
    rows += truncation_claims(grid, sampled, sizes)
    ours_d, all_d = disturbance["bsa"], disturbance.get("update-all")
    changed = f"; Update-all moves it by {all_d['max_abs_difference']:.3f}" if all_d else ""
    rows.append(protocol.exact(
        _claim("bsa-untouched", "Adding a domain leaves the source domain untouched (a test of "
               "the construction: no kernel is trained)", "exact",
               arms=("adapted, blended out", "source"), metric="max |Δ|"),
        ours_d["max_abs_difference"], 0.0,
        f"largest pixel change on source samples {ours_d['max_abs_difference']:.1e}{changed}"))
    return protocol.holm(rows)


@torch.no_grad()
def samples(method: str, t: Target, profile: str, n: int, seed: int = 1) -> np.ndarray:
    """``n`` samples of a finished run at the truncation chosen on validation."""
    saved = json.loads(record_path(CHAPTER, run_name(method, t), profile).read_text())
    threshold = (saved["metrics"].get("best") or {}).get("truncation")
    generator = load(method, t, profile)
    return generate(generator, n, classes=sampled_classes(generator), seed=seed,
                    truncation=threshold)[0]


def histories(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per evaluation of every run in ``frame`` (FID/KMMD against iteration)."""
    rows = [{"method": r.label, "target": r.target, "shots": r.shots, "source": r.source,
             "seed": r.seed, "iteration": h["iteration"], "kid": h.get("kid"), "fid": h.get("fid"),
             "kmmd": h.get("kmmd"), "truncation": h.get("truncation")}
            for r in frame.itertuples() for h in r.history if "fid" in h]
    return pd.DataFrame(rows)


def steps(profile: str, sizes) -> list[tuple[str, Callable[[], object]]]:
    """The calls of this chapter that make runs, in the chapter's order, as (title, call):
    what ``cgt plan`` runs.  A test holds them to the runs a built chapter made."""
    return [(title, lambda f=f: f(profile, sizes, progress=False))
            for title, f in (("comparison", comparison), ("dataset sizes", dataset_sizes),
                             ("source selection", source_selection))]
