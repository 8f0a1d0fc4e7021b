"""``python -m cgt.metrics …`` is ``cgt metrics …`` (the form the shipped networks'
manifests record)."""

import sys

from ..__main__ import main

main(["metrics", *sys.argv[1:]])
