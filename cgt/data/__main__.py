"""``python -m cgt.data build [--tiny] [--size N] [names…]``: build the embedded datasets."""

import argparse
import json
import time

from . import embedded as _build


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m cgt.data", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="fetch the pinned sources and build the arrays")
    b.add_argument("names", nargs="*", default=list(_build.DATASETS),
                   help=f"datasets to build (default: all of {', '.join(_build.DATASETS)})")
    b.add_argument("--size", type=int, default=32, help="image resolution (default 32)")
    b.add_argument("--tiny", action="store_true", help="the small variant the tests use")
    b.add_argument("--no-verify", action="store_true",
                   help="do not compare with the checksums in data/manifest.json")
    m = sub.add_parser("manifest", help="write data/manifest.json from the built variants "
                       "(after a deliberate change of sources or recipe)")
    m.add_argument("--size", type=int, default=32)
    args = parser.parse_args(argv)
    if args.command == "manifest":
        _build.write_expected_manifest(args.size)
        return
    start = time.perf_counter()
    manifest = _build.build(args.names, size=args.size, tiny=args.tiny, verify=not args.no_verify)
    folder = _build.variant_dir(args.size, args.tiny)
    size_mb = sum(f.stat().st_size for f in folder.glob("*.npz")) / 1e6
    print(json.dumps({n: manifest[n]["counts"] for n in args.names}))
    print(f"data ready in {folder} ({size_mb:.1f} MB) after {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
