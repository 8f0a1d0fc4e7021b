"""The project's own feature network: the offline stand-in for Inception.

Inception weights cannot be fetched here, so FID, KID, KMMD and the classifier
score default to the penultimate features of a small CNN that the project
trains on its embedded data: a shared trunk with one classification head per
dataset.  Its weights ship in ``data/models/feature_net.pt``; the command,
seed, test accuracies and sha256 are in ``data/models/feature_net.json``.  Every
table says which feature network a number uses: this one is named
``cgt-featnet-<first 12 hex of its sha256>``.
"""

from __future__ import annotations

import hashlib
import json
import time
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from tqdm import tqdm

from .. import atomic, data, paths

HEADS = {"fashion_mnist": 10, "animal_shape": 10, "hanzi": 3755, "emoji": 8, "digits": 10,
         "lfw": 2}
FEATURE_DIM = 256
LFW_HELD_OUT = 20  # per class: lfw has no test split, so a seeded part of it is held out
LFW_NOTE = f"lfw has no test split: {LFW_HELD_OUT} images per class held out of train (seed 0)"


class FeatureNetwork(nn.Module):
    """Four conv stages (32-64-128-256 channels) → global average pool → 256-d features."""

    def __init__(self, heads: dict[str, int] = HEADS):
        super().__init__()
        layers, cin = [], 3
        for i, cout in enumerate((32, 64, 128, FEATURE_DIM)):
            layers += [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
                       nn.ReLU(inplace=True), nn.Conv2d(cout, cout, 3, padding=1, bias=False),
                       nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
            if i < 3:
                layers.append(nn.MaxPool2d(2))
            cin = cout
        self.trunk = nn.Sequential(*layers)
        self.heads = nn.ModuleDict({name: nn.Linear(FEATURE_DIM, n) for name, n in heads.items()})

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.trunk(x).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor, head: str) -> torch.Tensor:
        return self.heads[head](self.features(x))


def to_input(images, size: int = 32) -> torch.Tensor:
    """uint8 N×H×W×C arrays or float N×C×H×W tensors in [-1, 1] → float N×3×32×32."""
    if isinstance(images, np.ndarray):
        if images.dtype != np.uint8 or images.ndim != 4:
            raise ValueError(f"expected uint8 N×H×W×C images, got {images.dtype} {images.shape}")
        x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1.0
    else:
        x = images.float()
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise ValueError(f"expected N×C×H×W images with 1 or 3 channels, got {tuple(x.shape)}")
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    if x.shape[-1] != size or x.shape[-2] != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=x.shape[-1] > size,
                          align_corners=False)
    return x


def _splits(tiny: bool, names=HEADS) -> tuple[dict, dict]:
    train, test = {}, {}
    for name in names:
        a, b = data.train_test(name, tiny=tiny)
        if name == "lfw":  # no test split: hold out a seeded part per class
            rng = np.random.default_rng(0)
            held = np.zeros(len(a), bool)
            for c in range(len(a.classes)):
                held[rng.choice(np.flatnonzero(a.labels == c), LFW_HELD_OUT, replace=False)] = True
            a, b = a.subset(~held), a.subset(held)
        train[name], test[name] = a, b
    return train, test


def accuracy(model: nn.Module, dataset: data.ImageSet, head: str, device="cpu") -> float:
    predictions = predict(dataset.images, head, model, device=device)
    return float((predictions == dataset.labels).mean())


def train_classifier(network: type, heads: dict[str, int], steps: int = 5000,
                     batch_size: int = 128, seed: int = 0, tiny: bool = False,
                     device: str = "cpu", bf16: bool = True, progress: bool = True,
                     lr: float = 2e-3, desc: str = "feature network"):
    """Train ``network(heads)``'s trunk and all heads jointly; batches come from one
    dataset at a time, drawn with probability ∝ sqrt(size) so the small datasets are
    not drowned out.  AdamW with a one-cycle schedule peaking at ``lr``.

    ``bf16`` trains under bfloat16 autocast with channels-last tensors (about 2.4×
    faster on this project's CPUs); features are always extracted in fp32.
    """
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    train, test = _splits(tiny, heads)
    model = network(heads).to(device, memory_format=torch.channels_last)
    optimiser = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=5e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=lr, total_steps=steps)
    names = list(heads)
    weights = np.sqrt([len(train[n]) for n in names])
    tensors = {n: (train[n].images, torch.from_numpy(train[n].labels)) for n in names}
    start = time.perf_counter()
    model.train()
    quiet = {} if progress else {"disable": True}  # left unset, TQDM_DISABLE=1 still silences it
    for _ in tqdm(range(steps), desc=desc, **quiet):
        name = names[rng.choice(len(names), p=weights / weights.sum())]
        images, labels = tensors[name]
        index = rng.integers(0, len(labels), batch_size)
        x = to_input(images[index]).to(device)
        shift = rng.integers(-2, 3, 2)  # small translations: cheap, label-preserving
        x = torch.roll(x, shifts=(int(shift[0]), int(shift[1])), dims=(2, 3))
        x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=bf16):
            loss = F.cross_entropy(model(x, name).float(), labels[index].to(device))
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        schedule.step()
    model = model.to(memory_format=torch.contiguous_format).eval()
    accuracies = {n: round(accuracy(model, test[n], n, device), 4) for n in names}
    return model.cpu(), {"test_accuracy": accuracies, "steps": steps, "batch_size": batch_size,
                         "seed": seed, "bf16": bf16, "lr": lr,
                         **({"lfw_test": LFW_NOTE} if "lfw" in heads else {}),
                         "wall_time_s": round(time.perf_counter() - start, 1)}


def train_feature_network(steps: int = 5000, batch_size: int = 128, seed: int = 0,
                          tiny: bool = False, device: str = "cpu", bf16: bool = True,
                          progress: bool = True):
    """The shipped feature network's recipe (:func:`train_classifier` on :data:`HEADS`)."""
    return train_classifier(FeatureNetwork, HEADS, steps, batch_size, seed, tiny, device, bf16,
                            progress)


def weights_file() -> Path:
    return paths.shipped_models() / "feature_net.pt"


def save_feature_network(model: nn.Module, info: dict, file: Path | None = None) -> dict:
    file = file or weights_file()
    atomic.save_torch({k: v.half() if v.is_floating_point() else v
                       for k, v in model.state_dict().items()}, file)
    info = {**info, "file": file.name, "sha256": hashlib.sha256(file.read_bytes()).hexdigest(),
            "size_bytes": file.stat().st_size, "torch": torch.__version__,
            "parameters": sum(p.numel() for p in model.parameters())}
    atomic.write_json(file.with_suffix(".json"), info)
    return info


def feature_network_info(file: Path | None = None) -> dict:
    meta = (file or weights_file()).with_suffix(".json")
    if not meta.exists():
        raise FileNotFoundError(f"no feature network at {meta.parent}: train it with "
                                f"`cgt metrics train-features`")
    return json.loads(meta.read_text())


def load_feature_network(file: Path | None = None) -> FeatureNetwork:
    """The shipped feature network (fp32, eval mode), after checking its sha256.

    The shipped one is loaded once per process; an explicit ``file`` every time.
    """
    if file is None:
        return _shipped_network()
    return _load_checked(file)


@lru_cache(maxsize=1)
def _shipped_network() -> FeatureNetwork:
    return _load_checked(weights_file())


def _load_checked(file: Path, network: type = None, command: str = "cgt metrics train-features"):
    """``network()`` with the weights of ``file`` (fp32, eval mode), after checking the
    sha256 that its manifest (``file`` with ``.json``) records."""
    info = json.loads(file.with_suffix(".json").read_text()) if file.with_suffix(".json").exists() else None
    if info is None:
        raise FileNotFoundError(f"no manifest {file.with_suffix('.json')}: train it with `{command}`")
    if not file.exists():
        raise FileNotFoundError(f"{file} is missing (its manifest is there): restore it with git "
                                f"or train it with `{command}`")
    digest = hashlib.sha256(file.read_bytes()).hexdigest()
    if digest != info["sha256"]:
        raise RuntimeError(f"{file} has sha256 {digest}, expected {info['sha256']} "
                           f"({file.with_suffix('.json').name}): restore it with git or retrain "
                           f"it with `{command}`")
    model = (network or FeatureNetwork)()
    state = torch.load(file, map_location="cpu", weights_only=True)
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    return model.eval()


def feature_network_id() -> str:
    return "cgt-featnet-" + feature_network_info()["sha256"][:12]


@torch.no_grad()
def extract_features(images, model: FeatureNetwork | None = None, batch_size: int = 500,
                     device="cpu") -> np.ndarray:
    """Penultimate (256-d) features as float64, N×256."""
    model = (model or load_feature_network()).to(device)
    out = [model.features(to_input(images[i:i + batch_size]).to(device)).double().cpu()
           for i in range(0, len(images), batch_size)]
    return torch.cat(out).numpy()


@torch.no_grad()
def head_probabilities(features: np.ndarray, head: str, model: FeatureNetwork | None = None) -> np.ndarray:
    """The classifier ``head``'s probabilities from features of :func:`extract_features`
    (the heads are linear on them, so no image passes the network twice)."""
    if head not in HEADS:
        raise KeyError(f"no classifier head '{head}'; valid: {', '.join(HEADS)}")
    linear = (model or load_feature_network()).heads[head]
    logits = torch.from_numpy(features) @ linear.weight.double().T + linear.bias.double()
    return torch.softmax(logits, 1).numpy()


@torch.no_grad()
def class_probabilities(images, head: str, model: FeatureNetwork | None = None,
                        batch_size: int = 500, device="cpu") -> np.ndarray:
    if head not in HEADS:
        raise KeyError(f"no classifier head '{head}'; valid: {', '.join(HEADS)}")
    model = (model or load_feature_network()).to(device)
    out = [torch.softmax(model(to_input(images[i:i + batch_size]).to(device), head), 1).cpu()
           for i in range(0, len(images), batch_size)]
    return torch.cat(out).double().numpy()


def predict(images, head: str, model: FeatureNetwork | None = None, device="cpu") -> np.ndarray:
    return class_probabilities(images, head, model, device=device).argmax(1)
