"""Model files: shipped sources, sha256, bad checkpoints, the pretrain recipe."""

import json

import pytest
import torch

from cgt import checkpoints
from cgt.checkpoints import CheckpointError, export_model, load_model, load_source
from cgt.nn import Discriminator, GANConfig, Generator
from cgt.pretrain import pretrain


def test_shipped_sources_load_and_match_their_manifest():
    manifest = checkpoints.sources_manifest()
    assert {"fashion8", "animals", "emoji-objects"} <= set(manifest)
    g, d = load_source("fashion8")
    assert g.cfg.class_names == manifest["fashion8"]["classes"] and d is not None
    z, y = g.sample_inputs(4)
    with torch.no_grad():
        assert g(z, y).shape == (4, 1, 32, 32)


def test_unknown_source_lists_the_shipped_ones():
    with pytest.raises(CheckpointError, match="shipped: animals, emoji-objects, fashion8"):
        load_source("imagenet")


def _model(tmp_path, classes=3):
    cfg = GANConfig(num_classes=classes, ch=4, dim_z=8)
    path = tmp_path / f"m{classes}.pt"
    digest = export_model(path, Generator(cfg), Discriminator(cfg), half=False)
    return path, digest


def test_tampered_and_truncated_files_are_refused(tmp_path):
    path, digest = _model(tmp_path)
    load_model(path, sha256=digest)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="expected .*corrupt"):
        load_model(path, sha256=digest)
    path.write_bytes(bytes(data[: len(data) // 3]))
    with pytest.raises(CheckpointError, match="truncated"):
        load_model(path)


def test_a_different_class_count_names_the_mismatching_keys(tmp_path):
    path, _ = _model(tmp_path, classes=3)
    payload = torch.load(path, weights_only=False)
    model = Generator(GANConfig(num_classes=5, ch=4, dim_z=8))
    with pytest.raises(CheckpointError, match=r"(?s)it has 3 classes, the model 5.*shape mismatches: "
                                              r".*bn1.bias.weight: checkpoint \(3, 16\) vs model \(5, 16\)"):
        checkpoints.load_state(model, payload["generator"], "generator")
    state = dict(payload["generator"])
    state["extra.weight"] = state.pop("linear.bias")
    with pytest.raises(CheckpointError, match="(?s)missing keys \\(1\\): linear.bias.*unexpected keys \\(1\\): extra.weight"):
        checkpoints.load_state(Generator(GANConfig(num_classes=3, ch=4, dim_z=8)), state, "generator")


def test_pretrain_recipe_writes_a_loadable_model_and_manifest(tmp_path):
    entry = pretrain("fashion8", iterations=1, tiny=True, out=tmp_path, progress=False, device="cpu")
    manifest = json.loads((tmp_path / "sources.json").read_text())
    assert manifest["fashion8"]["sha256"] == entry["sha256"]
    assert entry["command"] == "python -m cgt pretrain fashion8 --iterations 1 --seed 0 --tiny"
    g, _ = load_model(tmp_path / "fashion8.pt", sha256=entry["sha256"])
    assert g.cfg.num_classes == 8


def test_paper_profile_retrains_each_recipe_once_into_the_build_folder(tmp_path, monkeypatch):
    from cgt.pretrain import RECIPES, source_models

    monkeypatch.setenv("CGT_HOME", str(tmp_path))
    monkeypatch.setenv("CGT_DATA_CACHE", str(checkpoints.paths.repo_root() / "data" / "cache"))
    models = source_models(retrain_iterations=1, device="cpu")
    assert set(models) == set(RECIPES)
    assert all(entry["iterations"] == 1 for _, entry in models.values())
    stamp = (tmp_path / "_build" / "models" / "fashion8.pt").stat().st_mtime_ns
    source_models(retrain_iterations=1, device="cpu")  # reused, not retrained
    assert (tmp_path / "_build" / "models" / "fashion8.pt").stat().st_mtime_ns == stamp
