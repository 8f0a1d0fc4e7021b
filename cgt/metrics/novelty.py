"""Measures that copying the training images cannot win, from feature vectors.

A test-set FID or KID compares samples with held-out real images; a "generator" that
returns its own training images is drawn from the same distribution as those, so on a
few dozen images it scores as well as any method or better.  These measures look at
the training images too:

* the **memorisation ratio**: how far samples lie from their nearest training image,
  over how far held-out real images lie from theirs (mean Euclidean distances in the
  feature space).  Held-out images score 1 by construction; a copy of the training
  set scores 0; a generator that renders near-copies scores well below 1.
* the **share of samples nearer a training image than any held-out image is**
  (Update-all at 25 images put most of its samples there).
* the **training images used as nearest neighbours**: a generator that covers few
  modes sends most samples to a handful of them.
* **density and coverage** (Naeem et al., 2020) against held-out images: coverage is
  the share of held-out images whose k-nearest-neighbour ball (among held-out
  images) holds a sample; density counts samples inside those balls, 1 on average
  for samples from the real distribution.
"""

from __future__ import annotations

import numpy as np
import torch

# The neighbourhood of density and coverage: Naeem et al.'s default.
NEIGHBOURS = 5


def _distances(queries: np.ndarray, references: np.ndarray) -> torch.Tensor:
    q = torch.from_numpy(np.asarray(queries, np.float64))
    r = torch.from_numpy(np.asarray(references, np.float64))
    return torch.cdist(q, r)


def nearest_distances(queries: np.ndarray, references: np.ndarray) -> np.ndarray:
    """Each query's distance to its nearest reference vector."""
    return _distances(queries, references).min(dim=1).values.numpy()


def memorisation_ratio(samples: np.ndarray, training: np.ndarray, held_out: np.ndarray) -> float:
    """Mean distance sample → nearest training image over mean distance held-out
    image → nearest training image (1: as novel as new real images; 0: copies)."""
    return float(nearest_distances(samples, training).mean()
                 / nearest_distances(held_out, training).mean())


def nearer_than_held_out(samples: np.ndarray, training: np.ndarray, held_out: np.ndarray) -> float:
    """The share of samples closer to a training image than any held-out image is."""
    closest_real = nearest_distances(held_out, training).min()
    return float((nearest_distances(samples, training) < closest_real).mean())


def training_neighbours(samples: np.ndarray, training: np.ndarray) -> int:
    """How many distinct training images are some sample's nearest training image."""
    return int(np.unique(_distances(samples, training).argmin(dim=1).numpy()).size)


def density_coverage(real: np.ndarray, fake: np.ndarray, k: int = NEIGHBOURS) -> dict:
    """Density and coverage of ``fake`` against ``real`` (Naeem et al., 2020, Eq. 3 and 4),
    each real vector's ball reaching its k-th nearest other real vector."""
    if len(real) <= k:
        raise ValueError(f"density and coverage with k={k} need more than {k} real vectors, "
                         f"got {len(real)}")
    within = _distances(real, real)
    radius = within.kthvalue(k + 1, dim=1).values  # the 0 to itself is the first
    inside = _distances(real, fake) < radius[:, None]  # real × fake
    return {"density": float(inside.sum() / (k * len(fake))),
            "coverage": float(inside.any(dim=1).double().mean())}


def novelty(samples: np.ndarray, training: np.ndarray, held_out: np.ndarray,
            k: int = NEIGHBOURS) -> dict:
    """Every measure above for one set of sample features (density and coverage against
    the held-out images, with ``k`` cut to one fewer than they are where they are few;
    the ``k`` used is returned)."""
    if len(held_out) < 2:
        raise ValueError(f"novelty needs at least 2 held-out images, got {len(held_out)}")
    k = min(k, len(held_out) - 1)  # a few held-out images hold fewer neighbours
    return {"memorisation_ratio": memorisation_ratio(samples, training, held_out),
            "nearer_than_held_out": nearer_than_held_out(samples, training, held_out),
            "training_neighbours": training_neighbours(samples, training),
            "training_images": len(training), "neighbours_k": k,
            **density_coverage(held_out, samples, k)}
