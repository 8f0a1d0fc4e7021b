"""``python -m cgt.metrics train-features``: train the shipped feature network."""

import argparse

from .features import save_feature_network, train_feature_network, weights_file


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m cgt.metrics", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train-features", help="train the feature network on the embedded data")
    t.add_argument("--steps", type=int, default=5000)
    t.add_argument("--batch-size", type=int, default=128)
    t.add_argument("--fp32", action="store_true", help="train without bf16 autocast")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--tiny", action="store_true")
    t.add_argument("--device", default="cpu")
    t.add_argument("--out", help="weights file (default data/models/feature_net.pt)")
    args = parser.parse_args(argv)
    model, info = train_feature_network(args.steps, args.batch_size, args.seed, args.tiny,
                                        args.device, bf16=not args.fp32)
    import torch
    from pathlib import Path

    info["command"] = (f"python -m cgt.metrics train-features --steps {args.steps} --batch-size "
                       f"{args.batch_size} --seed {args.seed} --device {args.device}"
                       + (" --tiny" if args.tiny else "") + (" --fp32" if args.fp32 else ""))
    info["device"] = torch.cuda.get_device_name(0) if args.device == "cuda" else "cpu"
    info = save_feature_network(model, info, Path(args.out) if args.out else weights_file())
    print(info)


if __name__ == "__main__":
    main()
