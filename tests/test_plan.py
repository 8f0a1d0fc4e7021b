"""``python -m cgt plan``: the paper profile's dry run on stand-in files in the real
formats, and a data demand that cannot be met failing the plan by name."""

import json
import math
import os
import pickle
import subprocess
import sys
from contextlib import nullcontext
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.flop_counter import FlopCounterMode

import cgt.train

from cgt import atomic, plan, planning, profiles
from cgt.biggan_pytorch import export_state
from cgt.data import splits
from cgt.experiments import cgantransfer as cgantransfer_study
from cgt.experiments import ctf as ctf_study
from cgt.nn import Discriminator, GANConfig, Generator, imagenet128_config
from cgt.train import TrainConfig, train_gan

ROOT = Path(__file__).resolve().parents[1]
CIFAR10_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
                 "truck"]


def _pixels(rng, count: int) -> np.ndarray:
    return rng.integers(0, 256, (count, 3 * 32 * 32), dtype=np.uint8)  # CIFAR rows: R, G, B planes


def write_cifar10(root: Path, per_class: int, rng) -> Path:
    """torchvision's ``cifar-10-batches-py``: five training batches, a test batch, meta."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    files = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for file in files:
        labels = [c for c in range(10) for _ in range(per_class)]
        batch = {b"batch_label": file.encode(), b"labels": labels, b"data": _pixels(rng, len(labels)),
                 b"filenames": [f"{file}_{i}.png".encode() for i in range(len(labels))]}
        with open(folder / file, "wb") as handle:
            pickle.dump(batch, handle)
    with open(folder / "batches.meta", "wb") as handle:
        pickle.dump({b"num_cases_per_batch": 10 * per_class, b"num_vis": 3072,
                     b"label_names": [n.encode() for n in CIFAR10_NAMES]}, handle)
    return root


def write_cifar100(root: Path, per_class: int, rng) -> Path:
    """torchvision's ``cifar-100-python``: train, test, meta (fine and coarse labels)."""
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    for file in ("train", "test"):
        fine = [c for c in range(100) for _ in range(per_class)]
        batch = {b"filenames": [f"{file}_{i}.png".encode() for i in range(len(fine))],
                 b"batch_label": file.encode(), b"fine_labels": fine,
                 b"coarse_labels": [c // 5 for c in fine], b"data": _pixels(rng, len(fine))}
        with open(folder / file, "wb") as handle:
            pickle.dump(batch, handle)
    with open(folder / "meta", "wb") as handle:
        pickle.dump({b"fine_label_names": [n.encode() for n in splits.CIFAR100_CLASSES],
                     b"coarse_label_names": [f"superclass_{i}".encode() for i in range(20)]}, handle)
    return root


def write_places365(root: Path, per_class: int, rng) -> Path:
    """An ImageFolder of cGANTransfer's five Places365 classes, JPEGs of mixed sizes."""
    for name in splits.CGANTRANSFER_PLACES365:
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            shape = (rng.integers(100, 160), rng.integers(100, 160), 3)
            pixels = rng.integers(0, 256, shape, dtype=np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i:08d}.jpg")
    return root


def write_biggan_imagenet128(folder: Path) -> Path:
    """G_ema.pth and D.pth with BigGAN-PyTorch's ImageNet-128 keys and shapes (PyTorch's
    default init: the orthogonal one only costs time here, the layout is the same)."""
    folder.mkdir(parents=True)
    torch.manual_seed(0)
    cfg = replace(imagenet128_config(), init="default")
    torch.save(export_state(Generator(cfg)), folder / "G_ema.pth")
    torch.save(export_state(Discriminator(cfg)), folder / "D.pth")
    return folder


def test_a_planned_loop_is_measured_at_a_small_batch_and_scaled_to_the_asked_one():
    cfg = GANConfig(resolution=32, channels=1, num_classes=2, ch=4, dim_z=8)
    torch.manual_seed(0)
    generator, discriminator = Generator(cfg), Discriminator(cfg)
    images, labels = torch.rand(12, 1, 32, 32) * 2 - 1, torch.arange(12) % 2
    asked = TrainConfig(iterations=1000, batch_size=32, eval_every=100, device="cpu")
    with planning.session() as session, planning.run_named("demo", "run"):
        result = train_gan(generator, discriminator, images, labels, asked, progress=False)
    assert result.iterations == planning.STEPS  # it stopped after the measured steps
    planned = session.runs[("demo", "run")]
    (loop,) = planned.loops
    assert (loop.iterations, loop.batch_size, loop.measured_batch) == (1000, 32, planning.BATCH)
    assert loop.evaluations == 11  # at 0, 100, …, 1000
    assert loop.flops_per_step > 0 and loop.seconds_per_step > 0
    row = plan.run_row(planned, "demo", "a step")
    assert row["steps"] == 1000
    assert row["train_flops"] == pytest.approx(1000 * loop.flops_per_step * 32 / planning.BATCH)
    # outside a session the same call trains for as long as it is asked
    assert train_gan(generator, discriminator, images, labels,
                     TrainConfig(iterations=3, batch_size=4, device="cpu"), progress=False).iterations == 3


def test_the_paper_profile_runs_dry_on_stand_ins_in_the_real_formats(tmp_path):
    rng = np.random.default_rng(0)
    env = {**os.environ,
           "CGT_CIFAR10": str(write_cifar10(tmp_path / "cifar10", 3, rng)),
           "CGT_CIFAR100": str(write_cifar100(tmp_path / "cifar100", 3, rng)),
           "CGT_PLACES365": str(write_places365(tmp_path / "places365", 4, rng)),
           "CGT_BIGGAN_IMAGENET": str(write_biggan_imagenet128(tmp_path / "biggan")),
           "CGT_DATA_CACHE": str(ROOT / "data" / "cache")}
    out = tmp_path / "plan.json"
    done = subprocess.run([sys.executable, "-m", "cgt", "plan", "--profile", "paper", "--dry-run",
                           "--out", str(out)], cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    saved = json.loads(out.read_text())
    assert set(saved["totals"]) == set(plan.CHAPTERS) | {"all"}
    runs = {(r["chapter"], r["run"]): r for r in saved["runs"]}
    # the paper-only paths ran: source retraining, and each real dataset's runs
    assert ("cgantransfer", "pretrain/cifar100-80") in runs and ("foundations", "pretrain/fashion8") in runs
    names = " ".join(name for _, name in runs)
    for dataset in ("cifar100", "places365", "cifar10"):
        assert f"-{dataset}" in names, dataset
    # every run that trains was measured at the paper's length and batch
    sizes = profiles.sizes("cgantransfer", "paper")
    grid = runs[("cgantransfer", f"cgantransfer-fashion_mnist-2x{sizes['focus'][1]}-s0")]
    assert grid["loops"] == [f"gan {sizes['iterations']}×{sizes['batch_size']}"]
    for row in saved["runs"]:
        assert all(math.isfinite(f) and f > 0 for f in row["flops_per_step"]), row
        if row["loops"]:
            assert row["seconds_here"] > 0, row
    assert "job time limit" in done.stdout and saved["timeout_minutes_here"] > 60


def test_a_demand_that_a_dataset_cannot_meet_fails_the_plan_by_name(tmp_path, monkeypatch, capsys):
    # Fewer HQ at 90 % of 6,000 plus 1,200 low-quality images apart: 6,600 of a class of 6,000
    table = {**profiles.SIZES["ctf"]["paper"]["table1"]}
    monkeypatch.setitem(profiles.SIZES["ctf"]["paper"], "fraction", 0.9)
    monkeypatch.setitem(plan.CHAPTERS, "ctf", lambda profile, s: [
        step for step in ctf_study.steps(profile, s) if step[0] == "Table I"])
    assert table["per_class"] == 6000 and table["low_count"] == 12000
    status = plan.main(["--profile", "paper", "--chapter", "ctf", "--dry-run",
                        "--out", str(tmp_path / "p.json")])
    printed = capsys.readouterr().out
    assert status == 1
    assert ("unmet data demand: ctf/ctf-fashion_mnist10-54000+12000-downsampled-s0 (Table I): "
            "fashion_mnist: 6600 high-quality + low-quality images apart per class asked, "
            "6000 there") in printed


def test_runs_on_absent_real_data_are_planned_on_stand_ins_and_say_what_they_need(
        tmp_path, monkeypatch, capsys):
    from cgt.data import real

    monkeypatch.setattr(real, "real_root", lambda name: None)  # whatever this machine holds
    monkeypatch.setenv("CGT_BIGGAN_IMAGENET", str(tmp_path / "absent"))
    monkeypatch.setitem(plan.CHAPTERS, "ctf", lambda profile, s: [
        step for step in ctf_study.steps(profile, s) if step[0] == "Table I on CIFAR-10"])
    monkeypatch.setitem(plan.CHAPTERS, "cgantransfer", lambda profile, s: [
        step for step in cgantransfer_study.steps(profile, s) if step[0] in ("CIFAR-100", "Places365")])
    out = tmp_path / "p.json"
    status = plan.main(["--profile", "paper", "--chapter", "ctf", "--chapter", "cgantransfer",
                        "--dry-run", "--out", str(out)])
    printed = capsys.readouterr().out
    assert status == 0, printed  # absent data is no unmet demand: the book builds without it
    saved = json.loads(out.read_text())
    needs = {r["run"]: r["needs"] for r in saved["runs"]}
    assert needs["pretrain/cifar100-80"] == ["CGT_CIFAR100"]
    places = [run for run in needs if "places365" in run]
    assert places and all(needs[run] == ["CGT_BIGGAN_IMAGENET", "CGT_PLACES365"] for run in places)
    ctf_runs = [r for r in saved["runs"] if r["chapter"] == "ctf"]
    assert ctf_runs and all(r["needs"] == ["CGT_CIFAR10"] for r in ctf_runs)
    assert all(row["loops"] and row["train_flops"] > 0 for row in saved["runs"])
    assert saved["totals"]["all"]["runs_on_stand_ins"] == len(saved["runs"])
    assert saved["totals"]["all"]["needs"] == ["CGT_BIGGAN_IMAGENET", "CGT_CIFAR10", "CGT_CIFAR100",
                                               "CGT_PLACES365"]
    assert "runs need CGT_BIGGAN_IMAGENET, CGT_CIFAR10, CGT_CIFAR100, CGT_PLACES365" in printed
    # demands on a stand-in are checked against the published sizes, not the stand-in's 16
    assert not any(row["unmet"] for row in saved["runs"])


def test_a_run_of_a_measured_shape_takes_over_its_measurements(tmp_path):
    """Runs that differ only in their seeds cost the same: the plan measures the first."""
    cfg = GANConfig(resolution=32, channels=1, num_classes=2, ch=4, dim_z=8)
    images, labels = torch.rand(12, 1, 32, 32) * 2 - 1, torch.arange(12) % 2
    from cgt import runs

    def spec(seed):
        return runs.RunSpec("demo", f"run-s{seed}", "smoke", {"task": {"seed": seed, "n": 12}},
                            seed=seed, home=str(tmp_path))

    def work(record, folder):
        torch.manual_seed(0)
        train_gan(Generator(cfg), Discriminator(cfg), images, labels,
                  TrainConfig(iterations=100, batch_size=4, device="cpu"), progress=False)
        record.metrics["trained"] = True
        atomic.write_text(folder / "notes.txt", "first")

    assert spec(0).shape == spec(1).shape and spec(0).key != spec(1).key
    with planning.session() as session:
        runs.run(spec(0), work)
        second = runs.run(spec(1), lambda record, folder: pytest.fail("measured again"))
    assert second.metrics == {"trained": True} and second.status == "complete"
    first, copied = session.runs[("demo", "run-s0")], session.runs[("demo", "run-s1")]
    assert copied.loops == first.loops and copied.loops[0] is not first.loops[0]
    assert plan.run_row(copied, "demo", "x")["train_flops"] == plan.run_row(first, "demo", "x")["train_flops"]
    # the twin's files are linked, not copied, and the project's one writer replaces a
    # file instead of writing into it, so a later write to one leaves the other as it was
    ours, theirs = tmp_path / "run-s1" / "notes.txt", tmp_path / "run-s0" / "notes.txt"
    assert ours.stat().st_ino == theirs.stat().st_ino
    atomic.write_text(theirs, "changed")
    assert ours.read_text() == "first"


@pytest.mark.parametrize("mode, writes", [("plan", False), ("dry run", True), ("no plan", True)])
def test_only_a_plan_that_is_not_a_dry_run_keeps_no_weights(tmp_path, mode, writes):
    """A plan's few steps decide nothing, so it writes no best.pt (seconds a 128-px run);
    a dry run checks that code path, and a real run needs it."""
    cfg = GANConfig(resolution=32, channels=1, num_classes=2, ch=4, dim_z=8)
    images, labels = torch.rand(12, 1, 32, 32) * 2 - 1, torch.arange(12) % 2
    context = nullcontext() if mode == "no plan" else planning.session(dry_run=mode == "dry run")
    with context, (nullcontext() if mode == "no plan" else planning.run_named("demo", mode)):
        train_gan(Generator(cfg), Discriminator(cfg), images, labels,
                  TrainConfig(iterations=2, batch_size=4, eval_every=1, device="cpu"),
                  evaluate=lambda g, it: {"fid": 1.0}, out_dir=tmp_path, progress=False)
    assert (tmp_path / "best.pt").exists() == writes


def test_larger_images_are_measured_at_as_many_pixels_as_the_32px_batch():
    with planning.session():
        for resolution, batch, measured in ((32, 50, planning.BATCH), (32, 4, 4), (64, 50, 2),
                                            (128, 50, 1)):
            with planning.training("gan", 100, batch, 10, resolution) as loop:
                assert loop.measured_batch == measured, resolution
        assert planning.samples(1000) == planning.SAMPLES and planning.samples(1000, 128) == 2
    assert planning.samples(1000, 128) == 1000  # outside a plan: all that is asked


def test_a_loop_whose_step_was_measured_before_takes_its_figures_and_no_step():
    cfg = GANConfig(resolution=32, channels=1, num_classes=2, ch=4, dim_z=8)
    images, labels = torch.rand(12, 1, 32, 32) * 2 - 1, torch.arange(12) % 2
    asked = TrainConfig(iterations=1000, batch_size=8, eval_every=100, device="cpu")
    evaluated = []
    with planning.session() as session:
        for name in ("first", "second"):
            torch.manual_seed(0)
            generator = Generator(cfg)
            start = {k: v.clone() for k, v in generator.state_dict().items()}
            with planning.run_named("demo", name):
                result = train_gan(generator, Discriminator(cfg), images, labels, asked,
                                   evaluate=lambda g, it: evaluated.append(name) or {"fid": 1.0},
                                   progress=False)
            stepped = any(not torch.equal(v, generator.state_dict()[k]) for k, v in start.items())
            assert stepped == (name == "first"), name
    assert evaluated == ["first", "second"]  # the loop still evaluates, as the run would
    (first,), (second,) = session.runs[("demo", "first")].loops, session.runs[("demo", "second")].loops
    assert (second.flops_per_step, second.seconds_per_step) == (first.flops_per_step,
                                                                first.seconds_per_step)
    assert second.iterations == 1000 and second.evaluations == first.evaluations


@pytest.mark.parametrize("long_step_s, steps", [(0.0, 1), (float("inf"), planning.STEPS)])
def test_a_long_first_step_is_also_the_timed_one(monkeypatch, long_step_s, steps):
    """A cold loop's counted first step warms up too; when it is long, warming up is a
    small share of it and it is taken as the timed step: the loop steps no more."""
    monkeypatch.setattr(planning, "LONG_STEP_S", long_step_s)
    taken = []
    step = cgt.train._discriminator_step
    monkeypatch.setattr(cgt.train, "_discriminator_step", lambda *a: taken.append(1) or step(*a))
    cfg = GANConfig(resolution=32, channels=1, num_classes=2, ch=4, dim_z=8)
    images, labels = torch.rand(12, 1, 32, 32) * 2 - 1, torch.arange(12) % 2
    with planning.session() as session, planning.run_named("demo", "run"):
        train_gan(Generator(cfg), Discriminator(cfg), images, labels,
                  TrainConfig(iterations=1000, batch_size=8, device="cpu"), progress=False)
    (loop,) = session.runs[("demo", "run")].loops
    assert len(taken) == steps and loop.flops_per_step > 0 and loop.seconds_per_step > 0


def test_a_loop_of_warm_networks_is_counted_and_timed_in_one_step():
    """Networks of shapes stepped before need no warm-up: one step gives FLOPs and time,
    and the FLOPs follow what trains (frozen layers skip their weight gradients)."""
    cfg = GANConfig(resolution=32, channels=1, num_classes=2, ch=4, dim_z=8)
    images, labels = torch.rand(12, 1, 32, 32) * 2 - 1, torch.arange(12) % 2
    asked = TrainConfig(iterations=1000, batch_size=8, device="cpu")

    def generator_only(g, d):
        return list(g.parameters()), list(d.parameters())[:1]

    with planning.session() as session:
        results = []
        for name, select in (("all", None), ("frozen", generator_only)):
            torch.manual_seed(0)
            with planning.run_named("demo", name):
                results.append(train_gan(Generator(cfg), Discriminator(cfg), images, labels, asked,
                                         progress=False,
                                         **({"select_parameters": select} if select else {})))
    assert [r.iterations for r in results] == [planning.STEPS, 1]
    (everything,), (frozen,) = session.runs[("demo", "all")].loops, session.runs[("demo", "frozen")].loops
    assert frozen.signature != everything.signature
    assert 0 < frozen.flops_per_step < everything.flops_per_step and frozen.seconds_per_step > 0


def test_the_lean_flop_count_equals_torchs_flop_counter():
    cfg = GANConfig(resolution=32, channels=3, num_classes=3, ch=8, dim_z=8)
    torch.manual_seed(0)
    generator, discriminator = Generator(cfg), Discriminator(cfg)
    z, y = torch.randn(4, 8), torch.arange(4) % 3

    def step():
        discriminator(generator(z, y), y).mean().backward()

    lean = planning.FlopCount()
    with lean:
        step()
    with FlopCounterMode(display=False) as full:
        step()
    assert lean.total == full.get_total_flops() > 0


def test_a_gpu_step_costs_its_flops_at_the_stated_rate_but_no_less_than_the_launch_floor():
    rate = plan.GPU_PEAK_TFLOPS["H100"] * 1e12 * 0.1
    row = {"iterations": [1000, 10], "flops_per_step": [1e9, 1e15], "sample_flops": 2e13,
           "train_flops": 1000 * 1e9 + 10 * 1e15, "seconds_here": 1.0, "steps": 1010}
    small, large = 1000 * 0.05, 10 * 1e15 / rate  # launch-bound; FLOP-bound (10 s a step)
    assert plan.gpu_seconds(row, rate, 0.05) == pytest.approx(small + large + 2e13 / rate)
    hours = plan.totals([{**row, "chapter": "demo"}], "H100", 0.1, 0.05)["all"]["hours_gpu"]
    assert hours * 3600 == pytest.approx(small + large + 2e13 / rate)
    assert plan.gpu_seconds(row, rate, 0.0) == pytest.approx((row["train_flops"] + 2e13) / rate)
