"""Loading the embedded datasets and the helpers every chapter needs."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np

from . import embedded as _build


@dataclass
class ImageSet:
    """Images (uint8, N×H×W×C) with integer labels and the names of the classes."""

    images: np.ndarray
    labels: np.ndarray
    classes: list[str]
    name: str = ""
    info: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.images.ndim != 4 or self.images.dtype != np.uint8:
            raise ValueError(f"images must be uint8 N×H×W×C, got {self.images.dtype} "
                             f"{self.images.shape}")
        if len(self.images) != len(self.labels):
            raise ValueError(f"{len(self.images)} images but {len(self.labels)} labels")

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def resolution(self) -> int:
        return self.images.shape[1]

    @property
    def channels(self) -> int:
        return self.images.shape[3]

    def counts(self) -> dict[str, int]:
        """Images per class name, in class order."""
        per = np.bincount(self.labels, minlength=len(self.classes))
        return {c: int(n) for c, n in zip(self.classes, per)}

    def subset(self, index) -> "ImageSet":
        return ImageSet(self.images[index], self.labels[index], self.classes, self.name, self.info)

    def resized(self, size: int) -> "ImageSet":
        return ImageSet(_build.resize(self.images, size), self.labels, self.classes,
                        self.name, self.info)

    def to_tensor(self):
        """Float tensor N×C×H×W in [-1, 1], the range every generator in cgt produces."""
        import torch
        x = torch.from_numpy(self.images).permute(0, 3, 1, 2).float()
        return x / 127.5 - 1.0


def to_uint8(x) -> np.ndarray:
    """The inverse of :meth:`ImageSet.to_tensor`: N×C×H×W in [-1, 1] → uint8 N×H×W×C."""
    return ((x.detach().float().clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).cpu().numpy()


def load(name: str, split: str = "train", size: int = 32, tiny: bool = False) -> ImageSet:
    """One split of an embedded dataset, built on first use.

    ``size`` is the build resolution (32 by default); the 8×8 digits keep their own
    resolution, use :meth:`ImageSet.resized` to change it.
    """
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
    unknown = [n for n in names if n not in dataset.classes]
    if unknown:
        shown = dataset.classes if len(dataset.classes) <= 30 else dataset.classes[:30] + ["…"]
        raise KeyError(f"unknown class name(s) {unknown} in {dataset.name}; valid: "
                       f"{', '.join(shown)}")
    return [dataset.classes.index(n) for n in names]


def select_classes(dataset: ImageSet, names, relabel: bool = True) -> ImageSet:
    """The images of the named classes; with ``relabel`` labels become 0..len(names)-1."""
    wanted = class_index(dataset, names)
    keep = np.isin(dataset.labels, wanted)
    labels = dataset.labels[keep]
    classes = dataset.classes
    if relabel:
        lookup = {old: new for new, old in enumerate(wanted)}
        labels = np.array([lookup[int(v)] for v in labels], np.int64)
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
    chosen = []
    for c in labels:
        members = np.flatnonzero(dataset.labels == c)
        if k > len(members):
            raise ValueError(f"k={k} images requested for class '{dataset.classes[c]}' of "
                             f"{dataset.name}, but only {len(members)} are available")
        chosen.append(members[rng.permutation(len(members))[:k]])
    return dataset.subset(np.sort(np.concatenate(chosen)))


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
REAL_DATASETS = {
    "cifar10": ("CGT_CIFAR10", "the folder holding torchvision's 'cifar-10-batches-py/'"),
    "cifar100": ("CGT_CIFAR100", "the folder holding torchvision's 'cifar-100-python/'"),
    "places365": ("CGT_PLACES365", "an ImageFolder tree root/<class>/<image> (e.g. the five "
                                   "Places365 classes of cGANTransfer's setup)"),
}


def real_root(name: str):
    """Where real dataset ``name`` lives: its environment variable, else
    ``<data cache>/real/<name>``; None when neither exists."""
    import os
    from pathlib import Path

    from .. import paths

    variable, _ = REAL_DATASETS[name]
    candidates = [os.environ.get(variable), paths.data_cache() / "real" / name]
    return next((Path(c) for c in candidates if c and Path(c).exists()), None)


def load_real(name: str, split: str = "train", size: int = 32) -> ImageSet:
    """A real dataset from disk (nothing is downloaded); a clear error says where to put it."""
    from .real import load_cifar, load_image_folder

    root = real_root(name)
    if root is None:
        variable, layout = REAL_DATASETS[name]
        raise FileNotFoundError(f"dataset '{name}' is not on this machine: set {variable} to "
                                f"{layout}, or place it under <data cache>/real/{name}")
    if name in ("cifar10", "cifar100"):
        images = load_cifar(root, split)
        return images if size == 32 else images.resized(size)
    if split != "train":
        raise ValueError(f"'{name}' is read as one training folder; split '{split}' does not exist")
    return load_image_folder(root, size)
