"""``python -m cgt.metrics train-features | train-perceptual``: train the shipped networks
(the feature network behind every score; the perceptual network of BSA's loss)."""

import argparse
from pathlib import Path

import torch

from . import perceptual
from .features import save_feature_network, train_feature_network, weights_file

DEFAULTS = {"train-features": (5000, 0), "train-perceptual": (4000, 1)}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m cgt.metrics", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for command, (steps, seed) in DEFAULTS.items():
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
        train, save, default = train_feature_network, save_feature_network, weights_file()
    else:
        train, save = perceptual.train_perceptual_network, perceptual.save_perceptual_network
        default = perceptual.weights_file()
    model, info = train(args.steps, args.batch_size, args.seed, args.tiny, args.device,
                        bf16=not args.fp32)
    info["command"] = (f"python -m cgt.metrics {args.command} --steps {args.steps} --batch-size "
                       f"{args.batch_size} --seed {args.seed} --device {args.device}"
                       + (" --tiny" if args.tiny else "") + (" --fp32" if args.fp32 else ""))
    info["device"] = torch.cuda.get_device_name(0) if args.device == "cuda" else "cpu"
    info = save(model, info, Path(args.out) if args.out else default)
    print(info)


if __name__ == "__main__":
    main()
