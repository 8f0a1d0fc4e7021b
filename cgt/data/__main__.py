"""``python -m cgt.data …`` is ``cgt data …`` (the form data/README.md and the shipped
networks' manifests were written with)."""

import sys

from ..__main__ import main

main(["data", *sys.argv[1:]])
