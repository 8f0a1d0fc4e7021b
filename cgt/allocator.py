"""Keep freed memory in the process: on glibc, a CPU training step spends most of its
system time faulting in fresh pages.

glibc's ``malloc`` serves every block above its mmap threshold (at most 32 MiB, by
default adjusted as blocks come and go) with a fresh ``mmap`` and returns it to the
kernel on ``free``; it also trims the heap's free top.  A training step's activations,
gradients and optimiser buffers are such blocks, allocated and freed at every step, so
each step faults their pages in again and the kernel zeroes them.  On the 2-core
machines this project runs on, a 128-px BigGAN step at batch 1 took 9.4 s of which
most was system time, and 3.8 s with freed blocks kept (``python -m cgt plan``'s
Places365 runs: 39 s → 20 s).  PyTorch's CPU tuning guide makes the same point with
jemalloc or tcmalloc; this needs no extra library.

:func:`keep_freed_memory` raises both thresholds to 2 GiB with ``mallopt``, at import
of :mod:`cgt` (a process's resident memory then stays at its peak instead of falling
back after each step).  Set ``CGT_MALLOC=system`` to keep glibc's defaults.  Results
do not depend on it: where a block lives never changes what is computed.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

M_TRIM_THRESHOLD = -1  # glibc's mallopt parameter numbers (malloc.h)
M_MMAP_THRESHOLD = -3
THRESHOLD = 2**31 - 1  # mallopt takes an int: the largest, 2 GiB


def keep_freed_memory() -> bool:
    """Tell glibc's allocator to keep freed blocks up to 2 GiB for reuse; True when it
    took (False on another C library, or with ``CGT_MALLOC=system``)."""
    if os.environ.get("CGT_MALLOC") == "system":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (macOS, musl): nothing to tune
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    return bool(mallopt(M_MMAP_THRESHOLD, THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, THRESHOLD))
