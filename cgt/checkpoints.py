"""Saving and loading generators, and the shipped pretrained source models.

A shipped model is one file ``data/models/<name>.pt`` holding the generator
(its EMA weights) and the discriminator, stored in fp16 to keep the repository
small, plus an entry in ``data/models/sources.json`` with the command that
produced it, seed, iterations, wall time, device, FID (with its feature network)
and sha256.  Loading checks the sha256 first.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from dataclasses import replace
from pathlib import Path

import torch

from . import atomic, paths, planning
from .biggan_pytorch import load_biggan_pytorch
from .nn import Discriminator, GANConfig, Generator, imagenet128_config
from .state_dicts import CheckpointError, load_state


def models_dir() -> Path:
    return paths.shipped_models()


def sources_manifest() -> dict:
    file = models_dir() / "sources.json"
    return json.loads(file.read_text()) if file.exists() else {}


def built_manifest() -> dict:
    """Source models trained into ``_build/models`` (paper profile, real-data recipes)."""
    file = paths.build_dir() / "models" / "sources.json"
    return json.loads(file.read_text()) if file.exists() else {}


def _half(state: dict) -> dict:
    return {k: v.half() if v.is_floating_point() else v for k, v in state.items()}


def export_model(path: Path, generator: Generator, discriminator: Discriminator | None,
                 half: bool = True) -> str:
    """Write a compact model file; return its sha256."""
    payload = {"format": "cgt-gan-1", "gan_config": generator.cfg.to_dict(),
               "generator": _half(generator.state_dict()) if half else generator.state_dict(),
               "discriminator": None if discriminator is None else (
                   _half(discriminator.state_dict()) if half else discriminator.state_dict())}
    atomic.save_torch(payload, path)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_model_file(path: Path, sha256: str | None = None) -> dict:
    """The payload of a cgt model file, after checking its sha256 when one is given."""
    if not path.exists():
        raise CheckpointError(f"no model file at {path}")
    if sha256 is not None:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest != sha256:
            raise CheckpointError(f"{path} has sha256 {digest}, expected {sha256}: the file is "
                                  f"corrupt or not the shipped one. Restore it with `git checkout "
                                  f"-- {path.name}` or retrain it (see data/models/sources.json).")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)  # never unpickles code
    except Exception as error:  # a truncated zip or pickle raises several kinds
        raise CheckpointError(f"{path} is not a readable checkpoint ({error}); it may be "
                              f"truncated. Restore or retrain it.") from None
    if not isinstance(payload, dict):
        raise CheckpointError(f"{path} is not a cgt model file")
    return payload


def model_from_payload(payload: dict, path: Path, device="cpu"):
    """(generator, discriminator or None) of a source model file's payload."""
    if payload.get("format") != "cgt-gan-1":
        raise CheckpointError(f"{path} is not a cgt source model file (format cgt-gan-1); "
                              f"cgt.builders.load_generator reads every cgt model file")
    cfg = GANConfig(**payload["gan_config"])
    generator = Generator(cfg)
    load_state(generator, payload["generator"], "generator")
    discriminator = None
    if payload["discriminator"] is not None:
        discriminator = Discriminator(cfg)
        load_state(discriminator, payload["discriminator"], "discriminator")
    generator.to(device).eval()
    if discriminator is not None:
        discriminator.to(device).eval()
    return generator, discriminator


def load_model(path: Path, device="cpu", sha256: str | None = None):
    """(generator, discriminator or None) from a source model file written by
    :func:`export_model`."""
    return model_from_payload(read_model_file(Path(path), sha256), Path(path), device)


def load_source(name: str, device="cpu"):
    """A shipped pretrained source model by name (see ``data/models/sources.json``)."""
    manifest = sources_manifest()
    if name not in manifest and name in built_manifest():
        entry = built_manifest()[name]
        return load_model(paths.build_dir() / "models" / entry["file"], device, entry["sha256"])
    if name == IMPORTED_BIGGAN:
        return load_imported_biggan(device)
    if name not in manifest:
        raise CheckpointError(f"no shipped source model '{name}'; shipped: "
                              f"{', '.join(sorted(manifest)) or 'none'}. `python -m cgt pretrain "
                              f"<recipe>` trains another (`python -m cgt pretrain --help` lists "
                              f"the recipes).")
    entry = manifest[name]
    return load_model(models_dir() / entry["file"], device, entry["sha256"])


def shipped_source(name: str):
    """A source model loaded once per process (building its spectral norms costs seconds);
    never modified: class extension and fine-tuning work on copies.  A plan loads its own
    (once per plan), since it may stand in for weights that are absent."""
    if planning.active():
        return planning.memo(("source", name), lambda: load_source(name))
    return _loaded_source(name)


@functools.lru_cache(maxsize=2)
def _loaded_source(name: str):
    return load_source(name)


IMPORTED_BIGGAN = "biggan-imagenet128"
BIGGAN_VARIABLE = "CGT_BIGGAN_IMAGENET"


def load_imported_biggan(device="cpu"):
    """BigGAN-PyTorch's ImageNet-128 weights from the folder in ``CGT_BIGGAN_IMAGENET``
    (``G_ema.pth`` or ``G.pth``, and ``D.pth``), converted to cgt networks."""
    folder = Path(os.environ.get(BIGGAN_VARIABLE, paths.data_cache() / "real" / IMPORTED_BIGGAN))
    g_file = next((folder / f for f in ("G_ema.pth", "G.pth") if (folder / f).exists()), None)
    if (g_file is None or not (folder / "D.pth").exists()) and planning.active():
        # a plan needs the architecture, not the weights (PyTorch's default init: quicker)
        planning.note_stand_in(IMPORTED_BIGGAN, BIGGAN_VARIABLE)
        cfg = replace(imagenet128_config(), init="default")
        return Generator(cfg).to(device).eval(), Discriminator(cfg).to(device).eval()
    if g_file is None or not (folder / "D.pth").exists():
        raise CheckpointError(f"no BigGAN-PyTorch ImageNet-128 weights in {folder}: set "
                              f"{BIGGAN_VARIABLE} to a folder with G.pth (or G_ema.pth) and D.pth")
    g_state = torch.load(g_file, map_location="cpu", weights_only=True)
    d_state = torch.load(folder / "D.pth", map_location="cpu", weights_only=True)
    generator, discriminator = load_biggan_pytorch(g_state, d_state)
    return generator.to(device), discriminator.to(device)


def source_fingerprint(name: str) -> str:
    """What identifies a source model in a run's configuration: its file's sha256, or the
    imported folder for BigGAN-PyTorch weights."""
    if name in sources_manifest():
        return sources_manifest()[name]["sha256"]
    if name in built_manifest():
        return built_manifest()[name]["sha256"]
    if name == IMPORTED_BIGGAN:  # which files, and which version of them (size, time)
        folder = Path(os.environ.get(BIGGAN_VARIABLE, paths.data_cache() / "real" / name))
        files = [folder / f for f in ("G_ema.pth", "G.pth", "D.pth") if (folder / f).exists()]
        return "imported:" + ";".join(f"{f}:{f.stat().st_size}:{f.stat().st_mtime_ns}" for f in files)
    raise CheckpointError(f"no source model '{name}' (shipped, built or imported)")
