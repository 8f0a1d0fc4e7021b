"""The BSA chapter's experiments: Fig. 4–10 and §5.7 analogues on embedded data.

Targets (``TARGETS``): the scikit-image LFW faces (grey, the FFHQ analogue) adapted
from the shipped ``animals`` generator, and the Noto face emoji (colour, the anime
analogue) adapted from ``emoji-objects``, which never saw a face.  Every method
starts from the same source, sees the first ``shots`` images of the target and is
scored against *all* target images (the paper compares with the whole dataset).
Sizes come from ``cgt.profiles.SIZES["bsa"]``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
import torch

from .. import claims as protocol
from .. import atomic, data, planning
from ..data import to_uint8
from ..checkpoints import source_fingerprint
from ..methods import bsa
from ..methods.runner import TransferTask, run_transfer, shipped_source
from ..metrics import SCORING_SEED, ImageScoring, Scoring, extract_features, fid_from_features, generate, kmmd, real_statistics
from ..metrics.evaluate import sampled_classes
from ..nn import Generator
from ..pretrain import recipe
from ..runs import COMPUTING_CODE, RunRecord, RunSpec, load_run, run
from ..train import TrainConfig

CHAPTER = "bsa"
TARGETS = {"lfw": ("lfw", "animals"), "emoji": ("emoji_faces", "emoji-objects")}
TARGET_CLASS = "face"

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


@dataclass(frozen=True)
class Target:
    """Which images a method learns and which generator it starts from."""

    target: str
    shots: int
    source: str
    tiny: bool = False
    seed: int = 0

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


def target(name: str, shots: int, sizes, source: str | None = None) -> Target:
    return Target(name, shots, source or TARGETS[name][1], sizes["tiny"])


def training_set(t: Target) -> data.ImageSet:
    """The first ``shots`` images of the target (the official code takes the first 25/50/100):
    what every method of the chapter, same-loss or adversarial, trains on."""
    faces = data.select_classes(data.load(t.dataset, "train", tiny=t.tiny), [TARGET_CLASS])
    shots = planning.take(t.dataset, f"'{TARGET_CLASS}' images", t.shots, len(faces),
                          data.smallest_class(t.dataset, "train"))
    if shots > len(faces):
        raise ValueError(f"{t.dataset} has {len(faces)} '{TARGET_CLASS}' images; asked for {t.shots}")
    return faces.subset(np.arange(shots))


def training_images(t: Target) -> torch.Tensor:
    return training_set(t).to_tensor()


def reference_features(t: Target) -> np.ndarray:
    """Features of every target image: what every BSA-chapter score compares with."""
    return Scoring(t.dataset, "train", (TARGET_CLASS,), t.tiny).reference()


def scoring(t: Target, sizes, truncation: float | None = None) -> Scoring:
    """Samples against *all* target images (the paper compares with the whole dataset)."""
    return Scoring(t.dataset, "train", (TARGET_CLASS,), t.tiny, sizes["eval_samples"],
                   sizes["score_samples"], truncation)


def source_generator(name: str, seed: int = 0) -> Generator:
    """A shipped source, or ``random``: the animals architecture freshly initialised (Fig. 10)."""
    if name == "random":
        torch.manual_seed(seed)
        return Generator(shipped_source("animals")[0].cfg).eval()
    return shipped_source(name)[0]


# What a same-loss run computes from: nothing else of the chapter's sizes enters its key.
SUPERVISED_SIZES = ("iterations", "batch_size", "eval_every", "eval_samples", "score_samples",
                    "score_truncation", "lr_adapters", "lr_latents", "lr_body", "decay_at",
                    "warmup", "perceptual", "perceptual_weight")


def bsa_config(method: str, shots: int, seed: int, sizes) -> bsa.BSAConfig:
    lambdas = {"lambda_z": 0.0, "lambda_bn": 0.0} if method == "encoder" else {}
    return bsa.BSAConfig(iterations=sizes["iterations"], batch_size=min(sizes["batch_size"], shots),
                         lr_adapters=sizes["lr_adapters"], lr_latents=sizes["lr_latents"],
                         decay_every=int(sizes["iterations"] * sizes["decay_at"]),
                         also_train=SUPERVISED[method], lr_body=sizes["lr_body"], seed=seed,
                         warmup=sizes["warmup"], eval_every=sizes["eval_every"], **lambdas)


def fit_supervised(method: str, t: Target, sizes, profile: str, progress: bool = True) -> RunRecord:
    """One run of a same-loss method (ours, update-first/last/all, encoder-generator)
    on the target's first images, scored against all of them."""
    return adapt_images(method, t.source, training_set(t), sizes, seed=t.seed, profile=profile,
                        name=run_name(method, t), target=asdict(t),
                        scoring=scoring(t, sizes, sizes["score_truncation"]), progress=progress)


def adapt_images(method: str, source: str, given: data.ImageSet, sizes, *, seed: int, profile: str,
                 name: str, target: dict, scoring: Scoring | ImageScoring, home=None,
                 progress: bool = True) -> RunRecord:
    """One run of a same-loss method on the images of ``given`` from ``source``.

    ``target`` says in the config where the images come from; the config adds the
    ``source``, ``seed`` and ``shots`` that :func:`build_adapted` rebuilds from, and the
    images' digest.
    The run keeps the state with the best selection FID (the adversarial runs do the
    same) in ``best.pt`` beside its record and reports its fresh score.
    """
    if method not in SUPERVISED:
        raise ValueError(f"unknown supervised method '{method}'; valid: {', '.join(SUPERVISED)}")
    images = given.to_tensor()
    target = {**target, "source": source, "seed": seed, "shots": len(images), "images": given.digest()}
    config = {"method": method, "target": target, "sizes": {k: sizes[k] for k in SUPERVISED_SIZES},
              "perceptual_network": bsa.perceptual_choice(sizes["perceptual"]),
              "source": source_fingerprint(source) if source != "random" else "random"}
    spec = RunSpec(CHAPTER, name, profile, config, seed, builder=f"{__name__}:build_adapted",
                   scoring=scoring, code=COMPUTING_CODE + (__name__,),
                   home=None if home is None else str(home))

    def work(record: RunRecord, folder):
        model = bsa.AdaptedGenerator(source_generator(source, seed), len(images))
        encoder = bsa.Encoder(images.shape[1], model.cfg.dim_z) if method == "encoder" else None
        network, features = bsa.perceptual_features(sizes["perceptual"])
        weights = bsa.calibrated_weights(features, images, sizes["perceptual_weight"])
        select = spec.scoring.evaluator()
        resumed = (folder / "last.pt").exists() and (folder / "best.pt").exists()
        best = torch.load(folder / "best.pt", weights_only=True)["best"] if resumed else {"fid": np.inf}

        def evaluate(adapted, iteration):
            metrics = select(adapted, iteration)
            if not metrics["collapsed"] and metrics["fid"] < best["fid"]:
                best.update({k: float(v) for k, v in metrics.items()}, iteration=iteration)
                atomic.save_torch({"generator": adapted.state_dict(), "best": best,
                                   "encoder": encoder and encoder.state_dict()}, folder / "best.pt")
            return metrics

        history = bsa.fit_bsa(model, images, features, weights,
                              bsa_config(method, len(images), seed, sizes),
                              encoder=encoder, evaluate=evaluate, progress=progress,
                              checkpoint=folder / "last.pt")
        if not np.isfinite(best["fid"]):  # every evaluation collapsed: keep the last model, flagged
            best.update({k: float(v) for k, v in history[-1].items()})
            atomic.save_torch({"generator": model.state_dict(), "best": best,
                               "encoder": encoder and encoder.state_dict()}, folder / "best.pt")
        (folder / "last.pt").unlink(missing_ok=True)  # only an interrupted run needs it
        record.metrics.update(history=history, perceptual=network, layer_weights=weights,
                              best={k: float(v) for k, v in best.items()},
                              trainable_g=trainable_count(model, method, encoder),
                              train_images=len(images))

    return run(spec, work)


def build_adapted(config: dict) -> bsa.AdaptedGenerator:
    """The untrained model of a same-loss run's config (for :func:`cgt.runs.load_run`)."""
    t = config["target"]
    return bsa.AdaptedGenerator(source_generator(t["source"], t["seed"]), t["shots"])


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
    images as the same-loss methods and scored as they are."""
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


def row(method: str, t: Target, record: RunRecord) -> dict:
    """A table row: the fresh score of the chosen checkpoint, and the selection FID."""
    score, status = record.reported_score()
    best = record.metrics.get("best") or {}
    return {"method": method, "label": LABELS[method], "target": t.target, "shots": t.shots,
            "source": t.source, "fid": score.get("fid", np.nan), "kid": score.get("kid", np.nan),
            "kid_std": score.get("kid_std", np.nan), "kmmd": score.get("kmmd", np.nan),
            "selection_fid": best.get("fid", np.nan) if score else np.nan,
            "best_iteration": best.get("iteration", np.nan), "status": status,
            "trainable_g": record.metrics.get("trainable_g"), "wall_s": record.wall_time_s,
            "history": record.metrics.get("history", [])}


def comparison(profile: str, sizes, progress: bool = True) -> pd.DataFrame:
    """Fig. 4: every method on ``sizes["focus_shots"]`` images of each target."""
    rows = []
    for name, methods in sizes["methods"].items():
        t = target(name, sizes["focus_shots"], sizes)
        for method in methods:
            rows.append(row(method, t, fit(method, t, sizes, profile, progress)))
    return pd.DataFrame(rows)


def dataset_sizes(profile: str, sizes, progress: bool = True) -> pd.DataFrame:
    """Fig. 8/9: ours, TransferGAN and update-all as the number of images grows."""
    rows = []
    for shots in sizes["shots"]:
        t = target("lfw", shots, sizes)
        for method in sizes["size_methods"]:
            rows.append(row(method, t, fit(method, t, sizes, profile, progress)))
    return pd.DataFrame(rows)


def source_selection(profile: str, sizes, progress: bool = True) -> pd.DataFrame:
    """Fig. 10: ours on the LFW faces from a random generator and from each grey source."""
    rows = []
    for source in sizes["sources"]:
        t = target("lfw", sizes["focus_shots"], sizes, source=source)
        rows.append(row("bsa", t, fit("bsa", t, sizes, profile, progress)))
    return pd.DataFrame(rows)


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


def _claim(key: str, text: str, kind: str, arms=("BSA", "strongest other method"),
           metric: str = "FID") -> protocol.Claim:
    return protocol.Claim(CHAPTER, key, text, kind, metric, arms)


def _against_strongest(cell: pd.DataFrame, ours: str = "bsa") -> tuple[float, float, str]:
    """FID of ``ours`` and of the best other method in one unit, and that method's label."""
    cell = cell.set_index("method")
    if ours not in cell.index:
        return np.nan, np.nan, "—"
    others = cell.drop(index=ours).fid
    if others.notna().any():
        strongest = others.idxmin()
        return cell.loc[ours, "fid"], others[strongest], str(cell.loc[strongest, "label"])
    return cell.loc[ours, "fid"], np.nan, "—"


def claims(grid: pd.DataFrame, by_size: pd.DataFrame, sources: pd.DataFrame, sweep: pd.DataFrame,
           disturbance: dict) -> list[protocol.Result]:
    """The paper's claims, each judged by :mod:`cgt.claims`; each comparison is against
    the strongest other method of its unit (the hardest test of "beats every other")."""
    rows = []
    for name, cell in grid.groupby("target", sort=False):
        ours, other, label = _against_strongest(cell)
        shots = int(cell[cell.method == "bsa"].shots.iloc[0])
        rows.append(protocol.superiority(
            _claim("bsa-quality", f"At {shots} images ({name}) BSA beats every other method in "
                   f"FID (strongest: {label})", "superiority"), {name: ours}, {name: other}))
    units = {f"{shots} images": _against_strongest(cell) for shots, cell in by_size.groupby("shots")
             if "bsa" in set(cell.method) and cell.method.nunique() > 1}
    rows.append(protocol.superiority(
        _claim("bsa-size", "With few images (≤ 100) BSA beats TransferGAN and Update-all "
               f"(paired over {', '.join(units)})", "superiority"),
        {k: v[0] for k, v in units.items()}, {k: v[1] for k, v in units.items()}))
    ordered = sweep.sort_values("truncation")
    rises = bool(np.all(np.diff(ordered.diversity) > 0))
    measured = protocol.Precondition("a diversity at two thresholds or more",
                                     int(ordered.diversity.notna().sum()) >= 2)
    rows.append(protocol.exact(
        _claim("bsa-truncation", "A larger truncation threshold gives more diversity", "exact",
               arms=("threshold", "diversity"), metric="diversity rises"), rises, True,
        "diversity at ±" + ", ±".join(f"{t:g}: {d:.3f}" for t, d in
                                      zip(ordered.truncation, ordered.diversity)), [measured]))
    indexed = sources.set_index("source")
    if "random" in indexed.index:
        pretrained = indexed.drop(index="random").fid
        weakest = pretrained.idxmax() if len(pretrained) and pretrained.notna().all() else None
        rows.append(protocol.superiority(
            _claim("bsa-source", "A pretrained source transfers better than a random generator "
                   f"(the weakest pretrained: {weakest or '—'})", "superiority",
                   arms=("weakest pretrained source", "random")),
            {"Fig. 10 runs": np.nan if weakest is None else pretrained[weakest]},
            {"Fig. 10 runs": indexed.loc["random", "fid"]}))
    ours_d, all_d = disturbance["bsa"], disturbance.get("update-all")
    changed = f"; Update-all moves it by {all_d['max_abs_difference']:.3f}" if all_d else ""
    rows.append(protocol.exact(
        _claim("bsa-untouched", "Adding a domain leaves the source domain untouched", "exact",
               arms=("adapted, blended out", "source"), metric="max |Δ|"),
        ours_d["max_abs_difference"], 0.0,
        f"largest pixel change on source samples {ours_d['max_abs_difference']:.1e}{changed}"))
    return rows


@torch.no_grad()
def samples(method: str, t: Target, profile: str, n: int, truncation: float | None,
            seed: int = 1) -> np.ndarray:
    """``n`` samples of a finished run: same-loss methods from the truncated normal
    (as BSA samples), adversarial ones from N(0, I) as they were trained and scored."""
    generator = load(method, t, profile)
    if method in SUPERVISED:
        return generate(generator, n, seed=seed, truncation=truncation)[0]
    return generate(generator, n, classes=sampled_classes(generator), seed=seed)[0]


def histories(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per evaluation of every run in ``frame`` (FID/KMMD against iteration)."""
    rows = [{"method": r.label, "target": r.target, "shots": r.shots, "source": r.source,
             "iteration": h["iteration"], "fid": h.get("fid"), "kmmd": h.get("kmmd")}
            for r in frame.itertuples() for h in r.history if "fid" in h]
    return pd.DataFrame(rows)


def held_out_scores(method: str, t: Target, profile: str, samples_: int, truncation: float | None) -> dict:
    """FID and KMMD against only the target images the run did *not* train on: a
    generator that memorises its training images gains nothing here.  Sampled like the
    fresh score (``SCORING_SEED``), never like the evaluations that chose the checkpoint."""
    faces = data.select_classes(data.load(t.dataset, "train", tiny=t.tiny), [TARGET_CLASS])
    if len(faces) - t.shots < 2:
        return {"held_out_fid": np.nan, "held_out_kmmd": np.nan, "held_out_images": len(faces) - t.shots}
    real = extract_features(faces.images[t.shots:]).astype(np.float64)
    fake = extract_features(samples(method, t, profile, samples_, truncation, seed=SCORING_SEED))
    return {"held_out_fid": fid_from_features(real, fake), "held_out_kmmd": kmmd(real, fake),
            "held_out_images": len(real)}
