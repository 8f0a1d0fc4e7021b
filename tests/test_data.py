"""The embedded data: counts, checksums, helpers and their error messages."""

import gzip
import json
import os
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest

from cgt import data, paths
from cgt.data import embedded, sources

ROOT = Path(__file__).resolve().parents[1]


def test_gb2312_level1_is_the_3755_characters_in_code_order():
    chars = data.gb2312_level1()
    assert len(chars) == 3755 == len(set(chars))
    assert chars[0] == "啊" and chars[-1] == "座"


@pytest.mark.parametrize("name", data.DATASETS)
def test_tiny_variant_matches_committed_checksums(name):
    built = data.build([name], tiny=True, progress=False)[name]
    committed = json.loads((ROOT / "data" / "manifest.json").read_text())["tiny-size32"][name]
    assert built["sha256"] == committed["sha256"]
    assert built["counts"] == committed["counts"]


def test_loaded_arrays_have_the_documented_shapes():
    fashion = data.load("fashion_mnist", tiny=True)
    assert fashion.images.shape == (1000, 32, 32, 1) and fashion.images.dtype == np.uint8
    assert fashion.counts() == {c: 100 for c in embedded.FASHION_CLASSES}
    digits = data.load("digits", "test", tiny=True)
    assert digits.images.shape[1:] == (8, 8, 1) and digits.images.max() == 255
    emoji = data.load("emoji", tiny=True)
    faces = sum(s.startswith("face-") for s in emoji.info["subgroups"])
    assert emoji.channels == 3 and faces > 100 and set(emoji.counts().values()) != {0}
    assert min(emoji.counts().values()) >= embedded.TINY_EMOJI_PER_GROUP
    hanzi = data.load("hanzi", "test", tiny=True)
    assert len(hanzi) == 3 * embedded.TINY_HANZI_CLASSES  # three held-out typefaces
    tensor = fashion.to_tensor()
    assert tensor.shape == (1000, 1, 32, 32) and -1 <= tensor.min() < tensor.max() <= 1


def test_k_shot_is_seeded_nested_and_balanced():
    fashion = data.load("fashion_mnist", tiny=True)
    ten, twenty_five = data.k_shot(fashion, 10, seed=3), data.k_shot(fashion, 25, seed=3)
    assert set(ten.counts().values()) == {10}
    assert np.array_equal(data.k_shot(fashion, 10, seed=3).images, ten.images)
    assert not np.array_equal(data.k_shot(fashion, 10, seed=4).images, ten.images)
    small = {img.tobytes() for img in ten.images}
    assert small <= {img.tobytes() for img in twenty_five.images}


def test_k_larger_than_available_says_so():
    fashion = data.load("fashion_mnist", tiny=True)
    with pytest.raises(ValueError, match="k=600 .* only 100 are available"):
        data.k_shot(fashion, 600)
    with pytest.raises(ValueError, match="at least 1"):
        data.k_shot(fashion, 0)


def test_unknown_names_list_the_valid_ones():
    fashion = data.load("fashion_mnist", tiny=True)
    with pytest.raises(KeyError, match="'sweater'.*valid: t-shirt, trouser"):
        data.select_classes(fashion, ["sweater"])
    with pytest.raises(KeyError, match="valid: fashion_mnist, animal_shape"):
        data.load("cifar")
    with pytest.raises(ValueError, match="valid: train, test"):
        data.load("lfw", "validation")


def test_select_classes_relabels_in_the_given_order():
    fashion = data.load("fashion_mnist", tiny=True)
    pair = data.select_classes(fashion, ["shirt", "ankle-boot"])
    assert pair.classes == ["shirt", "ankle-boot"]
    assert pair.counts() == {"shirt": 100, "ankle-boot": 100}
    original = fashion.labels[np.isin(fashion.labels, [6, 9])]
    assert np.array_equal(pair.labels, (original == 9).astype(np.int64))


def test_low_quality_shrinks_and_restores_size():
    images = data.load("fashion_mnist", tiny=True).images[:4]
    assert data.low_quality(images, 8).shape == (4, 8, 8, 1)
    back = data.low_quality(images, 8, back_to=32)
    assert back.shape == images.shape
    assert np.abs(back.astype(int) - images).mean() > 5  # detail really was lost


def test_wrong_images_are_refused():
    with pytest.raises(ValueError, match="uint8"):
        data.ImageSet(np.zeros((2, 8, 8, 1), np.float32), np.zeros(2, np.int64), ["a"])
    with pytest.raises(ValueError, match="2 images but 3 labels"):
        data.ImageSet(np.zeros((2, 8, 8, 1), np.uint8), np.zeros(3, np.int64), ["a"])


def test_numpy_only_unpickler_refuses_code(tmp_path):
    evil = tmp_path / "evil.gz"
    with gzip.open(evil, "wb") as handle:
        pickle.dump(os.getcwd, handle)  # any global that is not a numpy array
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        embedded.load_numpy_pickle(evil)
    fine = tmp_path / "fine.gz"
    with gzip.open(fine, "wb") as handle:
        pickle.dump(np.arange(5, dtype=np.uint8), handle)
    assert embedded.load_numpy_pickle(fine).tolist() == [0, 1, 2, 3, 4]


def test_missing_debian_source_names_the_package_and_the_command(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no apt-get here
    monkeypatch.delenv("CGT_DEB_DIR", raising=False)
    with pytest.raises(sources.MissingSourceError,
                       match="'fonts-smiley-sans'.*apt-get download fonts-smiley-sans.*CGT_DEB_DIR"):
        sources.deb_root("fonts-smiley-sans", cache=tmp_path)


def test_a_tampered_wheel_is_refused(tmp_path):
    folder = tmp_path / "wheels"
    folder.mkdir()
    with zipfile.ZipFile(folder / "scikit_learn-1.9.1-cp311-none-any.whl", "w") as archive:
        archive.writestr("sklearn/datasets/data/digits.csv.gz", b"not the digits")
    with pytest.raises(sources.MissingSourceError, match="sha256 .* expected 09f66e6d"):
        sources.wheel_member("scikit-learn", "sklearn/datasets/data/digits.csv.gz", cache=tmp_path)


def test_data_cache_is_git_ignored():
    ignored = (ROOT / ".gitignore").read_text().split()
    assert "data/cache/" in ignored and paths.data_cache().is_relative_to(ROOT)
