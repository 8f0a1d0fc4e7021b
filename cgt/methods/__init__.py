"""The three papers' methods and their baselines, each a small module over :mod:`cgt.nn`."""
