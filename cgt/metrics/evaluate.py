"""Scoring a generator against real images: the one evaluator of every chapter.

A run is scored twice over (:class:`Scoring`): during training, evaluations on a
fixed z stream (``SELECTION_SEED``) choose the checkpoint; afterwards that
checkpoint alone is scored afresh with more samples on another z stream
(``SCORING_SEED``), and only that fresh score is reported.  Choosing on the
numbers one reports would favour whichever run's noise happened to be lucky.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable, Protocol, runtime_checkable

import numpy as np
import torch
from torch.nn import functional as F

from .. import data, planning
from ..machine import fast_autocast
from .features import HEADS, extract_features, feature_network_id, head_probabilities
from .novelty import novelty
from .scores import (classifier_score, conditional_accuracy, fid_from_features, inception_features,
                     inception_path, kid_from_features, kmmd, real_statistics)


# Fixed before any run: samples whose per-pixel standard deviation across the sample set
# averages under 1 % of the uint8 range (2.55 levels) have stopped varying.  Real images of
# every dataset here vary by tens of levels per pixel.
COLLAPSE_STD = 2.55
SELECTION_SEED = 12345  # the z stream of evaluations that choose a checkpoint
SCORING_SEED = 54321  # the z stream of the fresh score of the chosen one: never used to choose
# Evaluations sample in batches of 50 on every device: on a 2-core CPU a small generator
# samples faster so than in batches of 250 (the activations stay in cache), and one
# batching on every device keeps the truncated z stream (resampled per batch) the same.
SAMPLING_BATCH = 50


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


def at_32px(images: np.ndarray) -> np.ndarray:
    """uint8 N×H×W×C images area-downsampled to 32×32 (the feature network's size)."""
    if images.shape[1] == 32:
        return images
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float()
    x = F.adaptive_avg_pool2d(x, 32)
    return x.round().clamp(0, 255).byte().permute(0, 2, 3, 1).numpy()


def sampled_classes(generator):
    """The labels a generator is scored on: its new classes after a class extension,
    else all of its classes (None)."""
    new = getattr(generator, "new_classes", None)
    return list(new) if new is not None else None


def sample_features(generator, n: int, seed: int, truncation: float | None = None,
                    precision: str = "auto"):
    """(uint8 samples, labels, features) of ``n`` samples of :func:`sampled_classes`.

    The global RNG is seeded inside a fork: generators that draw extra inputs from
    it (CTF's low-quality pool) then draw the same ones every time, and training
    continues as if nothing had been sampled.  ``precision`` is the training loop's
    switch: ``auto`` samples as the run trained, ``fp32`` forces full precision.
    """
    device = next(generator.parameters()).device
    n = planning.samples(n, generator.cfg.resolution)
    classes = sampled_classes(generator)

    def draw():
        with torch.random.fork_rng(), fast_autocast(device, precision):
            torch.manual_seed(seed)
            fake, labels = generate(generator, n, classes=classes, seed=seed,
                                    truncation=truncation, batch_size=SAMPLING_BATCH)
        return fake, labels, extract_features(at_32px(fake))

    return planning.sampled(n, generator, draw, tuple(classes or ()), truncation, precision)


def distances(real: np.ndarray, fake: np.ndarray, fake_features: np.ndarray,
              kid: bool = True) -> dict:
    """FID, KID (with its subset SD), KMMD of the features, and the samples' spread.

    :class:`Scoring` and :class:`ImageScoring` evaluations pass ``kid=False``: they
    choose by FID alone, and KID's 100 subset pairs of up to 1,000 samples cost most of
    an evaluation's time on a CPU (:class:`SplitScoring` chooses by KID, whose subsets
    are as small as its few validation images)."""
    if planning.active():  # a plan measures the sampling and never reads these numbers,
        # which cost most of a planned step for 2048-d features of every reference image
        real, fake_features = real[:planning.REFERENCE, :16], fake_features[:, :16]
    return {"fid": fid_from_features(real, fake_features),
            **(kid_from_features(real, fake_features) if kid else {}),
            "kmmd": kmmd(real, fake_features), **spread(fake)}


def score_generator(generator, dataset: str, split: str = "train", classes=None,
                    n: int = 2000, tiny: bool = False, seed: int = 0,
                    head: str | None = None, truncation: float | None = None,
                    precision: str = "auto", restrict_head: bool = False,
                    score_splits: int = 10, kid: bool = True) -> dict:
    """FID, KID, KMMD, classifier score (our feature network) and conditional accuracy
    (:func:`class_scores`); also ``fid_inception`` when clean-fid's Inception weights are
    on disk.

    ``classes`` names the real classes that the sampled classes stand for, in order
    (the generator's classes 0..C-1, or its new classes after an extension); the
    real statistics use exactly those classes of ``dataset``.
    """
    names = list(classes or generator.cfg.class_names or []) or None
    real = real_statistics(dataset, split, tiny, names)["features"].astype(np.float64)
    fake, labels, fake_features = sample_features(generator, n, seed, truncation, precision)
    result = {**distances(real, fake, fake_features, kid), "features": feature_network_id(),
              "n_fake": n, "n_real": len(real), "seed": seed,
              "real": f"{dataset}/{split}{'/tiny' if tiny else ''}"}
    if inception_path() is not None:  # the standard feature space, when a user provides it
        inception_real = real_statistics(dataset, split, tiny, names, features="inception")
        result["fid_inception"] = fid_from_features(
            inception_real["features"].astype(np.float64), inception_features(fake))
    if labels is not None and names:
        result.update(class_scores(generator, fake_features, labels, dataset, split, tiny, names,
                                   head or dataset, restrict_head, score_splits))
    return result


@functools.lru_cache(maxsize=None)
def class_names(dataset: str, split: str, tiny: bool) -> list:
    """The classes of a built dataset, read once per process (every evaluation asks)."""
    return list(data.load(dataset, split, tiny=tiny).classes)


def class_scores(generator, features: np.ndarray, labels: np.ndarray, dataset: str, split: str,
                 tiny: bool, names: list, head: str, restrict_head: bool = False,
                 score_splits: int = 10) -> dict:
    """Conditional accuracy and classifier score of samples (their ``features``) drawn for ``labels``
    (standing for the real classes ``names``) under classifier ``head``.

    ``restrict_head`` keeps only the head's outputs of ``names`` (renormalised), so that
    chance is 1 / len(names) and the classifier score is at most len(names);
    ``score_splits`` folds of the Inception-Score formula (1: all samples at once)."""
    if head not in HEADS:
        return {"classifier": f"no classifier head for '{head}': no classifier score or accuracy"}
    full = class_names(dataset, split, tiny)
    order = sampled_classes(generator) or list(range(generator.cfg.num_classes))
    columns = [full.index(name) for name in names] if restrict_head else list(range(HEADS[head]))
    intended = np.array([columns.index(full.index(names[order.index(int(c))])) for c in labels])
    probabilities = head_probabilities(features, head)[:, columns]
    probabilities /= probabilities.sum(1, keepdims=True)
    return {"conditional_accuracy": conditional_accuracy(probabilities.argmax(1), intended)["mean"],
            "classifier_score": classifier_score(probabilities, score_splits)[0],
            "chance_accuracy": 1 / len(columns)}


@runtime_checkable
class RunScoring(Protocol):
    """What the run layer asks of a scoring (:class:`Scoring`, :class:`ImageScoring`,
    :class:`SplitScoring`), a frozen dataclass whose fields enter the run key."""

    select_by: str  # the measure, lower is better, by which a run keeps its state
    final_samples: int  # how many samples the fresh score draws

    def evaluator(self) -> Callable[[torch.nn.Module, int], dict]:
        """``evaluate(G, iteration)``: the selection score of an evaluation."""

    def final(self, generator: torch.nn.Module, best: dict | None = None) -> dict:
        """The fresh score of the kept generator (``best``: its selection metrics)."""


class _Selection:
    """The selection score of :class:`Scoring` and :class:`ImageScoring` (the same rule).

    Every scoring (these two and :class:`SplitScoring`) is a :class:`RunScoring`.
    """

    select_by = "fid"  # a class constant, not a field: it enters no run key

    def evaluator(self):
        """``evaluate(G, iteration)`` for :func:`cgt.train.train_gan`: the selection score."""
        real = self.reference()

        def evaluate(generator, iteration):
            fake, _, features = sample_features(generator, self.selection_samples, SELECTION_SEED,
                                                self.truncation)
            return distances(real, fake, features, kid=False)

        return evaluate


@dataclass(frozen=True)
class Scoring(_Selection):
    """How a run is scored: against which real images, with how many samples.

    ``selection_samples`` per evaluation during training (z stream
    ``SELECTION_SEED``) choose the checkpoint by FID; ``final_samples`` on
    ``SCORING_SEED`` then score that checkpoint afresh for the tables (≥ 1,000 in
    quick, 10,000 in the paper profile).  Conditional samples also get the class
    scores of :func:`class_scores` at every evaluation (a curve, never a choice).
    """

    dataset: str
    split: str = "train"
    classes: tuple | None = None  # the real classes the sampled classes stand for
    tiny: bool = False
    selection_samples: int = 300
    final_samples: int = 1000
    truncation: float | None = None
    restrict_head: bool = False  # the classifier's head cut to ``classes``
    score_splits: int = 10  # folds of the classifier score (1: none)
    kid: bool = True  # KID in the fresh score (a chapter whose paper reports none may skip it)

    def reference(self) -> np.ndarray:
        names = list(self.classes) if self.classes else None
        return real_statistics(self.dataset, self.split, self.tiny, names)["features"].astype(np.float64)

    def evaluator(self):
        real = self.reference()

        def evaluate(generator, iteration):
            fake, labels, features = sample_features(generator, self.selection_samples,
                                                     SELECTION_SEED, self.truncation)
            result = distances(real, fake, features, kid=False)
            if labels is None or self.dataset not in HEADS:
                return result
            names = list(self.classes or generator.cfg.class_names or [])
            return {**result, **(class_scores(generator, features, labels, self.dataset, self.split,
                                              self.tiny, names, self.dataset, self.restrict_head,
                                              self.score_splits) if names else {})}

        return evaluate

    def final(self, generator, best: dict | None = None) -> dict:
        """The reported score of the chosen checkpoint: fresh samples, another z stream."""
        return score_generator(generator, self.dataset, self.split, self.classes,
                               n=self.final_samples, tiny=self.tiny, seed=SCORING_SEED,
                               truncation=self.truncation, restrict_head=self.restrict_head,
                               score_splits=self.score_splits, kid=self.kid)


@dataclass(frozen=True)
class ImageScoring(_Selection):
    """The same two scores against images a user gave rather than a dataset: every
    image of the set, all classes pooled, in the project's feature network.  Its
    fields (what a run key holds) name the images by their digest; build it with
    :meth:`of`."""

    images: str  # the ImageSet's digest
    count: int
    selection_samples: int = 300
    final_samples: int = 1000
    truncation: float | None = None

    @classmethod
    def of(cls, images: data.ImageSet, selection_samples: int = 300, final_samples: int = 1000,
           truncation: float | None = None) -> "ImageScoring":
        scoring = cls(images.digest(), len(images), selection_samples, final_samples, truncation)
        object.__setattr__(scoring, "_features", extract_features(at_32px(images.images)))
        return scoring

    def reference(self) -> np.ndarray:
        return self._features

    def final(self, generator, best: dict | None = None) -> dict:
        fake, _, features = sample_features(generator, self.final_samples, SCORING_SEED, self.truncation)
        return {**distances(self._features, fake, features), "features": feature_network_id(),
                "n_fake": self.final_samples, "n_real": self.count, "seed": SCORING_SEED,
                "real": f"the given images ({self.count}, digest {self.images})"}


@dataclass(frozen=True)
class SplitScoring:
    """Choose on one split of a target, report on another (the BSA chapter's protocol).

    Every evaluation samples ``selection_samples`` at each threshold of
    ``truncations`` (None: untruncated N(0, I)) and scores them against the
    *validation* images; the threshold with the best ``select_by`` is that
    evaluation's result (collapsed samples are never chosen), so the run keeps the
    checkpoint and threshold that are best on validation together.  :meth:`final`
    scores that checkpoint at that threshold with ``final_samples`` fresh samples
    against the *test* images, which nothing was chosen on; given the ``training``
    images too, it adds the measures that copying them cannot win
    (:func:`cgt.metrics.novelty.novelty`, the test images as the held-out ones).
    Fields name the splits by digest; build it with :meth:`of`.
    """

    validation: str  # the ImageSets' digests
    test: str
    validation_count: int
    test_count: int
    selection_samples: int = 300
    final_samples: int = 1000
    truncations: tuple = (None,)
    select_by: str = "kid"
    training: str | None = None  # the training images' digest, for the novelty measures

    @classmethod
    def of(cls, validation: data.ImageSet, test: data.ImageSet, selection_samples: int = 300,
           final_samples: int = 1000, truncations=(None,), select_by: str = "kid",
           training: data.ImageSet | None = None) -> "SplitScoring":
        scoring = cls(validation.digest(), test.digest(), len(validation), len(test),
                      selection_samples, final_samples, tuple(truncations), select_by,
                      None if training is None else training.digest())
        parts = {"validation": validation, "test": test, "training": training}
        object.__setattr__(scoring, "_features", {
            name: extract_features(at_32px(images.images))
            for name, images in parts.items() if images is not None})
        return scoring

    def score_samples(self, fake: np.ndarray, features: np.ndarray) -> dict:
        """Test-split distances of samples (uint8 and their features), with the novelty
        measures when the training images are known."""
        test = self._features["test"]
        extra = novelty(features, self._features["training"], test) if self.training else {}
        return {**distances(test, fake, features), **extra}

    def evaluator(self):
        real = self._features["validation"]

        def evaluate(generator, iteration):
            scored = []
            for threshold in self.truncations:
                fake, _, features = sample_features(generator, self.selection_samples,
                                                    SELECTION_SEED, threshold)
                scored.append({**distances(real, fake, features), "truncation": threshold})
            usable = [s for s in scored if not s["collapsed"]] or scored
            chosen = min(usable, key=lambda s: s[self.select_by])
            return {**chosen, "by_truncation": {str(s["truncation"]): s[self.select_by]
                                                for s in scored}}

        return evaluate

    def final(self, generator, best: dict | None = None) -> dict:
        """The test score of the chosen checkpoint at its chosen threshold (``best``:
        the selection metrics the run kept; without an evaluation, untruncated)."""
        threshold = (best or {}).get("truncation")
        fake, _, features = sample_features(generator, self.final_samples, SCORING_SEED, threshold)
        return {**self.score_samples(fake, features), "truncation": threshold,
                "features": feature_network_id(), "n_fake": self.final_samples,
                "n_real": self.test_count, "seed": SCORING_SEED,
                "real": f"the test split ({self.test_count} images, digest {self.test})"}
