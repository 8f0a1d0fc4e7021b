"""Foundations chapter: does the fast training path cost quality?

The same short training run of the ``fashion8`` recipe (narrower, no EMA) on the
naive path (fp32, NCHW) and on the fast path (bf16 autocast, channels-last), with
the same seeds; each result is scored in fp32, so only training differs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pandas as pd
import torch
from .. import claims as protocol
from .. import metrics
from ..nn import Discriminator, Generator
from ..pretrain import RECIPES, source_models, training_data
from ..runs import COMPUTING_CODE, RunRecord, RunSpec, run
from ..train import train_gan

CHAPTER = "foundations"
TRAINING_PATHS = {"naive": "fp32", "fast": "bf16"}  # fp32 NCHW; bf16 autocast, channels-last


def parity_run(precision: str, seed: int, sizes, profile: str, progress: bool = True) -> RunRecord:
    """One short ``fashion8`` run on one path; FID/KMMD of its generator against the
    real training images of the 8 classes."""
    p = sizes["parity"]
    recipe = RECIPES["fashion8"]
    config = {"recipe": "fashion8", "precision": precision, "tiny": sizes["tiny"], **p}

    def train(record, folder):
        images = training_data(recipe, sizes["tiny"])
        cfg = replace(recipe.gan_config(images.channels), ch=p["ch"])
        torch.manual_seed(seed)
        generator, discriminator = Generator(cfg), Discriminator(cfg)
        train = replace(recipe.train, iterations=p["iterations"], batch_size=p["batch_size"],
                        seed=seed, precision=precision, ema_decay=None, device="cpu")
        result = train_gan(generator, discriminator, images.to_tensor(),
                           torch.from_numpy(images.labels), train, progress=progress)
        scores = metrics.score_generator(generator, recipe.dataset, "train", n=p["samples"],
                                         tiny=sizes["tiny"], seed=seed, precision="fp32")
        record.metrics.update(fid=scores["fid"], kmmd=scores["kmmd"],
                              train_s_per_iteration=result.wall_time_s / p["iterations"])
        return None  # scored here, once: the run keeps no model

    return run(RunSpec(CHAPTER, f"parity-{precision}-s{seed}", profile, config, seed,
                       code=COMPUTING_CODE + (__name__,)), train)


def parity(sizes, profile: str, progress: bool = True) -> pd.DataFrame:
    """One row per (path, seed)."""
    rows = []
    for path, precision in TRAINING_PATHS.items():
        for seed in sizes["parity"]["seeds"]:
            m = parity_run(precision, seed, sizes, profile, progress).metrics
            rows.append({"path": path, "seed": seed, "FID": m["fid"], "KMMD": m["kmmd"],
                         "s / iteration": m["train_s_per_iteration"]})
    return pd.DataFrame(rows)


# Fixed before the runs: the fast path "learns as well" when its FID is within ±10 % of
# the naive path's, seed by seed (the same seed gives both paths the same init and batches).
PARITY_MARGIN = 0.10


def parity_summary(runs: pd.DataFrame) -> dict:
    """Mean and seed-to-seed SD of FID per path, the difference of the means, and the
    training speed-up of the fast path (descriptive; the verdict is :func:`parity_claim`)."""
    fid = {path: runs.loc[runs.path == path, "FID"].to_numpy() for path in TRAINING_PATHS}
    seconds = runs.groupby("path")["s / iteration"].median()
    return {**{path: {"mean": float(v.mean()), "sd": float(v.std(ddof=1))} for path, v in fid.items()},
            "difference": float(fid["fast"].mean() - fid["naive"].mean()),
            "speedup": float(seconds["naive"] / seconds["fast"])}


def parity_claim(runs: pd.DataFrame) -> protocol.Result:
    """The fast path's FID equivalent to the naive path's within ±``PARITY_MARGIN``,
    paired by seed (TOST in :mod:`cgt.claims`)."""
    by_seed = {path: {int(r.seed): float(r.FID) for r in runs[runs.path == path].itertuples()}
               for path in TRAINING_PATHS}
    claim = protocol.Claim(CHAPTER, "foundations-fast-path", "The fast path (bf16 autocast, "
                           f"channels-last) learns as well as fp32: FID within ±{PARITY_MARGIN:.0%}",
                           "equivalence", "FID", ("fast path", "naive path"), margin=PARITY_MARGIN)
    return protocol.equivalence(claim, by_seed["fast"], by_seed["naive"])


def steps(profile: str, sizes) -> list[tuple[str, Callable[[], object]]]:
    """The calls of this chapter that make runs, in the chapter's order, as (title, call):
    what ``cgt plan`` runs.  A test holds them to the runs a built chapter made."""
    return [("source models", lambda: source_models(sizes["retrain_iterations"], progress=False)),
            ("parity", lambda: parity(sizes, profile, progress=False))]
