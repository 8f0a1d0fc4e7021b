"""Embedded datasets built from registry packages, and real datasets on disk.

>>> from cgt import data
>>> train = data.load("fashion_mnist", "train")
>>> shots = data.k_shot(data.select_classes(train, ["shirt", "ankle-boot"]), k=25, seed=0)
"""

from .embedded import DATASETS, ChecksumMismatch, build, gb2312_level1
from .datasets import (class_count, class_index, k_shot, load, low_quality, select_classes,
                       smallest_class, train_test)
from .images import ImageSet, to_uint8
from .real import load_cifar, load_image_folder
from .sources import MissingSourceError

__all__ = ["DATASETS", "ChecksumMismatch", "ImageSet", "MissingSourceError", "build",
           "class_count", "class_index", "gb2312_level1", "k_shot", "load", "load_cifar", "load_image_folder",
           "low_quality", "select_classes", "smallest_class", "to_uint8", "train_test"]
