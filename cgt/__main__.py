"""``python -m cgt <command>``: the project's command line.

Commands:
  pretrain <recipe>   train a source generator (recipes: see `python -m cgt pretrain --help`);
                      `torchrun --nproc_per_node N -m cgt pretrain <recipe>` trains it
                      data-parallel over N processes (the global batch is the recipe's)
  sample <model>      a PNG grid of samples from a source model, a model file or a run record

Every command does what a function of `cgt.api` (or `cgt.pretrain`) does from Python.
"""

import argparse
import sys
from pathlib import Path

from . import api
from .checkpoints import CheckpointError


def main(argv=None) -> None:
    from .pretrain import REAL_RECIPES, RECIPES, pretrain

    parser = argparse.ArgumentParser(prog="python -m cgt", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    recipes = "\n".join(f"  {name}: {r.description}"
                        for name, r in {**RECIPES, **REAL_RECIPES}.items())
    p = sub.add_parser("pretrain", help="train a pretrained source generator",
                       description="Train a source generator and write data/models/<recipe>.pt "
                                   "plus its entry in data/models/sources.json.\n\nrecipes:\n"
                                   + recipes, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("recipe", choices=sorted(RECIPES) + sorted(REAL_RECIPES))
    p.add_argument("--iterations", type=int, help="default: the recipe's")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto (CUDA if present), cpu or cuda")
    p.add_argument("--tiny", action="store_true", help="train on the tiny data variant")
    p.add_argument("--out", type=Path, help="folder for the model (default data/models)")
    p.add_argument("--batch-size", type=int, help="default: the recipe's")
    p.add_argument("--work-dir", type=Path,
                   help="checkpoint here; running the same command again resumes the run")
    p.add_argument("--checkpoint-every", type=int, default=500,
                   help="iterations between checkpoints in --work-dir (default 500)")
    s = sub.add_parser("sample", help="a grid of samples from any model",
                       description="Write a PNG grid of samples from MODEL: a source name "
                                   "(e.g. fashion8), a cgt model file (.pt) or a run record (.json).",
                       epilog="example: python -m cgt sample fashion8 --out dresses.png "
                              "--class dress -n 16")
    s.add_argument("model")
    s.add_argument("--out", type=Path, required=True, help="the PNG to write")
    s.add_argument("--class", dest="classes", action="append", metavar="NAME",
                   help="sample this class (repeat for several; default: all)")
    s.add_argument("-n", type=int, default=64, help="number of samples (default 64)")
    s.add_argument("--truncation", type=float, help="truncate z to ±T (default: none)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--force", action="store_true", help="replace --out if it exists")
    args = parser.parse_args(argv)
    if args.command == "sample":
        try:
            grid = api.sample_grid(api.load(args.model), args.n, args.classes, args.truncation,
                                   args.seed)
            print(f"{args.n} samples of {args.model}: {api.save_png(grid, args.out, args.force)}")
        except (api.UsageError, CheckpointError, FileNotFoundError) as error:
            sys.exit(f"error: {error}")
        return
    entry = pretrain(args.recipe, args.iterations, args.seed, args.device, args.tiny, args.out,
                     work_dir=args.work_dir,
                     checkpoint_every=args.checkpoint_every if args.work_dir else 0,
                     batch_size=args.batch_size)
    if not entry:  # another process of a torchrun launch: rank 0 reports
        return
    print(f"{args.recipe}: {entry['iterations']} iterations in {entry['wall_time_s']} s on "
          f"{entry['device']}; {entry['file']} ({entry['size_bytes'] / 1e6:.1f} MB) "
          f"sha256 {entry['sha256'][:16]}…")


if __name__ == "__main__":
    main()
