"""FID, KID, KMMD, the classifier score and conditional accuracy, from features.

FID goes through clean-fid's own function, KID through the same estimator with its
subset spread (:func:`kid_subsets`, checked against clean-fid's); KMMD follows the definition of
the cGANTransfer/BSA evaluation code (REFERENCE.md §1).  Real-image statistics
are cached per dataset, split, data variant and feature network.
"""

from __future__ import annotations

import hashlib
import tempfile
import warnings
from pathlib import Path

import numpy as np
from cleanfid import fid as clean_fid
from scipy import linalg

from .. import atomic, data, paths, planning
from ..data.real import REAL_DATASETS, real_fingerprint
from .features import extract_features, feature_network_id


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """‖μ₁ − μ₂‖² + Tr(Σ₁ + Σ₂ − 2(Σ₁Σ₂)^½) (clean-fid's implementation)."""
    with warnings.catch_warnings():
        # clean-fid passes scipy's deprecated `disp` argument; and a few feature dimensions
        # that never fire make Σ singular, which sqrtm reports but handles
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        return float(clean_fid.frechet_distance(mu1, sigma1, mu2, sigma2))


def moments(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return features.mean(0), np.cov(features, rowvar=False)


def fid_from_features(real: np.ndarray, fake: np.ndarray) -> float:
    return frechet_distance(*moments(real), *moments(fake))


def kid_subsets(real: np.ndarray, fake: np.ndarray, seed: int = 0, num_subsets: int = 100,
                max_subset_size: int = 1000) -> np.ndarray:
    """KID per random subset pair: the unbiased MMD² with the cubic polynomial kernel
    k(x, y) = (x·y / d + 1)³, the subsets drawn exactly as clean-fid's ``kernel_distance``
    draws them (whose value is the mean of these; clean-fid returns no spread)."""
    d, m = real.shape[1], min(len(real), len(fake), max_subset_size)
    draw = np.random.RandomState(seed)  # the legacy stream, as np.random.seed gives clean-fid
    values = np.empty(num_subsets)
    for i in range(num_subsets):
        x = fake[draw.choice(len(fake), m, replace=False)]
        y = real[draw.choice(len(real), m, replace=False)]
        within = (x @ x.T / d + 1) ** 3 + (y @ y.T / d + 1) ** 3
        across = (x @ y.T / d + 1) ** 3
        values[i] = ((within.sum() - np.diag(within).sum()) / (m - 1) - across.sum() * 2 / m) / m
    return values


def kid_from_features(real: np.ndarray, fake: np.ndarray, seed: int = 0,
                      num_subsets: int = 100, max_subset_size: int = 1000) -> dict:
    """KID (the mean over subsets, = clean-fid's) and its subset standard deviation."""
    values = kid_subsets(real, fake, seed, num_subsets, max_subset_size)
    return {"kid": float(values.mean()), "kid_std": float(values.std(ddof=1))}


def _squared_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.maximum((a * a).sum(1)[:, None] + (b * b).sum(1)[None] - 2 * a @ b.T, 0.0)


def kmmd(real: np.ndarray, fake: np.ndarray, sigma: float = 1.0, max_samples: int = 2000,
         seed: int = 0) -> float:
    """Kernel MMD with a Gaussian kernel, as BSA/cGANTransfer report it (biased estimate).

    Squared distances are divided by the mean squared distance among the real
    features (so σ = 1 is meaningful for any feature scale); then
    K = exp(−d² / 2σ²) and KMMD = sqrt(mean K_xx + mean K_yy − 2 mean K_xy).
    Each set is subsampled (seeded) to ``max_samples``: the kernel matrices are
    quadratic in memory.
    """
    rng = np.random.default_rng(seed)
    if len(real) > max_samples:
        real = real[rng.choice(len(real), max_samples, replace=False)]
    if len(fake) > max_samples:
        fake = fake[rng.choice(len(fake), max_samples, replace=False)]
    xx, yy, xy = (_squared_distances(real, real), _squared_distances(fake, fake),
                  _squared_distances(real, fake))
    scale = xx.mean()
    kxx, kyy, kxy = (np.exp(-d / scale / (2 * sigma ** 2)) for d in (xx, yy, xy))
    return float(np.sqrt(max(kxx.mean() + kyy.mean() - 2 * kxy.mean(), 0.0)))


def classifier_score(probabilities: np.ndarray, splits: int = 10) -> tuple[float, float]:
    """The Inception Score formula, exp E_x KL(p(y|x) ‖ p(y)), with our classifier's
    probabilities; mean and std over ``splits`` folds (fewer when there are fewer
    samples than folds, so that no fold is empty)."""
    scores = []
    for part in np.array_split(probabilities, min(splits, len(probabilities))):
        marginal = part.mean(0, keepdims=True)
        kl = (part * (np.log(part + 1e-12) - np.log(marginal + 1e-12))).sum(1).mean()
        scores.append(np.exp(kl))
    return float(np.mean(scores)), float(np.std(scores))


def conditional_accuracy(predicted: np.ndarray, intended: np.ndarray) -> dict:
    """Share of images generated for class c that the classifier assigns to c."""
    predicted, intended = np.asarray(predicted), np.asarray(intended)
    per_class = {int(c): float((predicted[intended == c] == c).mean()) for c in np.unique(intended)}
    return {"mean": float(np.mean(list(per_class.values()))), "per_class": per_class}


def real_statistics(dataset: str, split: str = "test", tiny: bool = False,
                    classes=None, features: str = "cgt") -> dict:
    """Features, μ and Σ of real images, cached under the data cache per feature network.

    ``features`` is ``"cgt"`` (the project's feature network) or ``"inception"``
    (clean-fid's Inception, when its weights are on disk).
    """
    if features not in ("cgt", "inception"):
        raise ValueError(f"unknown feature space '{features}'; valid: cgt, inception")
    extract = extract_features if features == "cgt" else inception_features
    space = feature_network_id() if features == "cgt" else "inception-2015-12-05"
    selection = "all" if classes is None else hashlib.sha256("\n".join(classes).encode()).hexdigest()[:10]
    origin = f"@{real_fingerprint(dataset)}" if dataset in REAL_DATASETS else ""  # files on disk
    key = f"{dataset}{origin}-{split}-{'tiny' if tiny else 'full'}-{selection}-{space}"
    file = paths.data_cache() / "stats" / f"{key}.npz"
    if file.exists():
        with np.load(file) as cached:
            return {k: cached[k] for k in cached.files}
    images = data.load(dataset, split, tiny=tiny)
    if classes is not None:
        images = data.select_classes(images, classes)
    if len(images) == 0:
        raise ValueError(f"no real images of {dataset}/{split}{' (tiny)' if tiny else ''} for "
                         f"classes {classes}: nothing to compare with")
    used = planning.reference_images(len(images))
    vectors = planning.memo(("reference", key), lambda: extract(images.images[:used]))
    mu, sigma = moments(vectors)
    if planning.active():  # what a plan featurises (clipped, or a dry run's data) is not cached
        return {"features": vectors.astype(np.float32), "mu": mu, "sigma": sigma}
    with atomic.replacing(file, suffix=".tmp.npz") as tmp:
        np.savez(tmp, features=vectors.astype(np.float32), mu=mu, sigma=sigma)
    return {"features": vectors.astype(np.float32), "mu": mu, "sigma": sigma}


INCEPTION_FILE = "inception-2015-12-05.pt"


def inception_path() -> Path | None:
    """clean-fid's Inception TorchScript file, if a user placed it on disk.

    Put ``inception-2015-12-05.pt`` in the system temp folder (where clean-fid
    looks) or in ``data/models/``; nothing is ever downloaded.
    """
    for folder in (Path(tempfile.gettempdir()), paths.home() / "data" / "models"):
        if (folder / INCEPTION_FILE).exists():
            return folder / INCEPTION_FILE
    return None


def inception_features(images, device="cpu", batch_size: int = 50) -> np.ndarray:
    """Standard clean-fid Inception pool features (only when its weights are on disk)."""
    import torch
    from cleanfid.inception_torchscript import InceptionV3W

    from .features import to_input

    path = inception_path()
    if path is None:
        raise FileNotFoundError(
            f"clean-fid's Inception weights are not on disk: put {INCEPTION_FILE} in "
            f"{tempfile.gettempdir()} or data/models/ (nothing is downloaded here)")
    model = InceptionV3W(str(path.parent), download=False, resize_inside=False).to(device).eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(images), batch_size):
            x = to_input(images[i:i + batch_size], size=299)  # bilinear, like clean-fid's resize
            out.append(model((x + 1) * 127.5).cpu().double())
    return torch.cat(out).numpy()
