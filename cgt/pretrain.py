"""Recipes for the pretrained source generators the chapters start from.

The papers start from public ImageNet generators that cannot be fetched here, so
the project trains its own small ones: ``python -m cgt pretrain <recipe>``.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field, replace

import torch

from . import atomic, data, distributed, paths, planning
from .checkpoints import export_model, load_model, load_source, models_dir, sources_manifest
from .data import splits
from .nn import Discriminator, GANConfig, Generator
from .machine import device_description
from .train import TrainConfig, train_gan

EMOJI_NON_FACE_GROUPS = ["Activities", "Animals & Nature", "Food & Drink", "Objects",
                         "Symbols", "Travel & Places"]


@dataclass(frozen=True)
class Recipe:
    dataset: str
    classes: tuple
    description: str
    iterations: int = 4000
    ch: int = 32
    train: TrainConfig = field(default_factory=lambda: TrainConfig(
        batch_size=64, lr_g=1e-4, lr_d=4e-4, ema_decay=0.999, ema_start=1000))

    def gan_config(self, channels: int) -> GANConfig:
        return GANConfig(resolution=32, channels=channels, num_classes=len(self.classes),
                         ch=self.ch, dim_z=128, init="N02", class_names=list(self.classes))


RECIPES = {
    "fashion8": Recipe("fashion_mnist", tuple(splits.CGANTRANSFER["source_classes"]),
                       "class-conditional, the 8 Fashion-MNIST source classes (cGANTransfer's "
                       "'pretrained on old classes')", iterations=5000),
    "fashion8-16": Recipe("fashion_mnist", tuple(splits.CGANTRANSFER["source_classes"]),
                          "fashion8 at half the width (ch 16): the cGANTransfer chapter's quick "
                          "source", iterations=5000, ch=16),
    "animals": Recipe("animal_shape", tuple(data.embedded.ANIMAL_CLASSES),
                      "class-conditional, 10 Animal-Shape classes (a second grey source domain)"),
    "emoji-objects": Recipe("emoji", tuple(EMOJI_NON_FACE_GROUPS),
                            "class-conditional RGB, Noto emoji without faces or people "
                            "(the colour source for BSA's emoji-face target)"),
}


# Recipes on real datasets a user has on disk (``cgt.data.REAL_DATASETS``); the paper
# profile trains them when their data is present. Width 64 as the official CIFAR BigGAN.
REAL_RECIPES = {
    "cifar100-80": Recipe("cifar100", tuple(splits.CGANTRANSFER_CIFAR100["source_classes"]),
                          "class-conditional RGB, the 80 CIFAR-100 source classes of "
                          "cGANTransfer's 80 -> 20 setup (our split: see cgt.data.splits)",
                          iterations=30000, ch=64),
}


def recipe(name: str) -> Recipe:
    if name in RECIPES:
        return RECIPES[name]
    if name in REAL_RECIPES:
        return REAL_RECIPES[name]
    raise KeyError(f"unknown recipe '{name}'; valid: {', '.join(list(RECIPES) + list(REAL_RECIPES))}")


def ensure_source(name: str, iterations: int | None = None, device: str = "auto",
                  progress: bool = True) -> dict:
    """The manifest entry of source model ``name``: shipped, already trained into
    ``_build/models``, or trained there now (real-data recipes in the paper profile)."""
    if name in sources_manifest():
        return sources_manifest()[name]
    folder = paths.build_dir() / "models"
    manifest_file = folder / "sources.json"
    done = json.loads(manifest_file.read_text()) if manifest_file.exists() else {}
    wanted = iterations or recipe(name).iterations
    if done.get(name, {}).get("iterations") != wanted:
        return pretrain(name, iterations=wanted, device=device, out=folder, progress=progress)
    return done[name]


def training_data(recipe: Recipe, tiny: bool = False) -> data.ImageSet:
    return data.select_classes(data.load(recipe.dataset, "train", tiny=tiny), list(recipe.classes))


def pretrain(name: str, iterations: int | None = None, seed: int = 0, device: str = "auto",
             tiny: bool = False, out=None, progress: bool = True, work_dir=None,
             checkpoint_every: int = 0, batch_size: int | None = None) -> dict:
    """Train recipe ``name`` and write the model file and its manifest entry.

    With ``work_dir`` the run checkpoints there every ``checkpoint_every``
    iterations and a rerun of the same command resumes where it stopped.
    """
    chosen = recipe(name)
    train_config = replace(chosen.train, seed=seed, device=device,
                           iterations=iterations or chosen.iterations,
                           batch_size=batch_size or chosen.train.batch_size,
                           checkpoint_every=checkpoint_every)
    if train_config.ema_start >= train_config.iterations:
        train_config = replace(train_config, ema_start=0)
    dataset = training_data(chosen, tiny)
    cfg = chosen.gan_config(dataset.channels)
    torch.manual_seed(seed)
    generator, discriminator = Generator(cfg), Discriminator(cfg)
    start = time.perf_counter()
    with planning.run_named("pretrain", name):
        result = train_gan(generator, discriminator, dataset.to_tensor(),
                           torch.from_numpy(dataset.labels), train_config, progress=progress,
                           out_dir=work_dir)
    wall = time.perf_counter() - start
    if not distributed.is_main_process():  # under torchrun, rank 0 writes the model
        return {}
    folder = models_dir() if out is None else out
    file = folder / f"{name}.pt"
    digest = export_model(file, result.sampler.cpu(), discriminator.cpu())
    entry = {"file": file.name, "sha256": digest, "recipe": name,
             "description": chosen.description, "dataset": chosen.dataset,
             "classes": list(chosen.classes), "images": len(dataset),
             "command": f"python -m cgt pretrain {name} --iterations {train_config.iterations} "
                        f"--seed {seed}" + (" --tiny" if tiny else "")
                        + (f" --batch-size {batch_size}" if batch_size else ""),
             "seed": seed, "iterations": train_config.iterations,
             "train_config": asdict(train_config), "gan_config": cfg.to_dict(),
             "wall_time_s": round(wall, 1),
             "device": device_description(),
             "torch": torch.__version__, "size_bytes": file.stat().st_size}
    manifest_file = folder / "sources.json"
    manifest = json.loads(manifest_file.read_text()) if manifest_file.exists() else {}
    manifest[name] = {**manifest.get(name, {}), **entry}
    atomic.write_json(manifest_file, manifest)
    return entry


def source_models(retrain_iterations: int | None = None, device: str = "auto",
                  progress: bool = True) -> dict:
    """Every recipe's model as ``name -> (generator, manifest entry)``.

    Without ``retrain_iterations`` these are the shipped checkpoints; with it (the
    paper profile) each recipe is trained again at that length into
    ``_build/models`` (reused when a run of that length is already there).
    """
    if not retrain_iterations:
        return {name: (load_source(name)[0], entry) for name, entry in sources_manifest().items()}
    folder = paths.build_dir() / "models"
    manifest_file = folder / "sources.json"
    models = {}
    for name in RECIPES:
        done = json.loads(manifest_file.read_text()) if manifest_file.exists() else {}
        if done.get(name, {}).get("iterations") != retrain_iterations:
            pretrain(name, iterations=retrain_iterations, device=device, out=folder,
                     progress=progress)
            done = json.loads(manifest_file.read_text())
        entry = done[name]
        models[name] = (load_model(folder / entry["file"], sha256=entry["sha256"])[0], entry)
    return models
