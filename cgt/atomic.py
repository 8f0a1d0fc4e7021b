"""The one way the project writes a file: beside it, synced, then renamed over it.

A crash or a full disk leaves either the old file or the new one, never half of
one; the temporary name carries the process id, so two chapters (or two data
builds) writing the same file at once cannot collide on it.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch


@contextmanager
def replacing(path: Path, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; when the block ends without error, sync
    it and rename it to ``path``.  ``suffix`` keeps writers that append an extension
    (``np.savez`` adds ``.npz``) on the yielded name."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}{suffix}")
    try:
        yield tmp
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
    except (OSError, RuntimeError) as error:  # torch reports a full disk as RuntimeError
        tmp.unlink(missing_ok=True)
        raise OSError(f"could not write {path} ({error}); the previous file is kept. Free "
                      f"space or choose another folder.") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)


def save_torch(payload, path: Path) -> None:
    with replacing(path) as tmp:
        torch.save(payload, tmp)


def write_text(path: Path, text: str) -> None:
    with replacing(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_bytes(path: Path, data: bytes) -> None:
    with replacing(path) as tmp:
        tmp.write_bytes(data)


def plain(value, key: Callable = str, strict: bool = False):
    """``value`` in JSON's plain values, as it would read back: mappings with text keys
    (``key`` writes them), tuples as lists, NumPy numbers and one-element tensors as
    Python numbers, any other object as its text; with ``strict``, NaN and ±inf as None
    (strict JSON).  The one converter for records, run configs and claims rows."""
    if isinstance(value, Mapping):
        return {key(k): plain(v, key, strict) for k, v in value.items()}
    if isinstance(value, (np.ndarray, torch.Tensor)) and value.ndim > 0:
        return plain(value.tolist(), key, strict)
    if isinstance(value, (list, tuple)):
        return [plain(v, key, strict) for v in value]
    if isinstance(value, (np.generic, np.ndarray, torch.Tensor)):
        value = value.item()
    if isinstance(value, float):
        return None if strict and not math.isfinite(value) else value
    if value is None or isinstance(value, (bool, int, str)):
        return value
    return str(value)


def write_json(path: Path, payload, indent: int = 1) -> None:
    write_text(path, json.dumps(payload, indent=indent, sort_keys=True, default=str) + "\n")
