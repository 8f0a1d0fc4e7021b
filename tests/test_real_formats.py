"""Loaders for real datasets, tested on small files the tests write in the real formats."""

import pickle

import numpy as np
import pytest
from PIL import Image

from cgt import data


def _write_cifar10(root, n=6):
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                 b"labels": list(rng.integers(0, 10, n))}
        with open(folder / name, "wb") as handle:
            pickle.dump(batch, handle)
    names = [f"class{i}".encode() for i in range(10)]
    with open(folder / "batches.meta", "wb") as handle:
        pickle.dump({b"label_names": names}, handle)
    return folder


def test_cifar10_pickles_load_as_nhwc(tmp_path):
    folder = _write_cifar10(tmp_path)
    train = data.load_cifar(tmp_path, "train")
    assert train.images.shape == (30, 32, 32, 3) and train.classes[3] == "class3"
    with open(folder / "data_batch_1", "rb") as handle:
        first = pickle.load(handle)[b"data"][0]
    # torchvision's layout: 1024 red values, then green, then blue
    assert np.array_equal(train.images[0, :, :, 1].ravel(), first[1024:2048])
    assert len(data.load_cifar(tmp_path, "test")) == 6


def test_cifar100_fine_and_coarse_labels(tmp_path):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    for name, n in (("train", 8), ("test", 4)):
        with open(folder / name, "wb") as handle:
            pickle.dump({b"data": np.zeros((n, 3072), np.uint8), b"fine_labels": [7] * n,
                         b"coarse_labels": [1] * n}, handle)
    with open(folder / "meta", "wb") as handle:
        pickle.dump({b"fine_label_names": [f"f{i}".encode() for i in range(100)],
                     b"coarse_label_names": [f"c{i}".encode() for i in range(20)]}, handle)
    fine = data.load_cifar(tmp_path)
    coarse = data.load_cifar(tmp_path, coarse=True)
    assert fine.counts()["f7"] == 8 and len(fine.classes) == 100
    assert coarse.counts()["c1"] == 8 and len(coarse.classes) == 20


def test_missing_cifar_says_nothing_is_downloaded(tmp_path):
    with pytest.raises(FileNotFoundError, match="Nothing is downloaded"):
        data.load_cifar(tmp_path)


def test_image_folder_tree(tmp_path):
    for cls, colour in (("bird", (255, 0, 0)), ("cat", (0, 0, 255))):
        (tmp_path / cls).mkdir()
        for i in range(3):
            Image.new("RGB", (48, 40), colour).save(tmp_path / cls / f"{i}.png")
    (tmp_path / "cat" / "notes.txt").write_text("not an image")
    folder = data.load_image_folder(tmp_path, size=16)
    assert folder.classes == ["bird", "cat"] and folder.images.shape == (6, 16, 16, 3)
    assert folder.images[0, 8, 8].tolist() == [255, 0, 0]
    assert data.load_image_folder(tmp_path, size=16, grey=True).channels == 1


def test_image_folder_without_classes(tmp_path):
    with pytest.raises(FileNotFoundError, match="no class sub-folders"):
        data.load_image_folder(tmp_path)


def test_real_datasets_load_by_name_from_their_variable(tmp_path, monkeypatch):
    from cgt.data import splits
    from cgt.data.real import load_real

    monkeypatch.setenv("CGT_DATA_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("CGT_CIFAR100", raising=False)
    with pytest.raises(FileNotFoundError, match="CGT_CIFAR100"):
        data.load("cifar100")
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    for name, n in (("train", 10), ("test", 5)):
        with open(folder / name, "wb") as handle:
            pickle.dump({b"data": np.zeros((n, 3072), np.uint8), b"fine_labels": list(range(4, 4 + n)),
                         b"coarse_labels": [1] * n}, handle)
    with open(folder / "meta", "wb") as handle:
        pickle.dump({b"fine_label_names": [c.encode() for c in splits.CIFAR100_CLASSES],
                     b"coarse_label_names": [f"c{i}".encode() for i in range(20)]}, handle)
    monkeypatch.setenv("CGT_CIFAR100", str(tmp_path))
    train = data.load("cifar100", "train")
    assert train.classes == splits.CIFAR100_CLASSES and len(train) == 10
    assert data.select_classes(train, ["beaver", "bottle"]).counts() == {"beaver": 1, "bottle": 1}
    assert load_real("cifar100", "test", size=16).images.shape == (5, 16, 16, 3)
    targets = splits.CGANTRANSFER_CIFAR100["target_classes"]
    assert len(targets) == 20 and len(splits.CGANTRANSFER_CIFAR100["source_classes"]) == 80
    assert not set(targets) & set(splits.CGANTRANSFER_CIFAR100["source_classes"])
    with pytest.raises(FileNotFoundError, match="CGT_PLACES365"):
        data.load("places365")


def test_cifar10_loads_by_name_and_scores_without_a_classifier_head(tmp_path, monkeypatch):
    import torch

    from cgt.metrics.evaluate import score_generator
    from cgt.nn import GANConfig, Generator

    _write_cifar10(tmp_path, n=40)
    monkeypatch.setenv("CGT_CIFAR10", str(tmp_path))
    monkeypatch.setenv("CGT_DATA_CACHE", str(tmp_path / "cache"))
    assert len(data.load("cifar10", "train")) == 200 and len(data.load("cifar10", "test")) == 40
    torch.manual_seed(0)
    names = [f"class{i}" for i in range(10)]
    generator = Generator(GANConfig(channels=3, num_classes=10, ch=8, class_names=names))
    scores = score_generator(generator, "cifar10", "test", names, n=50)
    assert np.isfinite(scores["fid"]) and "no classifier head" in scores["classifier"]
    assert "classifier_score" not in scores
