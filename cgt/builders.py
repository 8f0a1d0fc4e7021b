"""How a run's model is rebuilt from its configuration alone: one registry, by name.

A run record, and a model file that a run exported, name the builder of their model.
The run layer looks that name up here instead of importing a module that a string
names, so a file read from disk never chooses which code runs, and nothing below the
chapters reaches up into them: every builder lives with the method it builds.

:func:`load` is the one way to load a generator that cgt wrote, whatever wrote it: a
source model by name, a model file, or a run record.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Callable

import torch

from . import atomic, planning
from .checkpoints import (built_manifest, load_source, model_from_payload, read_model_file,
                          sources_manifest)
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


def source_names() -> list[str]:
    """The source models a transfer can start from (shipped, or pretrained into _build)."""
    return sorted({*sources_manifest(), *built_manifest()})


def load(model: str | Path, which: str = "best", device="cpu") -> torch.nn.Module:
    """The generator, in eval mode, of anything cgt wrote: a source model by name
    (:func:`source_names`), a model file (``.pt``: a source's or a run's export), or a
    run record (``.json``: its builder rebuilds the untrained model from the record's
    config, and the run's ``best`` weights are loaded into it; ``last`` only an
    interrupted run still has)."""
    path = Path(model)
    if path.suffix == ".json" and path.is_file():
        return _from_record(path, which).to(device)
    if path.suffix == ".pt" and path.is_file():
        return load_generator(path, device)[0]
    if str(model) in source_names():
        return load_source(str(model), device)[0].eval()
    raise CheckpointError(f"'{model}' is neither a source model ({', '.join(source_names())}) nor "
                          f"a model file (.pt) nor a run record (.json) that exists")


def _from_record(record_file: Path, which: str) -> torch.nn.Module:
    if not record_file.is_file():
        raise FileNotFoundError(f"no run record {record_file}: run the experiment first")
    try:
        saved = json.loads(record_file.read_text())
        builder, config = saved.get("builder"), saved["config"]
    except (ValueError, AttributeError, KeyError):
        raise CheckpointError(f"{record_file} is not a run record") from None
    if not builder:
        raise CheckpointError(f"run {saved.get('name')} keeps no model to load")
    make = builder_named(builder)  # refused before any file beside the record is read
    weights = record_file.with_suffix("") / f"{which}.pt"
    if not weights.exists() and planning.writes_weights():
        raise FileNotFoundError(f"no {which}.pt beside {record_file} (status: {saved.get('status')})")
    generator = make(config)
    if weights.exists():  # a plan's runs keep none: it asks only what sampling costs
        generator.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True)["generator"])
    return generator.eval()
