"""What ``python -m cgt`` does, callable from Python: the command line is a thin layer over it.

>>> from cgt import api
>>> generator = api.load("fashion8")                     # a shipped source model
>>> grid = api.sample_grid(generator, n=16, classes=["dress"])
>>> api.save_png(grid, "dresses.png")

``load`` takes a shipped (or pretrained into ``_build``) source name, a cgt model
file written by :func:`cgt.checkpoints.export_model`, or a run record of
:mod:`cgt.runs` (its ``.json``), and never unpickles code from a file.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from . import atomic
from .checkpoints import CheckpointError, built_manifest, load_model, load_source, sources_manifest
from .data import ImageSet
from .data.real import load_image_folder
from .metrics import generate
from .plots import image_grid
from .runs import rebuild


class UsageError(ValueError):
    """Bad input from a user: the command line prints it without a traceback."""


def load(model: str | Path) -> torch.nn.Module:
    """The generator named by ``model`` (a source name, a model file or a run record)."""
    path = Path(model)
    if path.suffix == ".json" and path.is_file():
        return rebuild(path)
    if path.suffix == ".pt" and path.is_file():
        return load_model(path)[0].eval()
    names = sorted({*sources_manifest(), *built_manifest()})
    if str(model) in names:
        return load_source(str(model))[0].eval()
    raise UsageError(f"'{model}' is neither a source model ({', '.join(names)}) nor a model "
                     f"file (.pt) nor a run record (.json) that exists")


def images_for(folder: str | Path, generator: torch.nn.Module, one_domain: bool = False) -> ImageSet:
    """The images of ``folder`` as ``generator`` makes them: its channels (grey ↔ RGB) and
    resolution (centre crop + resize); ``info["conversion"]`` says what was done.

    The sub-folders are the classes (``folder/<class>/<image>``); with ``one_domain`` a
    folder of images without sub-folders is one class.
    """
    cfg = generator.cfg
    try:
        return load_image_folder(folder, cfg.resolution, grey=cfg.channels == 1, flat=one_domain)
    except (FileNotFoundError, ValueError) as error:
        raise UsageError(str(error)) from None


def class_labels(generator: torch.nn.Module, classes) -> list[int] | None:
    """Label indices of the class names ``classes`` (None: all classes, or unconditional)."""
    if not classes:
        new = getattr(generator, "new_classes", None)
        return list(new) if new is not None else None
    names = list(generator.cfg.class_names or [])
    unknown = [c for c in classes if c not in names]
    if unknown:
        raise UsageError(f"no class {', '.join(map(repr, unknown))} in this model; its classes: "
                         f"{', '.join(names) or 'none (unconditional)'}")
    return [names.index(c) for c in classes]


def sample_grid(generator: torch.nn.Module, n: int = 64, classes=None,
                truncation: float | None = None, seed: int = 0, columns: int | None = None) -> np.ndarray:
    """``n`` samples (labels cycling over ``classes``) tiled into one uint8 H×W×C image."""
    if n < 1:
        raise UsageError(f"the number of samples must be at least 1, got {n}")
    if truncation is not None and truncation <= 0:
        raise UsageError(f"the truncation must be positive, got {truncation}")
    images, _ = generate(generator, n, classes=class_labels(generator, classes), seed=seed,
                         truncation=truncation)
    return image_grid(images, columns or min(n, 8))


def save_png(grid: np.ndarray, path: str | Path, force: bool = False) -> Path:
    """Write ``grid`` as a PNG (atomically); an existing file is kept unless ``force``."""
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise UsageError(f"the output must be a .png file, got {path.name}")
    if path.exists() and not force:
        raise UsageError(f"{path} exists; pass --force to replace it")
    image = Image.fromarray(grid.squeeze(-1) if grid.shape[-1] == 1 else grid)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    try:
        atomic.write_bytes(path, buffer.getvalue())
    except OSError as error:
        raise UsageError(f"cannot write {path} ({error.strerror})") from None
    return path


__all__ = ["CheckpointError", "UsageError", "class_labels", "images_for", "load", "sample_grid",
           "save_png"]
