"""`python -m cgt` commands and the cgt.api functions behind them."""

import numpy as np
import pytest
import torch
from PIL import Image

from cgt import api
from cgt.__main__ import main
from cgt.checkpoints import export_model
from cgt.nn import GANConfig, Generator


def test_sample_writes_a_grid_of_a_shipped_source(tmp_path, capsys):
    out = tmp_path / "dresses.png"
    main(["sample", "fashion8", "--out", str(out), "--class", "dress", "-n", "4"])
    image = np.asarray(Image.open(out))
    assert image.shape == (32, 4 * 33 - 1)  # one row of four grey 32×32 samples, 1 px apart
    assert image.std() > 0 and str(out) in capsys.readouterr().out


def test_sample_keeps_an_existing_file_unless_forced(tmp_path):
    out = tmp_path / "x.png"
    out.write_bytes(b"mine")
    with pytest.raises(SystemExit, match="exists; pass --force"):
        main(["sample", "fashion8", "--out", str(out), "-n", "2"])
    assert out.read_bytes() == b"mine"
    main(["sample", "fashion8", "--out", str(out), "-n", "2", "--force"])
    assert Image.open(out).size == (2 * 33 - 1, 32)


@pytest.mark.parametrize("arguments, message", [
    (["nosuch"], "neither a source model \\(animals, emoji-objects, fashion8\\)"),
    (["fashion8", "--class", "cat"], "no class 'cat' in this model; its classes: t-shirt"),
    (["fashion8", "-n", "0"], "at least 1"),
])
def test_sample_refuses_bad_input_with_a_message(tmp_path, arguments, message):
    with pytest.raises(SystemExit, match=message):
        main(["sample", *arguments, "--out", str(tmp_path / "x.png")])
    assert not (tmp_path / "x.png").exists()


class Pickled:
    def __reduce__(self):
        return (print, ("this ran while loading",))


def test_a_model_file_is_loaded_without_unpickling_code(tmp_path):
    generator = Generator(GANConfig(num_classes=2, ch=4, dim_z=8, class_names=["a", "b"]))
    export_model(tmp_path / "mine.pt", generator, None)
    loaded = api.load(tmp_path / "mine.pt")
    assert loaded.cfg.class_names == ["a", "b"]
    assert api.sample_grid(loaded, 3, ["b"]).shape == (32, 3 * 33 - 1, 1)
    torch.save({"format": "cgt-gan-1", "payload": Pickled()},
               tmp_path / "pickled.pt")  # an object that only unpickling code could rebuild
    with pytest.raises(api.CheckpointError, match="not a readable checkpoint"):
        api.load(tmp_path / "pickled.pt")


def _write(folder, name, mode, size, value=128):
    folder.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, value if mode == "L" else (value, 40, 200)).save(folder / name)


def test_images_of_any_mode_and_size_become_the_sources_channels_and_resolution(tmp_path):
    _write(tmp_path / "pets" / "cat", "a.png", "RGB", (64, 48))
    _write(tmp_path / "pets" / "cat", "b.jpg", "RGB", (40, 40))
    _write(tmp_path / "pets" / "dog", "c.png", "L", (33, 90))
    grey = api.images_for(tmp_path / "pets", api.load("fashion8"))  # a grey source
    assert grey.images.shape == (3, 32, 32, 1) and grey.classes == ["cat", "dog"]
    assert "L/RGB" in grey.info["conversion"] and "as grey" in grey.info["conversion"]
    colour = api.images_for(tmp_path / "pets", api.load("emoji-objects"))  # an RGB source
    assert colour.images.shape == (3, 32, 32, 3) and colour.labels.tolist() == [0, 0, 1]
    _write(tmp_path / "flat", "x.png", "RGB", (20, 30))
    one = api.images_for(tmp_path / "flat", api.load("fashion8"), one_domain=True)
    assert one.classes == ["flat"] and len(one) == 1


@pytest.mark.parametrize("setup, message", [
    (lambda root: None, "is not a folder"),
    (lambda root: root.mkdir(), "has no class sub-folders"),
    (lambda root: (root / "cat").mkdir(parents=True), "no images"),
    (lambda root: (root / "cat").mkdir(parents=True) or (root / "cat" / "bad.png").write_bytes(b"x"),
     "bad.png is not a readable image"),
])
def test_a_bad_image_folder_is_refused_with_what_to_do(tmp_path, setup, message):
    setup(tmp_path / "mine")
    with pytest.raises(api.UsageError, match=message):
        api.images_for(tmp_path / "mine", api.load("fashion8"))
