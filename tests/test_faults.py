"""Faults with real processes: SIGKILL mid-run, mid-checkpoint-write, concurrent data builds."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from cgt import atomic

ROOT = Path(__file__).resolve().parents[1]


def _pretrain(work, out, iterations=6):
    return [sys.executable, "-m", "cgt", "pretrain", "fashion8", "--iterations", str(iterations),
            "--tiny", "--device", "cpu", "--batch-size", "8", "--work-dir", str(work),
            "--checkpoint-every", "1", "--out", str(out)]


def _iteration(path: Path) -> int:
    try:
        return torch.load(path, weights_only=False)["iteration"]
    except Exception:  # not written yet
        return 0


def test_sigkill_then_resume_ends_bit_identical(tmp_path):
    env = {**os.environ, "TQDM_DISABLE": "1"}
    straight = subprocess.run(_pretrain(tmp_path / "w1", tmp_path / "o1"), cwd=ROOT, env=env,
                              capture_output=True, text=True)
    assert straight.returncode == 0, straight.stderr
    victim = subprocess.Popen(_pretrain(tmp_path / "w2", tmp_path / "o2"), cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while _iteration(tmp_path / "w2" / "last.pt") < 2 and time.time() < deadline:
        time.sleep(0.05)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    killed_at = _iteration(tmp_path / "w2" / "last.pt")
    assert 2 <= killed_at < 6, "the run must be killed part-way"
    resumed = subprocess.run(_pretrain(tmp_path / "w2", tmp_path / "o2"), cwd=ROOT, env=env,
                             capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    a = torch.load(tmp_path / "w1" / "last.pt", weights_only=False)
    b = torch.load(tmp_path / "w2" / "last.pt", weights_only=False)
    for part in ("generator", "discriminator"):
        for key, value in a[part].items():
            assert torch.equal(value, b[part][key]), f"{part}.{key} differs after resume"


WRITER = """
import sys, torch
from pathlib import Path
from cgt.atomic import save_torch
target = Path(sys.argv[1])
i = 0
while True:
    i += 1
    save_torch({"i": i, "blob": torch.full((4_000_000,), float(i))}, target)
    print(i, flush=True)
"""


def test_kill_during_a_checkpoint_write_leaves_the_previous_one_loadable(tmp_path):
    target = tmp_path / "last.pt"
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(target)], cwd=ROOT,
                              stdout=subprocess.PIPE, text=True)
    for _ in range(3):  # let a few complete writes happen, then kill in the middle of one
        writer.stdout.readline()
    time.sleep(0.03)
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    state = torch.load(target, weights_only=False)
    assert state["i"] >= 3 and torch.all(state["blob"] == state["i"])


def test_a_failed_write_keeps_the_previous_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "records" / "run.json"
    atomic.write_json(target, {"version": 1})
    with pytest.raises(ValueError):
        with atomic.replacing(target) as tmp:
            tmp.write_text("half a reco")
            raise ValueError("interrupted")
    with pytest.raises(OSError, match="previous file is kept"):
        with atomic.replacing(target) as tmp:
            raise OSError(28, "No space left on device")
    assert json.loads(target.read_text()) == {"version": 1}
    assert sorted(p.name for p in target.parent.iterdir()) == ["run.json"]
    assert str(os.getpid()) in tmp.name  # two processes never share a temporary name


def test_two_concurrent_builds_share_the_data_cache_safely(tmp_path):
    cache = tmp_path / "cache"
    source = ROOT / "data" / "cache"
    for folder in ("wheels", "wheel-files"):  # no network needed: reuse the fetched inputs
        shutil.copytree(source / folder, cache / folder)
    env = {**os.environ, "CGT_DATA_CACHE": str(cache)}
    command = [sys.executable, "-m", "cgt.data", "build", "--tiny", "digits", "lfw", "animal_shape"]
    builds = [subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [b.communicate() for b in builds]
    assert all(b.returncode == 0 for b in builds), outputs
    built_lines = sum(o[0].count("built tiny-size32/") for o in outputs)
    assert built_lines == 3, "each dataset must be built exactly once"
    check = subprocess.run([sys.executable, "-c",
                            "from cgt import data; print(len(data.load('digits', tiny=True)))"],
                           cwd=ROOT, env=env, capture_output=True, text=True)
    assert check.stdout.strip() == "1442", check.stderr


def _mount_tmpfs(folder: Path, options: str) -> bool:
    folder.mkdir(parents=True, exist_ok=True)
    return subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)],
                          capture_output=True).returncode == 0


needs_mount = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("mount") is None,
    reason="read-only and full folders are made with tmpfs mounts, which need root")


@needs_mount
def test_read_only_and_full_output_folders_are_refused_with_a_message(tmp_path):
    from cgt.nn import Discriminator, GANConfig, Generator
    from cgt.train import TrainConfig, train_gan

    torch.manual_seed(0)
    cfg = GANConfig(num_classes=2, ch=4, dim_z=8)
    x, y = torch.rand(8, 1, 32, 32) * 2 - 1, torch.arange(8) % 2
    config = TrainConfig(iterations=2, batch_size=4, checkpoint_every=1, device="cpu")
    read_only, full = tmp_path / "ro", tmp_path / "full"
    if not (_mount_tmpfs(read_only, "ro,size=1m") and _mount_tmpfs(full, "size=64k")):
        pytest.skip("this machine does not allow tmpfs mounts")
    try:
        with pytest.raises(OSError, match="cannot write checkpoints to .*Read-only file system"):
            train_gan(Generator(cfg), Discriminator(cfg), x, y, config, out_dir=read_only / "run",
                      progress=False)
        with pytest.raises(OSError, match="could not write .*last.pt .*previous file is kept"):
            train_gan(Generator(cfg), Discriminator(cfg), x, y, config, out_dir=full / "run",
                      progress=False)
        assert not list((full / "run").glob("*.tmp"))
    finally:
        subprocess.run(["umount", str(read_only)]), subprocess.run(["umount", str(full)])
