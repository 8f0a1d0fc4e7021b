"""The perceptual network of BSA's loss: a second classifier, never a scorer.

BSA's Eq. (3) compares images in the layers of a trained classifier (VGG16 in the
paper) while FID is measured in another network (Inception).  Offline, the
scoring network is :class:`~cgt.metrics.FeatureNetwork`; a loss computed in its
own features would train every same-loss method on what the scores measure.  So
the loss gets its own network, of another design and another recipe: VGG-like
(two 3×3 convolutions per stage, no batch norm, 32-48-96 channels), trained on the
embedded datasets *except* the two BSA targets (LFW and the emoji), as VGG16 never
saw FFHQ.  Its weights ship in ``data/models/perceptual_net.pt`` with command,
seed, test accuracies and sha256 in ``perceptual_net.json``; a run names it
``cgt-percnet-<first 12 hex of its sha256>``.
"""

from __future__ import annotations

import argparse
import json
from functools import lru_cache
from pathlib import Path

import torch
from torch import nn

from .. import paths
from . import features
from .features import _load_checked, save_feature_network, train_classifier

# The targets of the BSA chapter are left out: the network has never seen a face.
PERCEPTUAL_HEADS = {"fashion_mnist": 10, "animal_shape": 10, "hanzi": 3755, "digits": 10}
WIDTHS = (32, 48, 96)
COMMAND = "cgt metrics train-perceptual"


class PerceptualNetwork(nn.Module):
    """Three VGG-style stages (two 3×3 conv + ReLU each, max-pool between) → global
    average pool → one linear head per dataset.  Eq. (3)'s perceptual term compares
    the six post-ReLU activations (:func:`cgt.methods.bsa.classifier_layers`)."""

    def __init__(self, heads: dict[str, int] = PERCEPTUAL_HEADS):
        super().__init__()
        layers, cin = [], 3
        for i, cout in enumerate(WIDTHS):
            layers += [nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(),
                       nn.Conv2d(cout, cout, 3, padding=1), nn.ReLU()]
            if i < len(WIDTHS) - 1:
                layers.append(nn.MaxPool2d(2))
            cin = cout
        self.trunk = nn.Sequential(*layers)
        self.heads = nn.ModuleDict({name: nn.Linear(cin, n) for name, n in heads.items()})

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.trunk(x).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor, head: str) -> torch.Tensor:
        return self.heads[head](self.features(x))


def train_perceptual_network(steps: int = 4000, batch_size: int = 128, seed: int = 1,
                             tiny: bool = False, device: str = "cpu", bf16: bool = True,
                             progress: bool = True):
    """The shipped perceptual network's recipe: :func:`~cgt.metrics.features.train_classifier`
    on :data:`PERCEPTUAL_HEADS` at peak rate 1e-3 (no batch norm), seed 1."""
    return train_classifier(PerceptualNetwork, PERCEPTUAL_HEADS, steps, batch_size, seed, tiny,
                            device, bf16, progress, lr=1e-3, desc="perceptual network")


def weights_file() -> Path:
    return paths.shipped_models() / "perceptual_net.pt"


def save_perceptual_network(model: PerceptualNetwork, info: dict, file: Path | None = None) -> dict:
    return save_feature_network(model, info, file or weights_file())


@lru_cache(maxsize=1)
def load_perceptual_network() -> PerceptualNetwork:
    """The shipped perceptual network (fp32, eval mode, frozen), after checking its sha256."""
    network = _load_checked(weights_file(), PerceptualNetwork, COMMAND)
    for p in network.parameters():
        p.requires_grad_(False)
    return network


def perceptual_network_id() -> str:
    info = json.loads(weights_file().with_suffix(".json").read_text())
    return "cgt-percnet-" + info["sha256"][:12]


TRAINING_DEFAULTS = {"train-features": (5000, 0), "train-perceptual": (4000, 1)}


def main(argv=None, prog: str = "cgt metrics") -> None:
    """``cgt metrics train-features | train-perceptual``: train the shipped networks (the
    feature network behind every score; the perceptual network of BSA's loss)."""
    parser = argparse.ArgumentParser(prog=prog, description="Train the shipped feature or "
                                     "perceptual network.")
    sub = parser.add_subparsers(dest="command", required=True)
    for command, (steps, seed) in TRAINING_DEFAULTS.items():
        what = "feature" if command == "train-features" else "perceptual"
        t = sub.add_parser(command, help=f"train the {what} network on the embedded data")
        t.add_argument("--steps", type=int, default=steps)
        t.add_argument("--batch-size", type=int, default=128)
        t.add_argument("--fp32", action="store_true", help="train without bf16 autocast")
        t.add_argument("--seed", type=int, default=seed)
        t.add_argument("--tiny", action="store_true")
        t.add_argument("--device", default="cpu")
        t.add_argument("--out", help=f"weights file (default data/models/{what}_net.pt)")
    args = parser.parse_args(argv)
    if args.command == "train-features":
        train, save = features.train_feature_network, save_feature_network
        default = features.weights_file()
    else:
        train, save = train_perceptual_network, save_perceptual_network
        default = weights_file()
    model, info = train(args.steps, args.batch_size, args.seed, args.tiny, args.device,
                        bf16=not args.fp32)
    info["command"] = (f"cgt metrics {args.command} --steps {args.steps} --batch-size "
                       f"{args.batch_size} --seed {args.seed} --device {args.device}"
                       + (" --tiny" if args.tiny else "") + (" --fp32" if args.fp32 else ""))
    info["device"] = torch.cuda.get_device_name(0) if args.device == "cuda" else "cpu"
    info = save(model, info, Path(args.out) if args.out else default)
    print(info)
