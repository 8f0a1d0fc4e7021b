"""The run layer: every number the book shows comes from one run record.

A :class:`RunSpec` says everything that decides what a run computes (its
configuration, seed, how its model is rebuilt, how it is scored, and the code
that computes it); :func:`run` runs it once, and :func:`load_run` finds its record,
from which :func:`cgt.builders.load` rebuilds its best model alone.  A record holds the configuration, seed, run
key, git revision, device, wall time, library versions and the metrics of one
run, and is written atomically under ``paths.runs_dir(profile)/<chapter>/<name>.json``
with the run's files (``best.pt``, ``last.pt``) in the folder of the same name.
Chapters add "claims" rows (:class:`cgt.claims.Result`: claim, paper, ours,
seeds, verdict, reason) that the book's introduction collects into its summary table.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.util
import json
import os
import platform
import re
import shutil
import subprocess
import time
from dataclasses import asdict, dataclass, field, is_dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import torch

from . import __version__, atomic, paths, planning
from .builders import load
from .machine import compute_kind, device_description, pick_device
from .train import DivergenceError
from .metrics.evaluate import RunScoring


def git_revision() -> str:
    """The repository's commit, ``+dirty`` with uncommitted changes to tracked files
    (asked of git once per plan: a plan writes hundreds of records in a few minutes)."""
    return planning.memo("git revision", _ask_git)


def _ask_git() -> str:
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
    key: str | None = None
    builder: str | None = None
    home: str | None = None
    git_revision: str = field(default_factory=git_revision)
    device: str = field(default_factory=device_description)
    versions: dict = field(default_factory=library_versions)
    started: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat())
    wall_time_s: float | None = None
    _t0: float = field(default_factory=time.perf_counter, repr=False)

    @property
    def path(self) -> Path:
        return record_path(self.chapter, self.name, self.profile, self.home)

    def add_claim(self, result) -> None:
        """Keep a :class:`cgt.claims.Result` (the only source of verdicts)."""
        self.claims.append(result.as_dict())

    def reported_score(self) -> tuple[dict, str]:
        """(fresh score, status) for a table: a run that did not complete, or whose
        chosen generator collapsed, gives no score and says so (a failure, not a number)."""
        if self.status != "complete":
            return {}, self.status
        score = self.metrics.get("score") or {}
        if score.get("collapsed"):
            return {}, "collapsed"
        return score, self.status

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


# The library code a run's numbers depend on. Its fingerprint is part of every run
# key, so a complete record is not reused after that code changed; each spec adds the
# module of its own experiment. Plotting, the book, the claims rules and this module
# change no run's numbers and are left out.
COMPUTING_CODE = ("cgt.nn", "cgt.train", "cgt.distributed", "cgt.machine", "cgt.methods",
                  "cgt.metrics", "cgt.data", "cgt.checkpoints", "cgt.builders", "cgt.state_dicts",
                  "cgt.biggan_pytorch", "cgt.pretrain")


@functools.lru_cache(maxsize=None)
def code_fingerprint(modules: tuple[str, ...]) -> str:
    """SHA-256 (16 hex digits) of the source of ``modules`` (a package: all its files)."""
    digest = hashlib.sha256()
    for name in sorted(set(modules)):
        origin = Path(importlib.util.find_spec(name).origin)
        files = sorted(origin.parent.rglob("*.py")) if origin.name == "__init__.py" else [origin]
        for file in files:
            digest.update(f"{name}:{file.relative_to(origin.parent).as_posix()}\n".encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()[:16]


# A 16-hex-digit digest: of an ImageSet (``ImageSet.digest``) or a run key.
DIGEST = re.compile(r"[0-9a-f]{16}")


def record_path(chapter: str, name: str, profile: str, home: str | None = None) -> Path:
    """Where a run's record lives: ``home/<name>.json``, else the profile's runs folder."""
    if home is not None:
        return Path(home) / f"{name}.json"
    return paths.runs_dir(profile) / chapter / f"{name}.json"


@dataclass(frozen=True)
class RunSpec:
    """Everything that decides what one run computes, and where it lives.

    ``builder`` (a name in :data:`cgt.builders.BUILDERS`) rebuilds the untrained model
    from ``config``, so that :func:`load_run` can load the run's ``best.pt`` from the
    record alone;
    ``scoring`` scores the chosen checkpoint afresh once the run has trained;
    ``code`` names the modules whose source enters the run key; ``home`` is a folder
    that holds the record instead of the profile's runs folder (a user's ``--out``).
    """

    chapter: str
    name: str
    profile: str
    config: dict
    seed: int | None = None
    builder: str | None = None
    scoring: RunScoring | None = None
    code: tuple = COMPUTING_CODE
    home: str | None = None

    def __post_init__(self):
        if self.scoring is not None and (isinstance(self.scoring, type) or not (
                isinstance(self.scoring, RunScoring) and is_dataclass(self.scoring))):
            raise TypeError(f"a run's scoring must be a RunScoring dataclass (its fields enter "
                            f"the run key), got {type(self.scoring).__name__}")
        object.__setattr__(self, "config", atomic.plain(self.config))

    @property
    def path(self) -> Path:
        return record_path(self.chapter, self.name, self.profile, self.home)

    @property
    def key(self) -> str:
        """Changes exactly when what the run computes changes (not with its name): also
        between machines whose default device or precision differ (``compute_kind``)."""
        payload = {"config": self.config, "seed": self.seed, "builder": self.builder,
                   "scoring": asdict(self.scoring) if self.scoring else None,
                   "code": code_fingerprint(tuple(self.code)), "computes_on": compute_kind()}
        return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]

    @property
    def shape(self) -> str:
        """The key without what changes from seed to seed (every ``seed`` entry of the
        configuration, and the digests of the images it reads or of the run it continues):
        what a run costs depends on the rest alone (see :func:`cgt.planning.twin`)."""
        def unseeded(value):
            if isinstance(value, dict):
                return {k: unseeded(v) for k, v in value.items() if k != "seed"}
            if isinstance(value, str) and DIGEST.fullmatch(value):
                return "<digest>"
            return [unseeded(v) for v in value] if isinstance(value, list) else value
        payload = {"config": unseeded(self.config), "builder": self.builder, "chapter": self.chapter,
                   "scoring": unseeded(asdict(self.scoring)) if self.scoring else None}
        return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def run(spec: RunSpec, train: Callable[[RunRecord, Path], dict | None]) -> RunRecord:
    """The one way a run is executed: ``train(record, folder)`` makes the run's models,
    trains them with ``folder`` for their checkpoints and returns the metrics of the
    state it kept (a :class:`cgt.train.BestCheckpoint`, whose ``best.pt`` is the run's
    model), or None for a run that keeps no model.

    A complete record of the same key is returned as it is (a rerun of the chapter
    skips the work). An incomplete one of the same key runs again in the same
    ``folder``, where the training loop resumes from its ``last.pt``; a record of
    another key (other configuration or code) is discarded with its files, so nothing
    computed by other code is resumed or shown. Once trained, the kept metrics become
    ``metrics["best"]``, ``last.pt`` goes (only an interrupted run needs it) and, with
    ``spec.scoring``, the kept model is scored afresh into ``metrics["score"]``.  A
    diverged run is recorded as failed and returned, so one bad run does not stop a
    whole book, except in the smoke profile, where it raises.
    """
    key, folder = spec.key, spec.path.with_suffix("")
    if spec.path.exists():
        saved = json.loads(spec.path.read_text())
        if saved.get("key") == key and saved["status"] == "complete":
            return RunRecord(**{k: v for k, v in saved.items() if k in RunRecord.__dataclass_fields__})
        if saved.get("key") != key:
            shutil.rmtree(folder, ignore_errors=True)
    elif folder.exists():  # files without a record: of unknown origin, so not resumed
        shutil.rmtree(folder)
    record = RunRecord(spec.chapter, spec.name, spec.profile, config=spec.config, seed=spec.seed,
                       key=key, builder=spec.builder, home=spec.home)
    record.save()  # the key is on disk before any checkpoint is
    twin = planning.twin(spec.chapter, spec.name, spec.shape)
    try:
        with record, planning.run_named(spec.chapter, spec.name):
            if twin is not None:  # planning: a run of this shape was measured already
                _copy_twin(record_path(*twin, spec.profile, spec.home), record, folder)
                return record
            best = train(record, folder)
            if best is not None:
                record.metrics["best"] = best
            (folder / "last.pt").unlink(missing_ok=True)
            if spec.scoring is not None:
                record.metrics["score"] = _fresh_score(spec, record)
    except DivergenceError:
        if spec.profile == "smoke":
            raise
    return record


def _fresh_score(spec: RunSpec, record: RunRecord) -> dict:
    """The fresh score of the run's chosen checkpoint.  A plan's runs keep no weights
    (:func:`cgt.planning.writes_weights`), so there only the score's samples are counted,
    at the cost its evaluations measured, and the selection metrics stand in for it."""
    if not planning.writes_weights():
        planning.samples(spec.scoring.final_samples)
        return dict(record.metrics.get("best") or {})
    model = load(record.path, device=pick_device())
    return spec.scoring.final(model, record.metrics.get("best"))


def _copy_twin(twin_file: Path, record: RunRecord, folder: Path) -> None:
    """What a plan's twin run wrote (its metrics and files), as this run's: the runs that
    continue this one then find what they would find after it."""
    record.metrics.update(json.loads(twin_file.read_text())["metrics"])
    if twin_file.with_suffix("").is_dir():  # linked, not copied: cgt.atomic replaces a
        shutil.copytree(twin_file.with_suffix(""), folder,  # file, never writes into one
                        copy_function=_link_or_copy, dirs_exist_ok=True)


def _link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target)
    except OSError:  # another file system, or one without hard links
        shutil.copy2(source, target)


def completed_record(chapter: str, name: str, profile: str) -> dict:
    """The saved record of a complete run, for the specs of runs that continue it (their
    key holds its key: a run that starts from another one reruns when that one did)."""
    path = paths.runs_dir(profile) / chapter / f"{name}.json"
    saved = json.loads(path.read_text()) if path.exists() else {}
    if saved.get("status") != "complete":
        raise FileNotFoundError(f"run {chapter}/{name} ({profile}) has not completed: run it first")
    return saved


def load_run(chapter: str, name: str, profile: str, which: str = "best") -> torch.nn.Module:
    """The best model of a finished run (``last``: of an interrupted one), from its record alone."""
    path = paths.runs_dir(profile) / chapter / f"{name}.json"
    if not path.is_file():
        raise FileNotFoundError(f"no run record {path}: run the experiment first")
    return load(path, which)


def load_records(profile: str) -> list[dict]:
    folder = paths.runs_dir(profile)
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*/*.json"))]


SUMMARY_COLUMNS = ["chapter", "claim", "paper", "ours", "seeds", "estimate", "interval",
                   "detectable", "adjusted_p", "verdict", "reason", "kind", "lines"]


def summary_table(profile: str, checks: bool = False):
    """The claims rows of ``profile``'s records: the papers' claims (chapter, claim, paper,
    ours, seeds, estimate, interval, the detectable effect, the p-value after Holm's
    correction, verdict, why a row is inconclusive or untestable, its kind and the values
    that decide it: :func:`cgt.claims.decision_lines`), or with ``checks``
    the construction checks (``exact`` rows: tests of our code, never a paper's claim)."""
    import pandas as pd

    rows = [claim for record in load_records(profile) for claim in record.get("claims", [])
            if (claim.get("kind") == "exact") == checks]
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
