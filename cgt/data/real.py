"""Real datasets in their standard on-disk formats, for users who have them.

Nothing here downloads: point the loaders at a folder you already have.
"""

from __future__ import annotations

import hashlib
import os
import pickle
from dataclasses import replace
from pathlib import Path

import numpy as np
from PIL import Image

from .. import paths, planning
from .images import ImageSet
from .splits import CGANTRANSFER_PLACES365, CIFAR100_CLASSES

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif", ".tif", ".tiff"}


def load_cifar(root, split: str = "train", coarse: bool = False) -> ImageSet:
    """torchvision's CIFAR-10 (``cifar-10-batches-py``) or CIFAR-100 (``cifar-100-python``) pickles."""
    root = Path(root)
    if (root / "cifar-10-batches-py").is_dir():
        root = root / "cifar-10-batches-py"
    elif (root / "cifar-100-python").is_dir():
        root = root / "cifar-100-python"
    if (root / "batches.meta").exists():
        files = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
        meta, label_key, name_key = root / "batches.meta", b"labels", b"label_names"
    elif (root / "meta").exists():
        files = ["train"] if split == "train" else ["test"]
        meta = root / "meta"
        label_key = b"coarse_labels" if coarse else b"fine_labels"
        name_key = b"coarse_label_names" if coarse else b"fine_label_names"
    else:
        raise FileNotFoundError(
            f"{root} holds no CIFAR pickles: expected 'cifar-10-batches-py/' or "
            f"'cifar-100-python/' as torchvision writes them. Nothing is downloaded here.")
    if split not in ("train", "test"):
        raise ValueError(f"unknown split '{split}'; valid: train, test")
    images, labels = [], []
    for file in files:
        with open(root / file, "rb") as handle:
            batch = pickle.load(handle, encoding="bytes")
        images.append(np.asarray(batch[b"data"], np.uint8).reshape(-1, 3, 32, 32))
        labels.extend(batch[label_key])
    with open(meta, "rb") as handle:
        names = [n.decode() for n in pickle.load(handle, encoding="bytes")[name_key]]
    stacked = np.concatenate(images).transpose(0, 2, 3, 1).copy()
    return ImageSet(stacked, np.asarray(labels, np.int64), names, root.name)


def _square(file: Path, size: int, mode: str) -> tuple[np.ndarray, str, tuple[int, int]]:
    """One image file centre-cropped to a square, resized to ``size`` (bicubic) and
    converted to ``mode`` ("L" or "RGB"); also its original mode and size."""
    try:
        with Image.open(file) as image:
            original, shape = image.mode, image.size
            image = image.convert(mode)
            side = min(image.size)
            left, top = (image.size[0] - side) // 2, (image.size[1] - side) // 2
            image = image.crop((left, top, left + side, top + side))
            image = image.resize((size, size), Image.Resampling.BICUBIC)
            return np.asarray(image).reshape(size, size, -1), original, shape
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        raise ValueError(f"{file} is not a readable image ({error}); remove or replace it") from None


def load_image_folder(root, size: int = 32, grey: bool = False, flat: bool = False) -> ImageSet:
    """An ImageFolder tree (``root/<class>/<image>``: Places365, AnimalFace, FFHQ-like folders),
    or with ``flat`` a folder of images of one class (named after the folder).

    Images of any size and mode are centre-cropped to a square, resized to ``size``
    (bicubic) and converted to grey or RGB; ``info["conversion"]`` says what was done.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root} is not a folder")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes and not flat:
        raise FileNotFoundError(f"{root} has no class sub-folders (expected root/<class>/<image>)")
    folders = [root / name for name in classes] if classes else [root]
    mode = "L" if grey else "RGB"
    images, labels, modes, sizes = [], [], set(), []
    for label, folder in enumerate(folders):
        for file in sorted(folder.iterdir()):
            if file.suffix.lower() not in IMAGE_SUFFIXES or file.name.startswith("."):
                continue
            pixels, original, shape = _square(file, size, mode)
            images.append(pixels)
            labels.append(label)
            modes.add(original)
            sizes.append(shape)
    if not images:
        raise FileNotFoundError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) under {root}")
    widths, heights = zip(*sizes)
    conversion = (f"{len(images)} images ({'/'.join(sorted(modes))}, {min(widths)}–{max(widths)} × "
                  f"{min(heights)}–{max(heights)} px) centre-cropped to a square, resized to "
                  f"{size}×{size} (bicubic), as {'grey' if grey else 'RGB'}")
    return ImageSet(np.stack(images), np.asarray(labels, np.int64), classes or [root.name],
                    root.name, {"conversion": conversion})


REAL_DATASETS = {
    "cifar10": ("CGT_CIFAR10", "the folder holding torchvision's 'cifar-10-batches-py/'"),
    "cifar100": ("CGT_CIFAR100", "the folder holding torchvision's 'cifar-100-python/'"),
    "places365": ("CGT_PLACES365", "an ImageFolder tree root/<class>/<image> (e.g. the five "
                                   "Places365 classes of cGANTransfer's setup)"),
}


# The class names of each real dataset as published (for Places365: the five classes of
# cGANTransfer's setup, which is all that is read of it), for planning without the files.
PUBLISHED_CLASSES = {
    "cifar10": ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
                "truck"],
    "cifar100": CIFAR100_CLASSES,
    "places365": CGANTRANSFER_PLACES365,
}
# Images per class of a planning stand-in: enough for the few measured steps and samples
# of a plan (its demands are checked against the published sizes instead).
STAND_IN_PER_CLASS = 16


def real_available(name: str) -> bool:
    """Whether runs on real dataset ``name`` can be made: its files are here, or a plan is
    being made (which plans them on a stand-in, see :func:`load_real`)."""
    return real_root(name) is not None or planning.active()


def stand_in(name: str, split: str = "train", size: int = 32) -> ImageSet:
    """Random images in the shape and with the class names of real dataset ``name``
    (:data:`STAND_IN_PER_CLASS` per class): what a plan runs on when the files are absent."""
    classes = PUBLISHED_CLASSES[name]
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(len(classes)), STAND_IN_PER_CLASS)
    images = rng.integers(0, 256, (len(labels), size, size, 3), dtype=np.uint8)
    return ImageSet(images, labels, list(classes), name,
                    {"conversion": f"a planning stand-in of {name}'s {split} split (random pixels)"})


def real_root(name: str):
    """Where real dataset ``name`` lives: its environment variable, else
    ``<data cache>/real/<name>``; None when neither exists."""
    variable, _ = REAL_DATASETS[name]
    candidates = [os.environ.get(variable), paths.data_cache() / "real" / name]
    return next((Path(c) for c in candidates if c and Path(c).exists()), None)


def real_fingerprint(name: str) -> str:
    """Which files real dataset ``name`` is read from (path, names, sizes and times of the
    entries at the top of its folder and one level down): what a cache of anything
    computed from them is keyed by, so that other files are never served stale results."""
    root = real_root(name)
    if root is None:
        return "absent"
    entries = [root, *sorted(root.iterdir())]
    entries += [e for d in entries[1:] if d.is_dir() for e in sorted(d.iterdir())[:1]]
    listing = "\n".join(f"{e}:{e.stat().st_size}:{e.stat().st_mtime_ns}" for e in entries)
    return hashlib.sha256(listing.encode()).hexdigest()[:10]


def load_real(name: str, split: str = "train", size: int = 32) -> ImageSet:
    """A real dataset from disk (nothing is downloaded); a clear error says where to put it."""
    root = real_root(name)
    if root is None and planning.active():  # planned all the same, marked as needing the files
        planning.note_stand_in(name, REAL_DATASETS[name][0])
        return stand_in(name, split, size)
    if root is None:
        variable, layout = REAL_DATASETS[name]
        raise FileNotFoundError(f"dataset '{name}' is not on this machine: set {variable} to "
                                f"{layout}, or place it under <data cache>/real/{name}")
    if name in ("cifar10", "cifar100"):
        images = replace(load_cifar(root, split), name=name)
        return images if size == 32 else images.resized(size)
    if split != "train":
        raise ValueError(f"'{name}' is read as one training folder; split '{split}' does not exist")
    return replace(load_image_folder(root, size), name=name)
