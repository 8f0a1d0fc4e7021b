"""Foundations chapter: does the fast training path cost quality?

The same short training run of the ``fashion8`` recipe (narrower, no EMA) on the
naive path (fp32, NCHW) and on the fast path (bf16 autocast, channels-last), with
the same seeds; each result is scored in fp32, so only training differs.
"""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
import torch
from scipy import stats

from .. import metrics
from ..nn import Discriminator, Generator
from ..pretrain import RECIPES, training_data
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

    def work(record, folder):
        images = training_data(recipe, sizes["tiny"])
        cfg = replace(recipe.gan_config(images.channels), ch=p["ch"])
        torch.manual_seed(seed)
        generator, discriminator = Generator(cfg), Discriminator(cfg)
        train = replace(recipe.train, iterations=p["iterations"], batch_size=p["batch_size"],
                        seed=seed, precision=precision, ema_decay=None, device="cpu")
        result = train_gan(generator, discriminator, images.to_tensor(),
                           torch.from_numpy(images.labels), train, progress=progress)
        scores = metrics.score_generator(generator, recipe.dataset, "train", n=p["samples"],
                                         tiny=sizes["tiny"], seed=seed)
        record.metrics.update(fid=scores["fid"], kmmd=scores["kmmd"],
                              train_s_per_iteration=result.wall_time_s / p["iterations"])

    return run(RunSpec(CHAPTER, f"parity-{precision}-s{seed}", profile, config, seed,
                       code=COMPUTING_CODE + (__name__,)), work)


def parity(sizes, profile: str, progress: bool = True) -> pd.DataFrame:
    """One row per (path, seed)."""
    rows = []
    for path, precision in TRAINING_PATHS.items():
        for seed in sizes["parity"]["seeds"]:
            m = parity_run(precision, seed, sizes, profile, progress).metrics
            rows.append({"path": path, "seed": seed, "FID": m["fid"], "KMMD": m["kmmd"],
                         "s / iteration": m["train_s_per_iteration"]})
    return pd.DataFrame(rows)


def parity_summary(runs: pd.DataFrame) -> dict:
    """Mean and seed-to-seed SD of FID per path, the difference of the means, and
    Welch's t-test of it: the paths agree when the difference is within the noise
    (p ≥ 0.05)."""
    fid = {path: runs.loc[runs.path == path, "FID"].to_numpy() for path in TRAINING_PATHS}
    if fid["fast"].std() == fid["naive"].std() == 0:  # no seed noise at all: equal or not
        p_value = 1.0 if fid["fast"].mean() == fid["naive"].mean() else 0.0
    else:
        p_value = float(stats.ttest_ind(fid["fast"], fid["naive"], equal_var=False).pvalue)
    seconds = runs.groupby("path")["s / iteration"].median()
    return {**{path: {"mean": float(v.mean()), "sd": float(v.std(ddof=1))} for path, v in fid.items()},
            "difference": float(fid["fast"].mean() - fid["naive"].mean()),
            "p_value": p_value, "within_noise": p_value >= 0.05,
            "speedup": float(seconds["naive"] / seconds["fast"])}
