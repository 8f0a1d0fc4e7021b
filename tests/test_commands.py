"""The `cgt` command (also `python -m cgt`) and the cgt.api functions behind it."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from cgt import api
from cgt import train as train_module
from cgt.__main__ import TOOLS, main
from cgt.builders import load_generator
from cgt.checkpoints import export_model
from cgt.methods import bsa as bsa_module
from cgt.nn import GANConfig, Generator
from cgt.runs import RunRecord


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
    (["nosuch"], "neither a source model \\(animals, emoji-objects, fashion8, fashion8-16\\)"),
    (["fashion8", "--class", "cat"], "no class 'cat' in this model; its classes: t-shirt"),
    (["fashion8", "-n", "0"], "at least 1"),
])
def test_sample_refuses_bad_input_with_a_message(tmp_path, arguments, message):
    with pytest.raises(SystemExit, match=message):
        main(["sample", *arguments, "--out", str(tmp_path / "x.png")])
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize("tool", sorted(TOOLS))
def test_every_tool_is_a_sub_command_of_the_one_command(tool, capsys):
    with pytest.raises(SystemExit) as done:
        main([tool, "--help"])
    assert done.value.code == 0 and capsys.readouterr().out.startswith(f"usage: cgt {tool}")


def test_a_tools_missing_file_is_one_error_line_not_a_traceback(tmp_path):
    with pytest.raises(SystemExit) as done:
        main(["plan", "--timeout-of", str(tmp_path / "plan.json")])
    assert str(done.value.code).startswith("error: ") and "plan.json" in str(done.value.code)


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


def _pets(root, mode="RGB", per_class=3):
    """A tiny ImageFolder written as a user has one: odd sizes, the other channel count."""
    rng = np.random.default_rng(0)
    for c, name in enumerate(["cat", "dog"]):
        folder = root / name
        folder.mkdir(parents=True)
        for i in range(per_class):
            pixels = (rng.random((37, 45, 3)) * 255).astype(np.uint8)
            pixels[..., c] = 255  # the classes differ
            Image.fromarray(pixels).convert(mode).save(folder / f"{i}.png")
    return root


def test_transfer_writes_a_model_samples_and_a_report_that_sample_reads(tmp_path, capsys):
    images, out = _pets(tmp_path / "pets"), tmp_path / "out"
    command = ["transfer", "cgantransfer", "--source", "fashion8", "--images", str(images),
               "--out", str(out), "--shots", "2", "--iterations", "2", "--profile", "smoke", "--quiet"]
    main(command)  # RGB images into a grey source
    report = json.loads((out / "report.json").read_text())
    assert report["status"] == "complete" and np.isfinite(report["score"]["fid"])
    assert report["score"]["n_real"] == 4 and report["images"]["per_class"] == {"cat": 2, "dog": 2}
    assert "as grey" in report["images"]["conversion"] and "--shots 2" in report["command"]
    assert "not Inception" in (out / "report.md").read_text()
    assert np.asarray(Image.open(out / "samples.png")).std() > 0
    generator, _ = load_generator(out / "model.pt")  # a model file like any other
    assert generator.cfg.class_names[-2:] == ["cat", "dog"]
    payload = torch.load(out / "model.pt", weights_only=True)
    assert payload["builder"] == "transfer"
    payload["builder"] = "cgt.methods.runner:build_generator"  # as files named it before
    torch.save(payload, tmp_path / "former.pt")
    former, _ = load_generator(tmp_path / "former.pt")
    assert all(torch.equal(a, b) for a, b in zip(former.state_dict().values(),
                                                 generator.state_dict().values()))
    main(["sample", str(out / "model.pt"), "--class", "dog", "-n", "3", "--out", str(tmp_path / "d.png")])
    assert Image.open(tmp_path / "d.png").size == (3 * 33 - 1, 32)
    started = json.loads((out / "run.json").read_text())["started"]
    main(command)  # the same command again: the finished run is reused, not retrained
    assert json.loads((out / "run.json").read_text())["started"] == started
    assert "FID" in capsys.readouterr().out


def test_adapt_turns_grey_images_into_an_rgb_source_and_keeps_other_runs(tmp_path):
    images, out = tmp_path / "faces", tmp_path / "out"
    for i in range(3):
        _write(images, f"{i}.jpg", "L", (50 + i, 40), value=60 * i)
    main(["adapt", "--source", "emoji-objects", "--images", str(images), "--out", str(out),
          "--iterations", "2", "--profile", "smoke", "--quiet"])
    report = json.loads((out / "report.json").read_text())
    assert report["arguments"]["method"] == "bsa" and "as RGB" in report["images"]["conversion"]
    assert api.load(out / "model.pt").latents.shape[0] == 3  # one code per image
    with pytest.raises(SystemExit, match="holds the outputs of another run"):
        main(["adapt", "--source", "emoji-objects", "--images", str(images), "--out", str(out),
              "--iterations", "3", "--profile", "smoke", "--quiet"])
    assert json.loads((out / "report.json").read_text()) == report  # nothing overwritten


def test_an_interrupted_transfer_resumes_where_it_stopped(tmp_path, monkeypatch):
    images = api.images_for(_pets(tmp_path / "pets"), api.load("fashion8"))
    steps = []
    real_step = train_module._generator_step

    def step(loop, regulariser):
        steps.append(1)
        if len(steps) == 3:  # killed after the checkpoint of iteration 2
            raise KeyboardInterrupt
        return real_step(loop, regulariser)

    monkeypatch.setattr(train_module, "_generator_step", step)
    arguments = dict(iterations=4, profile="smoke", progress=False)
    with pytest.raises(KeyboardInterrupt):
        api.transfer("transfergan", "fashion8", images, tmp_path / "out", **arguments)
    assert (tmp_path / "out" / "run" / "last.pt").exists()
    outcome = api.transfer("transfergan", "fashion8", images, tmp_path / "out", **arguments)
    assert len(steps) == 3 + 2  # iterations 3 and 4 only
    history = json.loads((tmp_path / "out" / "run.json").read_text())["metrics"]["history"]
    assert [h["iteration"] for h in history] == [0, 2, 4] and outcome.report["status"] == "complete"


@pytest.mark.parametrize("arguments, message", [
    (["--source", "nosuch"], "unknown source 'nosuch'; valid: animals, emoji-objects, fashion8"),
    (["--shots", "4"], "only 3 are available: lower --shots"),
    (["--out", "{tmp}/pets/cat/0.png/out"], "cannot write to"),
])
def test_transfer_refuses_bad_input_with_a_message(tmp_path, arguments, message):
    images = _pets(tmp_path / "pets")
    defaults = {"--source": "fashion8", "--out": str(tmp_path / "out")}
    given = dict(zip(arguments[::2], [a.format(tmp=tmp_path) for a in arguments[1::2]]))
    options = [x for k, v in {**defaults, **given}.items() for x in (k, v)]
    with pytest.raises(SystemExit, match=message):
        main(["transfer", "scratch", "--images", str(images), *options, "--profile", "smoke"])
    assert not (tmp_path / "out").exists()


def test_the_python_functions_refuse_images_the_source_cannot_make(tmp_path):
    wrong = api.images_for(_pets(tmp_path / "pets"), api.load("emoji-objects"))  # RGB
    with pytest.raises(api.UsageError, match="images_for"):
        api.transfer("cgantransfer", "fashion8", wrong, tmp_path / "out", profile="smoke")


def test_a_model_file_or_record_cannot_choose_which_code_runs(tmp_path):
    torch.save({"format": "cgt-run-1", "builder": "os:system", "config": "echo hacked",
                "generator": {}}, tmp_path / "evil.pt")
    (tmp_path / "evil.json").write_text(json.dumps({"builder": "os:system", "config": "echo hacked"}))
    (tmp_path / "odd.json").write_text(json.dumps({"builder": ["os", "system"], "config": {}}))
    for name in ("evil.pt", "evil.json", "odd.json"):
        with pytest.raises(api.CheckpointError, match="not a cgt model builder"):
            api.load(tmp_path / name)


def test_an_interrupted_adaptation_resumes_where_it_stopped(tmp_path, monkeypatch):
    for i in range(3):
        _write(tmp_path / "faces", f"{i}.png", "L", (40, 40), value=70 * i)
    images = api.images_for(tmp_path / "faces", api.load("animals"), one_domain=True)
    arguments = dict(iterations=4, profile="smoke", progress=False)
    done = api.adapt("animals", images, tmp_path / "whole", **arguments)
    calls = []
    real_loss = bsa_module.bsa_loss

    def loss(*args, **kwargs):
        calls.append(1)
        if len(calls) == 5:  # killed in iteration 4: it resumes from the checkpoint of iteration 2
            raise KeyboardInterrupt
        return real_loss(*args, **kwargs)

    monkeypatch.setattr(bsa_module, "bsa_loss", loss)
    with pytest.raises(KeyboardInterrupt):
        api.adapt("animals", images, tmp_path / "out", **arguments)
    assert (tmp_path / "out" / "run" / "last.pt").exists()
    resumed = api.adapt("animals", images, tmp_path / "out", **arguments)
    assert len(calls) == 5 + 2  # iterations 3 and 4 only
    assert not (tmp_path / "out" / "run" / "last.pt").exists()
    history = [json.loads((folder / "run.json").read_text())["metrics"]["history"]
               for folder in (tmp_path / "whole", tmp_path / "out")]
    assert history[0] == history[1]  # the same run as one without the interruption
    assert resumed.report["score"] == done.report["score"]


def test_ctf_trains_both_phases_on_a_folder_and_its_low_quality_images(tmp_path, capsys):
    images, low, out = _pets(tmp_path / "pets"), tmp_path / "small", tmp_path / "out"
    for i in range(4):
        _write(low, f"{i}.png", "RGB", (8, 8), value=50 * i)
    main(["ctf", "--images", str(images), "--low-quality", str(low), "--out", str(out),
          "--iterations", "2", "--profile", "smoke", "--quiet"])
    report = json.loads((out / "report.json").read_text())
    assert report["status"] == "complete" and report["arguments"]["low_quality"].startswith("4 images")
    assert json.loads((out / "phase1.json").read_text())["status"] == "complete"
    generator = api.load(out / "model.pt")  # G_A with G_LH and the low-quality pool
    assert generator.pool.shape == (4, 3, 32, 32) and generator.cfg.class_names == ["cat", "dog"]
    with pytest.raises(SystemExit):
        main(["ctf", "--images", str(images), "--low-quality", str(low), "--downsample", "8",
              "--out", str(out)])
    assert "not allowed with argument --low-quality" in capsys.readouterr().err


def test_a_report_warns_of_collapse_and_of_a_start_that_stayed_best():
    record = RunRecord("transfer", "run", "smoke", metrics={
        "history": [{"iteration": 0, "fid": 5.0, "collapsed": False},
                    {"iteration": 2, "fid": 9.0, "collapsed": True}], "best": {"iteration": 0}})
    collapsed, start = api._warnings(record)
    assert "(collapsed) at iteration(s) 2" in collapsed and "untrained starting point" in start
    record.metrics["best"], record.metrics["history"][1]["collapsed"] = {"iteration": 2}, False
    assert api._warnings(record) == []
