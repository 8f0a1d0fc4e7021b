"""Run records: every number the book shows comes from one of these.

A record holds the configuration, seed, git revision, device, wall time,
library versions and the metrics of one run, and is written atomically
(temporary file + rename) under ``paths.runs_dir(profile)/<chapter>/<name>.json``.
Chapters add "claims" rows (:class:`cgt.claims.Result`: claim, paper, ours,
seeds, verdict, reason) that the book's introduction collects into its summary table.
"""

from __future__ import annotations

import json
import platform
import subprocess
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from . import __version__, atomic, paths
from .machine import device_description


def git_revision() -> str:
    root = paths.repo_root()
    if root is None:
        return "unknown (installed package)"
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                             text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=root, capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (no git)"
    return rev + ("+dirty" if dirty else "")


def short_device(description: str) -> str:
    """'cuda (NVIDIA H100 80GB HBM3)' -> 'H100'; CPU descriptions -> 'CPU'."""
    if description.startswith("cuda"):
        words = description.split("(")[-1].rstrip(")").split()
        return next((w for w in words if any(ch.isdigit() for ch in w)), words[-1])
    return "CPU"


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version(), "cgt": __version__}
    for module in ("torch", "torchvision", "numpy", "PIL", "scipy"):
        try:
            versions[module] = __import__(module).__version__
        except ImportError:
            pass
    return versions


class DivergenceError(RuntimeError):
    """A run's loss or weights became non-finite; the last good checkpoint is kept."""


@dataclass
class RunRecord:
    chapter: str
    name: str
    profile: str
    config: dict = field(default_factory=dict)
    seed: int | None = None
    metrics: dict = field(default_factory=dict)
    claims: list = field(default_factory=list)
    status: str = "running"
    git_revision: str = field(default_factory=git_revision)
    device: str = field(default_factory=device_description)
    versions: dict = field(default_factory=library_versions)
    started: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat())
    wall_time_s: float | None = None
    _t0: float = field(default_factory=time.perf_counter, repr=False)

    @property
    def path(self) -> Path:
        return paths.runs_dir(self.profile) / self.chapter / f"{self.name}.json"

    def add_claim(self, result) -> None:
        """Keep a :class:`cgt.claims.Result` (the only source of verdicts)."""
        self.claims.append(result.as_dict())

    def save(self, status: str | None = None) -> Path:
        if status:
            self.status = status
        self.wall_time_s = round(time.perf_counter() - self._t0, 3)
        payload = {k: v for k, v in asdict(self).items() if not k.startswith("_")}
        atomic.write_json(self.path, payload)
        return self.path

    def __enter__(self) -> "RunRecord":
        return self

    def __exit__(self, kind, error, trace) -> None:
        self.save("complete" if error is None else f"failed: {kind.__name__}: {error}")


def run_once(chapter: str, name: str, profile: str, config: dict, seed: int | None,
             work: Callable[[RunRecord, Path], None]) -> RunRecord:
    """Run ``work(record, folder)`` unless a complete record of the same run exists.

    A complete record with the same config and seed is returned as it is (a rerun
    of the chapter skips the work); an incomplete one is run again in the same
    ``folder``, where :func:`cgt.train.train_gan` resumes from its ``last.pt``.
    A diverged run is recorded as failed and returned, so one bad run does not
    stop a whole book, except in the smoke profile, where it raises.
    """
    config = json.loads(json.dumps(config, default=str))
    path = paths.runs_dir(profile) / chapter / f"{name}.json"
    if path.exists():
        saved = json.loads(path.read_text())
        if saved["status"] == "complete" and saved["config"] == config and saved["seed"] == seed:
            fields = {k: v for k, v in saved.items() if k in RunRecord.__dataclass_fields__}
            return RunRecord(**fields)
    record = RunRecord(chapter, name, profile, config=config, seed=seed)
    folder = path.with_suffix("")
    try:
        with record:
            work(record, folder)
    except DivergenceError:
        if profile == "smoke":
            raise
    return record


def load_records(profile: str) -> list[dict]:
    folder = paths.runs_dir(profile)
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*/*.json"))]


SUMMARY_COLUMNS = ["chapter", "claim", "paper", "ours", "seeds", "verdict", "reason"]


def summary_table(profile: str):
    """All claims rows of ``profile``'s records (chapter, claim, paper, ours with its
    estimate and interval, seeds, verdict, and why a row is inconclusive or untestable)."""
    import pandas as pd

    rows = [claim for record in load_records(profile) for claim in record.get("claims", [])]
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
