"""What ``python -m cgt`` does, callable from Python: the command line is a thin layer over it.

>>> from cgt import api
>>> generator = api.load("fashion8")                     # a shipped source model
>>> grid = api.sample_grid(generator, n=16, classes=["dress"])
>>> api.save_png(grid, "dresses.png")
>>> shoes = api.images_for("my_shoes/", generator)       # my_shoes/<class>/<image>
>>> outcome = api.transfer("cgantransfer", "fashion8", shoes, "out/shoes")
>>> outcome.report["score"]["fid"], outcome.samples      # out/shoes/samples.png

``adapt`` (BSA on one domain) and ``ctf`` (a conditional GAN with low-quality images)
work the same way.

``load`` takes a shipped (or pretrained into ``_build``) source name, a cgt model
file written by :func:`cgt.checkpoints.export_model`, or a run record of
:mod:`cgt.runs` (its ``.json``), and never unpickles code from a file.
"""

from __future__ import annotations

import io
import json
import shutil
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from . import atomic
from .builders import export_run_model, load, source_names
from .checkpoints import CheckpointError
from .data import ImageSet, k_shot
from .data.real import load_image_folder
from .data import low_quality
from .experiments import ctf as ctf_study
from .experiments.bsa import adapt_images
from .experiments.cgantransfer import train_config
from .methods.runner import run_transfer
from .methods.transfer import TransferTask
from .metrics import ImageScoring, generate
from .plots import image_grid
from .profiles import SIZES
from .runs import RunRecord


class UsageError(ValueError):
    """Bad input from a user: the command line prints it without a traceback."""


def images_for(folder: str | Path, generator: torch.nn.Module, one_domain: bool = False) -> ImageSet:
    """The images of ``folder`` as ``generator`` makes them: its channels (grey ↔ RGB) and
    resolution (centre crop + resize); ``info["conversion"]`` says what was done.

    The sub-folders are the classes (``folder/<class>/<image>``); with ``one_domain`` a
    folder of images without sub-folders is one class.
    """
    cfg = generator.cfg
    return image_folder(folder, cfg.resolution, cfg.channels == 1, one_domain)


def image_folder(folder: str | Path, size: int, grey: bool, one_domain: bool = False) -> ImageSet:
    """The images of ``folder`` at ``size`` px, grey or RGB (for a model without a source)."""
    try:
        return load_image_folder(folder, size, grey=grey, flat=one_domain)
    except (FileNotFoundError, ValueError) as error:
        raise UsageError(str(error)) from None


def class_labels(generator: torch.nn.Module, classes) -> list[int] | None:
    """Label indices of the class names ``classes`` (None: all classes, or unconditional)."""
    if not classes:
        new = getattr(generator, "new_classes", None)
        return list(new) if new is not None else None
    names = list(generator.cfg.class_names or [])
    if hasattr(generator, "latents"):  # a BSA-adapted generator samples one domain
        names = []
    unknown = [c for c in classes if c not in names]
    if unknown:
        raise UsageError(f"no class {', '.join(map(repr, unknown))} in this model; its classes: "
                         f"{', '.join(names) or 'none (one domain, no classes)'}")
    new = list(getattr(generator, "new_classes", None) or [])
    # a new class may share a name with a source class: the name means the new one
    return [next((i for i in new if names[i] == c), names.index(c)) for c in classes]


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


TRANSFER_METHODS = {"cgantransfer": "cgantransfer", "bsa-extension": "bsa",
                    "transfergan": "transfergan", "scratch": "scratch"}
# What a run writes into its folder; anything else there is left alone.
OUTPUTS = ("arguments.json", "run.json", "run", "phase1.json", "phase1", "model.pt", "samples.png",
           "report.json", "report.md")
SCORE_NOTE = ("FID, KID and KMMD against the given images, in the project's feature network "
              "({features}), not Inception: comparable between runs of this tool on the same "
              "images, not with published FIDs")


@dataclass
class Outcome:
    """What a transfer or an adaptation wrote into its folder."""

    folder: Path
    model: Path
    samples: Path
    report: dict


def _fitting(images: ImageSet, generator: torch.nn.Module, shots: int | None, seed: int,
             one_domain: bool = False) -> ImageSet:
    """``images`` checked against the source (channels, resolution), pooled into one class
    with ``one_domain``, and ``shots`` per class drawn with ``seed`` when given."""
    cfg = generator.cfg
    if (images.channels, images.resolution) != (cfg.channels, cfg.resolution):
        raise UsageError(f"the images are {images.resolution}×{images.resolution}×{images.channels}"
                         f" but the source makes {cfg.resolution}×{cfg.resolution}×{cfg.channels}: "
                         f"load them with cgt.api.images_for(folder, generator)")
    if one_domain:
        images = ImageSet(images.images, np.zeros(len(images), np.int64), [images.name or "images"],
                          images.name, images.info)
    return images if shots is None else _draw(images, shots, seed)


def _draw(images: ImageSet, shots: int, seed: int) -> ImageSet:
    """``shots`` images per class, drawn with ``seed``."""
    try:
        return k_shot(images, shots, seed)
    except ValueError as error:
        raise UsageError(f"{error}: lower --shots or add images") from None


def _sizes(chapter: str, profile: str, **overrides) -> dict:
    """The chapter's ``profile`` settings with the user's overrides (None keeps a setting)."""
    if profile not in SIZES[chapter]:
        raise UsageError(f"unknown profile '{profile}'; valid: {', '.join(SIZES[chapter])}")
    sizes = dict(SIZES[chapter][profile])
    for key, value in overrides.items():
        if value is not None:
            if value < 1:
                raise UsageError(f"{key.replace('_', '-')} must be at least 1, got {value}")
            sizes[key] = value
    return sizes


def _claim_folder(out: str | Path, arguments: dict, force: bool) -> Path:
    """``out``, ready for the run of ``arguments``: the same run found there resumes; another
    run's outputs are replaced only with ``force``; other files are never touched."""
    folder = Path(out)
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"{folder} exists and is not a folder: choose another --out")
    saved = folder / "arguments.json"
    ours = [name for name in OUTPUTS if (folder / name).exists()]
    same = saved.exists() and json.loads(saved.read_text()) == arguments
    if ours and not same:
        if not force:
            raise UsageError(f"{folder} holds the outputs of another run ({', '.join(ours)}); pass "
                             f"--force to replace them, or choose another --out")
        for name in ours:
            target = folder / name
            shutil.rmtree(target) if target.is_dir() else target.unlink()
    try:
        atomic.write_json(saved, arguments)
    except OSError as error:
        raise UsageError(f"cannot write to {folder} ({error.strerror}): choose a writable --out") from None
    return folder


def _finish(record: RunRecord, folder: Path, images: ImageSet, arguments: dict, command: str | None,
            truncation: float | None) -> Outcome:
    """Model file, sample grid and report of a finished run."""
    if record.status != "complete":
        raise RuntimeError(f"the run did not complete ({record.status}); its record: {record.path}")
    generator = load(record.path)
    model = folder / "model.pt"
    export_run_model(model, record.builder, record.config, generator)
    samples = save_png(sample_grid(generator, 64, truncation=truncation), folder / "samples.png",
                       force=True)
    score, status = record.reported_score()
    report = {"arguments": arguments, "command": command, "status": status,
              "warnings": _warnings(record),
              "images": {"count": len(images), "per_class": images.counts(),
                         "conversion": images.info.get("conversion", "used as given")},
              "score": {k: v for k, v in score.items() if not isinstance(v, (list, dict))},
              "score_note": SCORE_NOTE.format(features=score.get("features", "?")),
              "best_iteration": int((record.metrics.get("best") or {}).get("iteration", -1)),
              "trainable_parameters": record.metrics.get("trainable_g"),
              "wall_time_s": record.wall_time_s, "device": record.device,
              "run_record": str(record.path), "model": str(model), "samples": str(samples)}
    atomic.write_json(folder / "report.json", report)
    atomic.write_text(folder / "report.md", _report_markdown(report))
    return Outcome(folder, model, samples, report)


def _warnings(record: RunRecord) -> list[str]:
    """What a user must know before trusting the model: collapsed evaluations, and a
    best checkpoint that is the untrained start."""
    history = [h for h in record.metrics.get("history") or [] if "fid" in h]
    found = []
    collapsed = [int(h["iteration"]) for h in history if h.get("collapsed")]
    if collapsed:
        found.append(f"the samples stopped varying (collapsed) at iteration(s) "
                     f"{', '.join(map(str, collapsed))}; such checkpoints are never chosen")
    best = (record.metrics.get("best") or {}).get("iteration")
    if best is not None and int(best) == 0 and len(history) > 1:
        found.append("no later evaluation scored better than the start: the model written is "
                     "the untrained starting point (try other --iterations or another source)")
    elif best is not None and len(history) > 2 and int(best) == int(history[-1]["iteration"]):
        found.append("the best evaluation is the last one: the run may not have converged, and "
                     "more --iterations may give a better model")
    return found


def _report_markdown(report: dict) -> str:
    score = report["score"]
    source = report["arguments"].get("source")
    lines = [f"# {report['arguments']['method']} {f'from {source}' if source else 'on the given images'}", "",
             f"- command: `{report['command'] or '(called from Python)'}`",
             f"- images: {report['images']['count']} ({', '.join(f'{c}: {n}' for c, n in report['images']['per_class'].items())}); "
             f"{report['images']['conversion']}",
             f"- FID {score.get('fid', float('nan')):.1f}, KID {score.get('kid', float('nan')):.4f} "
             f"± {score.get('kid_std', float('nan')):.4f}, KMMD {score.get('kmmd', float('nan')):.4f} "
             f"({score.get('n_fake', '?')} samples, checkpoint of iteration {report['best_iteration']})",
             f"- {report['score_note']}",
             f"- {report['trainable_parameters'] or 'all'} trained parameters, "
             f"{report['wall_time_s']:.0f} s on {report['device']}",
             f"- model: `{report['model']}` (`python -m cgt sample {report['model']} --out x.png`)",
             f"- samples: `{report['samples']}`; run record: `{report['run_record']}`",
             *[f"- **warning**: {w}" for w in report["warnings"]], ""]
    return "\n".join(lines)


def transfer(method: str, source: str, images: ImageSet, out: str | Path, *, shots: int | None = None,
             iterations: int | None = None, batch_size: int | None = None, seed: int = 0,
             profile: str = "quick", force: bool = False, progress: bool = True,
             command: str | None = None) -> Outcome:
    """Teach the source model ``source`` the classes of ``images`` with ``method``
    (cgantransfer, bsa-extension, transfergan or scratch), as the cGANTransfer chapter
    trains them (its ``profile`` settings, ``iterations`` and ``batch_size`` overriding);
    write the model, a sample grid of the new classes and a report into ``out``.
    Run again after an interruption, the same call resumes."""
    if method not in TRANSFER_METHODS:
        raise UsageError(f"unknown method '{method}'; valid: {', '.join(TRANSFER_METHODS)}")
    if source not in source_names():
        raise UsageError(f"unknown source '{source}'; valid: {', '.join(source_names())}")
    images = _fitting(images, load(source), shots, seed)
    sizes = _sizes("cgantransfer", profile, iterations=iterations, batch_size=batch_size)
    arguments = {"method": method, "source": source, "images": images.digest(), "shots": shots,
                 "iterations": sizes["iterations"], "batch_size": sizes["batch_size"],
                 "seed": seed, "profile": profile}
    folder = _claim_folder(out, arguments, force)
    kind = TRANSFER_METHODS[method]
    task = TransferTask(source, images.name or "images", tuple(images.classes),
                        shots or int(min(images.counts().values())), seed)
    train = replace(train_config(kind, sizes), checkpoint_every=sizes["eval_every"])  # resumable
    record = run_transfer(kind, task, train, profile=profile,
                          eval_samples=sizes["eval_samples"], score_samples=sizes["score_samples"],
                          name="run", chapter="transfer", progress=progress, images=images,
                          home=folder)
    return _finish(record, folder, images, arguments, command, truncation=None)


def adapt(source: str, images: ImageSet, out: str | Path, *, shots: int | None = None,
          iterations: int | None = None, batch_size: int | None = None, seed: int = 0,
          profile: str = "quick", force: bool = False, progress: bool = True,
          command: str | None = None) -> Outcome:
    """Adapt the source model ``source`` to ``images`` (one domain, classes pooled) with
    BSA: frozen weights, learned scale/shift and one latent code per image, Eq. (3), as
    the BSA chapter trains it (its ``profile`` settings, with the overrides); write the
    model, a sample grid and a report into ``out``."""
    if source not in source_names():
        raise UsageError(f"unknown source '{source}'; valid: {', '.join(source_names())}")
    images = _fitting(images, load(source), shots, seed, one_domain=True)
    sizes = _sizes("bsa", profile, iterations=iterations, batch_size=batch_size)
    arguments = {"method": "bsa", "source": source, "images": images.digest(), "shots": shots,
                 "iterations": sizes["iterations"], "batch_size": sizes["batch_size"],
                 "seed": seed, "profile": profile}
    folder = _claim_folder(out, arguments, force)
    scoring = ImageScoring.of(images, sizes["eval_samples"], sizes["score_samples"],
                              sizes["score_truncation"])
    record = adapt_images("bsa", source, images, sizes, seed=seed, profile=profile,
                          name="run", target={"images": images.digest(), "name": images.name},
                          scoring=scoring, home=folder, progress=progress)
    return _finish(record, folder, images, arguments, command, truncation=sizes["score_truncation"])


def ctf(images: ImageSet, out: str | Path, *, low: ImageSet | None = None,
        downsample: int | None = None, shots: int | None = None, iterations: int | None = None,
        batch_size: int | None = None, seed: int = 0, profile: str = "quick", force: bool = False,
        progress: bool = True, command: str | None = None) -> Outcome:
    """Conditional transferring features on ``images`` (32 px, one class per sub-folder),
    as the CTF chapter trains them (its ``profile`` settings): phase 1 teaches G_LH to
    turn low-quality images into these classes, phase 2 a conditional generator that
    reads G_LH's DCT-domain difference features.  The low-quality images are ``low``
    (any classes, e.g. another domain) or else ``images`` down-sampled to ``downsample``
    px (default: the profile's); write the model, samples and a report into ``out``."""
    if low is not None and downsample is not None:
        raise UsageError("give low-quality images or a down-sampling size, not both")
    if images.resolution != 32:
        raise UsageError(f"CTF trains at 32 px, the images are {images.resolution} px: load them "
                         f"with cgt.data.real.load_image_folder(folder, 32)")
    if shots is not None:
        images = _draw(images, shots, seed)
    sizes = _sizes("ctf", profile, iterations=iterations, batch_size=batch_size)
    if low is None:
        size = downsample or sizes["low_size"]
        if not 1 < size < 32:
            raise UsageError(f"the down-sampling size must lie between 2 and 31 px, got {size}")
        low = ImageSet(low_quality(images.images, size), images.labels, images.classes, images.name)
        low_description = f"the images down-sampled to {size}×{size}"
    else:
        low_description = f"{len(low)} images of {len(low.classes)} classes ({low.name})"
    if low.channels != images.channels:
        raise UsageError(f"the low-quality images have {low.channels} channels, the images "
                         f"{images.channels}: load both in the same mode")
    d = ctf_study.Training(images, low.to_tensor(), torch.from_numpy(low.labels), len(low.classes),
                           same_classes=list(low.classes) == list(images.classes))
    arguments = {"method": "ctf", "images": ctf_study.training_digest(d), "shots": shots,
                 "low_quality": low_description,
                 "iterations": sizes["iterations"], "batch_size": sizes["batch_size"],
                 "seed": seed, "profile": profile}
    folder = _claim_folder(out, arguments, force)
    scoring = ImageScoring.of(images, sizes["eval_samples"], sizes["score_samples"])
    record = ctf_study.train_cell(d, ctf_study.Variant("ctf"), ctf_study.CellSizes.of(sizes),
                                  seed=seed, profile=profile,
                                  name="run", data_config={"images": arguments["images"]},
                                  scoring=scoring, home=folder, progress=progress)
    return _finish(record, folder, images, arguments, command, truncation=None)


__all__ = ["CheckpointError", "Outcome", "TRANSFER_METHODS", "UsageError", "adapt", "class_labels",
           "ctf", "image_folder", "images_for", "load", "sample_grid", "save_png", "source_names", "transfer"]
