"""Scoring a generator against real images: the call every chapter makes."""

from __future__ import annotations

import numpy as np
import torch

from .. import data
from .features import HEADS, class_probabilities, extract_features, feature_network_id
from .scores import (classifier_score, conditional_accuracy, fid_from_features, inception_features,
                     inception_path, kid_from_features, kmmd, real_statistics)


# Fixed before any run: samples whose per-pixel standard deviation across the sample set
# averages under 1 % of the uint8 range (2.55 levels) have stopped varying.  Real images of
# every dataset here vary by tens of levels per pixel.
COLLAPSE_STD = 2.55


def spread(images: np.ndarray) -> dict:
    """How much uint8 samples N×H×W×C vary across the set, and whether they have
    collapsed (a constant or near-constant output that a score must not rank)."""
    std = float(images.astype(np.float64).std(axis=0).mean())
    return {"sample_std": std, "collapsed": std < COLLAPSE_STD}


@torch.no_grad()
def generate(generator, n: int, classes=None, seed: int = 0, batch_size: int = 250,
             truncation: float | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """``n`` samples as uint8 N×H×W×C, labels cycling over ``classes`` (all by default)."""
    generator.eval()
    device = next(generator.parameters()).device
    rng = torch.Generator().manual_seed(seed)
    images, labels = [], []
    for start in range(0, n, batch_size):
        count = min(batch_size, n - start)
        z, y = generator.sample_inputs(count, classes, generator=rng, device=device,
                                       truncation=truncation, start=start)
        if y is not None:
            labels.append(y.cpu().numpy())
        images.append(data.to_uint8(generator(z, y)))
    return np.concatenate(images), (np.concatenate(labels) if labels else None)


def score_generator(generator, dataset: str, split: str = "train", classes=None,
                    n: int = 2000, tiny: bool = False, seed: int = 0,
                    head: str | None = None) -> dict:
    """FID, KID, KMMD, classifier score (our feature network) and conditional accuracy;
    also ``fid_inception`` when clean-fid's Inception weights are on disk.

    ``classes`` names the real classes that the generator's classes 0..C-1 stand
    for (in order); the real statistics use exactly those classes of ``dataset``.
    """
    names = classes or generator.cfg.class_names or None
    real = real_statistics(dataset, split, tiny, names)
    fake, labels = generate(generator, n, seed=seed)
    fake_features = extract_features(fake)
    result = {"fid": fid_from_features(real["features"].astype(np.float64), fake_features),
              **kid_from_features(real["features"].astype(np.float64), fake_features),
              "kmmd": kmmd(real["features"].astype(np.float64), fake_features),
              **spread(fake), "features": feature_network_id(), "n_fake": n, "n_real": len(real["features"]),
              "real": f"{dataset}/{split}{'/tiny' if tiny else ''}"}
    if inception_path() is not None:  # the standard feature space, when a user provides it
        inception_real = real_statistics(dataset, split, tiny, names, features="inception")
        result["fid_inception"] = fid_from_features(
            inception_real["features"].astype(np.float64), inception_features(fake))
    head = head or dataset
    if labels is not None and names and head not in HEADS:
        result["classifier"] = f"no classifier head for '{head}': no classifier score or accuracy"
    elif labels is not None and names:
        full = data.load(dataset, split, tiny=tiny).classes
        intended = np.array([full.index(names[c]) for c in labels])
        probabilities = class_probabilities(fake, head)
        accuracy = conditional_accuracy(probabilities.argmax(1), intended)
        result["conditional_accuracy"] = accuracy["mean"]
        result["classifier_score"] = classifier_score(probabilities)[0]
    return result
