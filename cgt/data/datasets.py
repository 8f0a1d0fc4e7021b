"""Loading the embedded datasets and the helpers every chapter needs."""

from __future__ import annotations

import json

import numpy as np

from .. import planning
from . import embedded as _build
from .images import ImageSet
from .real import REAL_DATASETS, load_real


def load(name: str, split: str = "train", size: int = 32, tiny: bool = False) -> ImageSet:
    """One split of an embedded dataset, built on first use.

    ``size`` is the build resolution (32 by default); the 8×8 digits keep their own
    resolution, use :meth:`ImageSet.resized` to change it.
    """
    tiny = tiny or planning.dry_run()  # a dry run reads the tiny variants (cgt.planning)
    return planning.memo(("load", name, split, size, tiny), lambda: _load(name, split, size, tiny))


def _load(name: str, split: str, size: int, tiny: bool) -> ImageSet:
    if name in REAL_DATASETS:
        return load_real(name, split, size)
    if name == "emoji_faces":
        return emoji_faces(split, size, tiny)
    if name not in _build.DATASETS:
        raise KeyError(f"unknown dataset '{name}'; valid: "
                       f"{', '.join(_build.DATASETS + tuple(DERIVED_DATASETS) + tuple(REAL_DATASETS))}")
    if split not in ("train", "test"):
        raise ValueError(f"unknown split '{split}'; valid: train, test")
    _build.build([name], size=size, tiny=tiny, progress=False)
    with np.load(_build.variant_dir(size, tiny) / f"{name}.npz") as arrays:
        meta = json.loads(str(arrays["meta"]))
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
    info = {k: v for k, v in meta.items() if k != "classes"}
    if "emoji" in info:
        info = {**info, **info.pop("emoji")[split]}
    return ImageSet(images, labels, meta["classes"], name, info)


DERIVED_DATASETS = {
    "emoji_faces": "the emoji of the Unicode face-* subgroups as one class 'face' (Noto in "
                   "train, EmojiOne in test): BSA's anime-face analogue",
}


def emoji_faces(split: str = "train", size: int = 32, tiny: bool = False) -> ImageSet:
    """The face emoji only, one class: the colour target of the BSA chapter."""
    emoji = load("emoji", split, size, tiny)
    keep = np.array([i for i, group in enumerate(emoji.info["subgroups"]) if group.startswith("face-")],
                    dtype=np.int64)
    info = {k: [v[i] for i in keep] if isinstance(v, list) and len(v) == len(emoji) else v
            for k, v in emoji.info.items()}
    return ImageSet(emoji.images[keep], np.zeros(len(keep), np.int64), ["face"], "emoji_faces", info)


def class_index(dataset: ImageSet, names) -> list[int]:
    """Indices of class ``names``; an unknown name raises with the valid ones."""
    index = {name: i for i, name in reversed(list(enumerate(dataset.classes)))}  # first wins
    unknown = [n for n in names if n not in index]
    if unknown:
        shown = dataset.classes if len(dataset.classes) <= 30 else dataset.classes[:30] + ["…"]
        raise KeyError(f"unknown class name(s) {unknown} in {dataset.name}; valid: "
                       f"{', '.join(shown)}")
    return [index[n] for n in names]


def select_classes(dataset: ImageSet, names, relabel: bool = True) -> ImageSet:
    """The images of the named classes; with ``relabel`` labels become 0..len(names)-1."""
    wanted = class_index(dataset, names)
    keep = np.isin(dataset.labels, wanted)
    labels = dataset.labels[keep]
    classes = dataset.classes
    if relabel:
        lookup = np.zeros(len(dataset.classes), np.int64)
        lookup[wanted] = np.arange(len(wanted))
        labels = lookup[labels]
        classes = list(names)
    return ImageSet(dataset.images[keep], labels, classes, dataset.name, dataset.info)


def k_shot(dataset: ImageSet, k: int, seed: int = 0, classes=None) -> ImageSet:
    """``k`` images per class drawn without replacement by a seeded generator.

    Nested in ``k``: for one seed the 10-shot set is contained in the 25-shot set.
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    labels = range(len(dataset.classes)) if classes is None else class_index(dataset, classes)
    rng = np.random.default_rng(seed)
    k = planning.take(dataset.name, "images per class", k,
                      min(int(np.sum(dataset.labels == c)) for c in labels),
                      smallest_class(dataset.name, "train"))
    chosen = []
    for c in labels:
        members = np.flatnonzero(dataset.labels == c)
        if k > len(members):
            raise ValueError(f"k={k} images requested for class '{dataset.classes[c]}' of "
                             f"{dataset.name}, but only {len(members)} are available")
        chosen.append(members[rng.permutation(len(members))[:k]])
    return dataset.subset(np.sort(np.concatenate(chosen)))


def class_count(name: str, tiny: bool = False) -> int | None:
    """The number of classes of an embedded dataset, from the committed manifest."""
    return _build.expected_manifest().get(_build.variant_name(32, tiny), {}).get(name, {}).get("classes")


def smallest_class(name: str, split: str = "train", tiny: bool = False) -> int | None:
    """Images in the smallest class of a split of an embedded dataset, read from the
    committed manifest (no arrays needed); None where it is not recorded."""
    entry = _build.expected_manifest().get(_build.variant_name(32, tiny), {}).get(name, {})
    return entry.get("smallest_class", {}).get(f"{split}_labels")


def low_quality(images: np.ndarray, size: int, back_to: int | None = None) -> np.ndarray:
    """Down-sample to ``size`` (box filter); optionally up-sample again to ``back_to``."""
    from PIL import Image

    out = []
    for image in images:
        pil = Image.fromarray(image[..., 0] if image.shape[2] == 1 else image)
        small = pil.resize((size, size), Image.Resampling.BOX)
        if back_to:
            small = small.resize((back_to, back_to), Image.Resampling.BICUBIC)
        out.append(np.asarray(small).reshape(small.size[1], small.size[0], -1))
    return np.stack(out)


def train_test(name: str, size: int = 32, tiny: bool = False) -> tuple[ImageSet, ImageSet]:
    return load(name, "train", size, tiny), load(name, "test", size, tiny)


# Real datasets a user may have on disk: name -> (environment variable, expected layout).
