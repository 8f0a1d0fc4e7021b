"""``cgt <command>`` (or ``python -m cgt <command>``): the project's one command line.

Commands:
  pretrain <recipe>   train a source generator (recipes: see `cgt pretrain --help`);
                      `torchrun --nproc_per_node N -m cgt pretrain <recipe>` trains it
                      data-parallel over N processes (the global batch is the recipe's)
  transfer <method>   teach a source model the classes of your image folder (cGANTransfer
                      or a baseline)
  adapt               adapt a source model to a folder of images of one domain (BSA)
  ctf                 a conditional GAN from your image folder and low-quality images (CTF)
  sample <model>      a PNG grid of samples from a source model, a model file or a run record
  plan                every run a profile's book makes: steps, FLOPs, time estimates, and
                      whether its data demands can be met (`cgt plan --help`)
  data                build the embedded datasets (`cgt data build [--tiny]`)
  metrics             train the shipped feature or perceptual network
  book                execute the chapters and render the book, or check the rendered pages
  bench               how fast the training path runs here

Every command does what a function of `cgt.api` (or of the module it names) does from
Python; each reports bad input and missing files as one line, without a traceback.
"""

import argparse
import shlex
import sys
from pathlib import Path

from . import api, bench, book, plan
from .checkpoints import CheckpointError
from .data.embedded import main as data_main
from .metrics.perceptual import main as metrics_main
from .pretrain import REAL_RECIPES, RECIPES, pretrain

FORMAT = argparse.RawDescriptionHelpFormatter


def _pretrain_parser(sub) -> None:
    recipes = "\n".join(f"  {name}: {r.description}"
                        for name, r in {**RECIPES, **REAL_RECIPES}.items())
    p = sub.add_parser("pretrain", help="train a pretrained source generator",
                       description="Train a source generator and write data/models/<recipe>.pt "
                                   "plus its entry in data/models/sources.json.\n\nrecipes:\n"
                                   + recipes, formatter_class=FORMAT)
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


def _sample_parser(sub) -> None:
    s = sub.add_parser("sample", help="a grid of samples from any model",
                       description="Write a PNG grid of samples from MODEL: a source name "
                                   "(e.g. fashion8), a cgt model file (.pt, e.g. the model.pt "
                                   "that transfer and adapt write) or a run record (.json).",
                       epilog="example: python -m cgt sample fashion8 --out dresses.png "
                              "--class dress -n 16")
    s.add_argument("model")
    s.add_argument("--out", type=Path, required=True, help="the PNG to write")
    s.add_argument("--class", dest="classes", action="append", metavar="NAME",
                   help="sample this class (repeat for several; default: all, or the new ones)")
    s.add_argument("-n", type=int, default=64, help="number of samples (default 64)")
    s.add_argument("--truncation", type=float, help="truncate z to ±T (default: none)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--force", action="store_true", help="replace --out if it exists")


def _run_arguments(p, source: bool = True) -> None:
    """The options ``transfer``, ``adapt`` and ``ctf`` share."""
    if source:
        p.add_argument("--source", required=True,
                       help=f"the source model to start from ({', '.join(api.source_names())})")
    p.add_argument("--images", type=Path, required=True, help="the folder of your images")
    p.add_argument("--out", type=Path, required=True,
                   help="folder for model.pt, samples.png, report.md/json and the run record")
    p.add_argument("--shots", type=int, help="use K images per class, drawn with --seed (default: all)")
    p.add_argument("--iterations", type=int, help="training steps (default: the profile's)")
    p.add_argument("--batch-size", type=int, help="default: the profile's")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--profile", default="quick", choices=("smoke", "quick", "paper"),
                   help="the chapter's settings to use (default quick; smoke: a seconds-long check)")
    p.add_argument("--force", action="store_true", help="replace another run's outputs in --out")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _transfer_parser(sub) -> None:
    t = sub.add_parser(
        "transfer", help="teach a source model new classes from your images",
        description="Extend a class-conditional source model by the classes of --images (one "
                    "sub-folder per class: FOLDER/<class>/<image>) and train as the cGANTransfer "
                    "chapter does. Images of any size and mode are centre-cropped, resized and "
                    "converted to the source's channels; report.md says how. Run the same command "
                    "again after an interruption and it resumes.\n\nmethods:\n  cgantransfer: "
                    "new classes as learned combinations of old ones (Eq. 5-7)\n  bsa-extension: "
                    "an independent scale/shift per new class, frozen G\n  transfergan: every "
                    "weight fine-tuned\n  scratch: a fresh G and D on your images only",
        epilog="example: python -m cgt transfer cgantransfer --source fashion8 --images shoes/ "
               "--shots 10 --out out/shoes", formatter_class=FORMAT)
    t.add_argument("method", choices=list(api.TRANSFER_METHODS))
    _run_arguments(t)


def _adapt_parser(sub) -> None:
    a = sub.add_parser(
        "adapt", help="adapt a source model to a folder of images (BSA)",
        description="Batch statistics adaptation (BSA): keep the source model's weights, learn "
                    "a scale/shift per channel and one latent code per image (Eq. 3) from the "
                    "images of --images (a flat folder, or sub-folders pooled into one domain). "
                    "Images are converted to the source's channels and size; report.md says how.",
        epilog="example: python -m cgt adapt --source animals --images faces/ --out out/faces",
        formatter_class=FORMAT)
    _run_arguments(a)


def _ctf_parser(sub) -> None:
    c = sub.add_parser(
        "ctf", help="a conditional GAN from your images and low-quality ones (CTF)",
        description="Conditional transferring features: train a class-conditional generator "
                    "from scratch on --images (FOLDER/<class>/<image>, made 32 px) with the "
                    "help of low-quality images: a low→high generator learns to turn them into "
                    "your classes (phase 1), and its DCT-domain difference features feed the "
                    "conditional generator (phase 2), as the CTF chapter trains them.",
        epilog="example: python -m cgt ctf --images glyphs/ --downsample 8 --grey --out out/glyphs",
        formatter_class=FORMAT)
    _run_arguments(c, source=False)
    low = c.add_mutually_exclusive_group()
    low.add_argument("--low-quality", type=Path, metavar="FOLDER",
                     help="low-quality images (any classes, e.g. another domain)")
    low.add_argument("--downsample", type=int, metavar="N",
                     help="use your images down-sampled to N px (default: 8)")
    c.add_argument("--grey", action="store_true", help="train in grey (default RGB)")


def _images(args):
    """The images of ``--images`` as the command's model makes them."""
    if args.command == "ctf":
        images = api.image_folder(args.images, 32, args.grey)
        low = (api.image_folder(args.low_quality, 32, args.grey, one_domain=True)
               if args.low_quality else None)
        return images, low
    if args.source not in api.source_names():
        raise api.UsageError(f"unknown source '{args.source}'; valid: {', '.join(api.source_names())}")
    return api.images_for(args.images, api.load(args.source), one_domain=args.command == "adapt"), None


def _train_command(args) -> None:
    images, low = _images(args)
    options = dict(shots=args.shots, iterations=args.iterations, batch_size=args.batch_size,
                   seed=args.seed, profile=args.profile, force=args.force,
                   progress=not args.quiet, command=args.line)
    print(f"{len(images)} images of {args.images} ({images.info['conversion']})")
    if args.command == "transfer":
        outcome = api.transfer(args.method, args.source, images, args.out, **options)
    elif args.command == "adapt":
        outcome = api.adapt(args.source, images, args.out, **options)
    else:
        outcome = api.ctf(images, args.out, low=low, downsample=args.downsample, **options)
    score = outcome.report["score"]
    print(f"FID {score.get('fid', float('nan')):.1f} against your images (the project's feature "
          f"network); model {outcome.model}, samples {outcome.samples}, report "
          f"{outcome.folder / 'report.md'}")
    for warning in outcome.report["warnings"]:
        print(f"warning: {warning}")


# Commands with their own parsers, in the modules whose work they do: (help, main).
TOOLS = {"plan": ("plan a profile's runs (see cgt plan --help)", plan.main),
         "data": ("build the embedded datasets", data_main),
         "metrics": ("train the shipped feature or perceptual network", metrics_main),
         "book": ("execute the chapters and render the book; check the rendered pages", book.main),
         "bench": ("how fast the training path runs here", bench.main)}
# What a user can fix: said in one line, never as a traceback.
USER_ERRORS = (api.UsageError, CheckpointError, FileNotFoundError, PermissionError,
               book.ChapterFailed)


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    try:
        status = _command(argv)
    except USER_ERRORS as error:
        sys.exit(f"error: {error}")
    if status:
        sys.exit(status)


def _command(argv) -> int | None:
    if argv[:1] and argv[0] in TOOLS:
        return TOOLS[argv[0]][1](argv[1:], prog=f"cgt {argv[0]}")
    parser = argparse.ArgumentParser(prog="cgt", description=__doc__, formatter_class=FORMAT)
    sub = parser.add_subparsers(dest="command", required=True)
    for add in (_pretrain_parser, _transfer_parser, _adapt_parser, _ctf_parser, _sample_parser):
        add(sub)
    for name, (text, _) in TOOLS.items():
        sub.add_parser(name, help=text)
    args = parser.parse_args(argv)
    args.line = shlex.join(["cgt", *argv])
    if args.command == "sample":
        grid = api.sample_grid(api.load(args.model), args.n, args.classes, args.truncation,
                               args.seed)
        print(f"{args.n} samples of {args.model}: {api.save_png(grid, args.out, args.force)}")
        return None
    if args.command in ("transfer", "adapt", "ctf"):
        return _train_command(args)
    entry = pretrain(args.recipe, args.iterations, args.seed, args.device, args.tiny, args.out,
                     work_dir=args.work_dir,
                     checkpoint_every=args.checkpoint_every if args.work_dir else 0,
                     batch_size=args.batch_size)
    if entry:  # else another process of a torchrun launch: rank 0 reports
        print(f"{args.recipe}: {entry['iterations']} iterations in {entry['wall_time_s']} s on "
              f"{entry['device']}; {entry['file']} ({entry['size_bytes'] / 1e6:.1f} MB) "
              f"sha256 {entry['sha256'][:16]}…")
    return None


if __name__ == "__main__":
    main()
