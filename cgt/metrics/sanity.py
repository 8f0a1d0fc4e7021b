"""Controlled degradations of real images, for checking that a metric behaves."""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F

from .features import extract_features
from .scores import fid_from_features, kmmd


def gaussian_blur(images: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur of uint8 N×H×W×C images (reflect padding)."""
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float()
    channels = x.shape[1]
    radius = int(3 * sigma) + 1
    t = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-t ** 2 / (2 * sigma ** 2))
    kernel = (kernel / kernel.sum()).repeat(channels, 1)
    x = F.conv2d(F.pad(x, (radius, radius, 0, 0), mode="reflect"),
                 kernel.view(channels, 1, 1, -1), groups=channels)
    x = F.conv2d(F.pad(x, (0, 0, radius, radius), mode="reflect"),
                 kernel.view(channels, 1, -1, 1), groups=channels)
    return x.round().clamp(0, 255).byte().permute(0, 2, 3, 1).numpy()


def add_noise(images: np.ndarray, std: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(images + rng.normal(0, std, images.shape), 0, 255).astype(np.uint8)


def shuffle_pixels(images: np.ndarray, seed: int = 0) -> np.ndarray:
    """Each image's pixels in a random order: same histogram, no structure."""
    rng = np.random.default_rng(seed)
    flat = images.reshape(len(images), -1, images.shape[-1])
    return np.stack([row[rng.permutation(len(row))] for row in flat]).reshape(images.shape)


def degradation_curves(images: np.ndarray, blur_sigmas, noise_stds) -> dict:
    """FID and KMMD between one half of ``images`` and the other half, degraded."""
    reference = extract_features(images[::2])
    target = images[1::2]
    rows = {"real vs real": target}
    rows.update({f"blur σ={s}": gaussian_blur(target, s) for s in blur_sigmas})
    rows.update({f"noise σ={s}": add_noise(target, s) for s in noise_stds})
    rows["shuffled pixels"] = shuffle_pixels(target)
    rows["uniform noise"] = np.random.default_rng(0).integers(0, 256, target.shape, dtype=np.uint8)
    out = {}
    for name, x in rows.items():
        features = extract_features(x)
        out[name] = {"fid": fid_from_features(reference, features), "kmmd": kmmd(reference, features)}
    return out
