"""The papers' own numbers, kept in ``data/paper_tables/*.csv`` with their table or figure.

These are the only numbers the book types in; each row names its source.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from . import paths


def folder() -> Path:
    root = paths.repo_root()
    return (root if root else paths.home()) / "data" / "paper_tables"


def available() -> list[str]:
    return sorted(p.stem for p in folder().glob("*.csv"))


def load(name: str) -> pd.DataFrame:
    """One paper table by file name (without ``.csv``)."""
    file = folder() / f"{name}.csv"
    if not file.exists():
        raise KeyError(f"no paper table '{name}'; available: {', '.join(available())}")
    return pd.read_csv(file, comment="#")
