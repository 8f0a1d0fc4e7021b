"""Where the project keeps caches, run records and build outputs.

Everything generated lives under one *home* folder.  In a source checkout that
is the repository itself (``data/cache``, ``_build``), so ``git clean`` removes
it; an installed package uses ``~/.cache/cgt``.  ``CGT_HOME`` overrides both.
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


def repo_root() -> Path | None:
    """The source checkout this package lives in, or None when installed."""
    candidate = PACKAGE_DIR.parent
    if (candidate / "pyproject.toml").is_file() and (candidate / "_toc.yml").is_file():
        return candidate
    return None


def home() -> Path:
    if os.environ.get("CGT_HOME"):
        return Path(os.environ["CGT_HOME"]).expanduser().resolve()
    root = repo_root()
    return root if root is not None else Path.home() / ".cache" / "cgt"


def shipped_models() -> Path:
    """The shipped source models and feature network: ``data/models`` of a checkout, or
    the copy an installed package carries (``cgt/models``, see pyproject.toml)."""
    root = repo_root()
    return root / "data" / "models" if root is not None else PACKAGE_DIR / "models"


def data_cache() -> Path:
    """Fetched packages and built arrays (git-ignored)."""
    if os.environ.get("CGT_DATA_CACHE"):
        return Path(os.environ["CGT_DATA_CACHE"]).expanduser().resolve()
    return home() / "data" / "cache"


def build_dir() -> Path:
    return home() / "_build"


def runs_dir(profile: str) -> Path:
    """Run records of one profile; the book builder points this at its build folder."""
    if os.environ.get("CGT_RUNS_DIR"):
        return Path(os.environ["CGT_RUNS_DIR"]).expanduser().resolve()
    return build_dir() / "runs" / profile
