"""Experiment sizes per chapter and profile, in one place.

Three profiles (see the introduction of the book):

* ``smoke``: seconds per chapter; every code path runs; used by the tests and nbval.
* ``quick``: the default; every table and figure at reduced scale on a 2-core CPU.
* ``paper``: GPU-runner scale, the papers' protocol as far as the data allows.

A chapter asks ``sizes("data", profile)`` and never types a size into a cell.
"""

from __future__ import annotations

import os
from types import MappingProxyType

PROFILES = ("smoke", "quick", "paper")
DEFAULT_PROFILE = "quick"

SIZES = {
    "data": {
        "smoke": {"tiny": True, "size": 32, "sheet_per_class": 4, "sheet_classes": 6},
        "quick": {"tiny": False, "size": 32, "sheet_per_class": 8, "sheet_classes": 10},
        "paper": {"tiny": False, "size": 32, "sheet_per_class": 8, "sheet_classes": 10},
    },
    "foundations": {
        "smoke": {"tiny": True, "fid_samples": 200, "blur": [0.5, 1.5, 3.0],
                  "noise": [10, 40, 100], "samples_per_class": 4, "retrain_iterations": None},
        "quick": {"tiny": False, "fid_samples": 5000, "blur": [0.5, 1.0, 1.5, 2.0, 3.0],
                  "noise": [5, 10, 20, 40, 80], "samples_per_class": 8,
                  "retrain_iterations": None},
        "paper": {"tiny": False, "fid_samples": 10000, "blur": [0.5, 1.0, 1.5, 2.0, 3.0],
                  "noise": [5, 10, 20, 40, 80], "samples_per_class": 8,
                  "retrain_iterations": 20000},
    },
}


def default_profile() -> str:
    """``CGT_PROFILE`` if set, else ``quick``; checked like any other profile name."""
    return check_profile(os.environ.get("CGT_PROFILE", DEFAULT_PROFILE))


def check_profile(profile: str) -> str:
    if profile not in PROFILES:
        raise ValueError(f"unknown profile '{profile}'; valid: {', '.join(PROFILES)}")
    return profile


def sizes(chapter: str, profile: str) -> MappingProxyType:
    """The read-only experiment sizes of ``chapter`` under ``profile``."""
    if chapter not in SIZES:
        raise KeyError(f"no sizes for chapter '{chapter}'; known: {', '.join(sorted(SIZES))}")
    return MappingProxyType(SIZES[chapter][check_profile(profile)])
