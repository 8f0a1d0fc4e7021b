"""What the machine is: the facts that decide a run's speed and its rounding.

Two CPUs of the same architecture can give different numbers for the same code:
oneDNN and ATen pick their kernels by instruction set (AMX, AVX512-BF16, AVX-512,
AVX2), and each rounds its sums in its own order.  Every run record therefore
names the CPU model, its bfloat16 units and any setting that caps the kernels.
"""

from __future__ import annotations

import functools
import os
import platform

import torch

# The flags that change which kernels run: bf16 units (AMX tiles, AVX512-BF16),
# then the vector widths below them.
KERNEL_FLAGS = ("amx_bf16", "avx512_bf16", "avx512f", "avx2")
# Environment variables that cap or pick the kernels, and so change the rounding.
KERNEL_SETTINGS = ("ONEDNN_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY")


@functools.lru_cache(maxsize=1)
def _cpuinfo() -> str:
    try:
        with open("/proc/cpuinfo") as file:
            return file.read()
    except OSError:
        return ""


def cpu_model() -> str:
    """The first 'model name' of /proc/cpuinfo, else what ``platform`` knows."""
    for line in _cpuinfo().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def cpu_kernel_flags() -> list[str]:
    """The :data:`KERNEL_FLAGS` this CPU has, read from the first CPU's flags line."""
    for line in _cpuinfo().splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
            return [flag for flag in KERNEL_FLAGS if flag in flags]
    return []


def cpu_has_bf16() -> bool:
    """Native bfloat16 units (AVX512-BF16 or AMX), read from /proc/cpuinfo on Linux."""
    return bool({"amx_bf16", "avx512_bf16"} & set(cpu_kernel_flags()))


def kernel_settings() -> list[str]:
    """The :data:`KERNEL_SETTINGS` that are set, as ``NAME=value``."""
    return [f"{name}={os.environ[name]}" for name in KERNEL_SETTINGS if os.environ.get(name)]


def cpu_description() -> str:
    """E.g. ``cpu (Intel Xeon, 2 cores, x86_64; amx_bf16 avx512_bf16 avx512f avx2)``,
    with any kernel cap appended (``; ONEDNN_MAX_CPU_ISA=AVX512_CORE_BF16``)."""
    flags = " ".join(cpu_kernel_flags()) or "no bf16 or AVX flags"
    parts = [f"{cpu_model()}, {os.cpu_count()} cores, {platform.machine()}", flags,
             *kernel_settings()]
    return f"cpu ({'; '.join(parts)})"


def device_description() -> str:
    """The GPU's name when CUDA is present, else :func:`cpu_description`."""
    if torch.cuda.is_available():
        return f"cuda ({torch.cuda.get_device_name(0)})"
    return cpu_description()
