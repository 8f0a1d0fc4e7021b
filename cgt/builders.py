"""How a run's model is rebuilt from its configuration alone: one registry, by name.

A run record, and a model file that a run exported, name the builder of their model.
The run layer looks that name up here instead of importing a module that a string
names, so a file read from disk never chooses which code runs, and nothing below the
chapters reaches up into them: every builder lives with the method it builds.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Callable

import torch

from . import atomic
from .checkpoints import model_from_payload, read_model_file
from .methods import bsa, ctf, transfer
from .state_dicts import CheckpointError, load_state

BUILDERS: dict[str, Callable[[dict], torch.nn.Module]] = {
    "transfer": transfer.build_generator,  # a source with new classes (every Table 1 method)
    "bsa-adapted": bsa.build_adapted,  # a frozen source with BSA's scale/shift and codes
    "ctf": ctf.build_from_config,  # CTF's conditional generator, with G_LH when it has one
}
# How records and model files written before this registry named their builders.
FORMER_NAMES = {"cgt.methods.runner:build_generator": "transfer",
                "cgt.experiments.bsa:build_adapted": "bsa-adapted",
                "cgt.experiments.ctf:build_from_config": "ctf"}

RUN_MODEL_FORMAT = "cgt-run-1"


def builder_named(name) -> Callable[[dict], torch.nn.Module]:
    """The registered builder ``name`` (or a former name of one); anything else is refused,
    so that a model file or run record cannot choose which code runs."""
    name = FORMER_NAMES.get(name, name) if isinstance(name, str) else repr(name)
    if name not in BUILDERS:
        raise CheckpointError(f"'{name}' is not a cgt model builder (known: "
                              f"{', '.join(sorted(BUILDERS))})")
    return BUILDERS[name]


def build(name: str, config: dict) -> torch.nn.Module:
    """The untrained model that builder ``name`` makes of ``config``."""
    return builder_named(name)(config)


def export_run_model(path: Path, builder: str, config: dict, generator: torch.nn.Module) -> str:
    """Write any generator a run trained (class-extended, BSA-adapted, CTF) as one model
    file that :func:`load_generator` reads back: its builder, config and weights."""
    builder_named(builder)
    payload = {"format": RUN_MODEL_FORMAT, "builder": builder, "config": config,
               "generator": generator.state_dict()}
    atomic.save_torch(payload, path)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_generator(path: Path, device="cpu", sha256: str | None = None):
    """(generator, discriminator or None) from any cgt model file: a source model
    (:func:`cgt.checkpoints.export_model`) or a run's model (:func:`export_run_model`,
    which keeps no discriminator)."""
    payload = read_model_file(Path(path), sha256)
    if payload.get("format") != RUN_MODEL_FORMAT:
        return model_from_payload(payload, Path(path), device)
    generator = build(payload["builder"], payload["config"])
    load_state(generator, payload["generator"], "generator")
    return generator.to(device).eval(), None
