"""``python -m cgt.data …`` is ``cgt data …`` (the form data/manifest.json records)."""

import sys

from ..__main__ import main

main(["data", *sys.argv[1:]])
