"""The image set every loader returns and every method trains on."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
import torch

from . import embedded as _build


@dataclass
class ImageSet:
    """Images (uint8, N×H×W×C) with integer labels and the names of the classes."""

    images: np.ndarray
    labels: np.ndarray
    classes: list[str]
    name: str = ""
    info: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.images.ndim != 4 or self.images.dtype != np.uint8:
            raise ValueError(f"images must be uint8 N×H×W×C, got {self.images.dtype} "
                             f"{self.images.shape}")
        if len(self.images) != len(self.labels):
            raise ValueError(f"{len(self.images)} images but {len(self.labels)} labels")

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def resolution(self) -> int:
        return self.images.shape[1]

    @property
    def channels(self) -> int:
        return self.images.shape[3]

    def counts(self) -> dict[str, int]:
        """Images per class name, in class order."""
        per = np.bincount(self.labels, minlength=len(self.classes))
        return {c: int(n) for c, n in zip(self.classes, per)}

    def subset(self, index) -> "ImageSet":
        return ImageSet(self.images[index], self.labels[index], self.classes, self.name, self.info)

    def resized(self, size: int) -> "ImageSet":
        return ImageSet(_build.resize(self.images, size), self.labels, self.classes,
                        self.name, self.info)

    def digest(self) -> str:
        """SHA-256 (16 hex digits) of the pixels, labels and class names: what a run
        trained on these images is keyed by."""
        digest = hashlib.sha256(np.ascontiguousarray(self.images).tobytes())
        digest.update(np.ascontiguousarray(self.labels, np.int64).tobytes())
        digest.update("\n".join(self.classes).encode())
        return digest.hexdigest()[:16]

    def to_tensor(self):
        """Float tensor N×C×H×W in [-1, 1], the range every generator in cgt produces."""
        x = torch.from_numpy(self.images).permute(0, 3, 1, 2).float()
        return x / 127.5 - 1.0


def to_uint8(x) -> np.ndarray:
    """The inverse of :meth:`ImageSet.to_tensor`: N×C×H×W in [-1, 1] → uint8 N×H×W×C."""
    return ((x.detach().float().clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).cpu().numpy()
