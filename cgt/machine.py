"""What the machine is: the facts that decide a run's speed and its rounding.

Two CPUs of the same architecture can give different numbers for the same code:
oneDNN and ATen pick their kernels by instruction set (AMX, AVX512-BF16, AVX-512,
AVX2), and each rounds its sums in its own order.  Every run record therefore
names the CPU model, its bfloat16 units and any setting that caps the kernels.
The precision a run takes (:func:`fast_path`) follows from the same facts.
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


def pick_device(device: str = "auto") -> torch.device:
    """CUDA when present, else CPU; ``device`` forces one."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


PRECISIONS = ("auto", "fp32", "bf16")


def fast_path(device: torch.device, precision: str) -> tuple[torch.dtype | None, bool]:
    """(autocast dtype or None, channels-last?) for ``precision`` on ``device``.

    ``auto`` takes bf16 autocast + channels-last on CPUs with bf16 units
    (AVX512-BF16/AMX; `make bench` measures the gain: 2.9× the fp32 step at width
    32 on a 2-core AVX512-BF16 EPYC, about 5.7× on an AMX machine) and fp32 (TF32 matmuls)
    elsewhere.  On an H100 the 32×32 models are launch-bound and autocast's casts
    made a step slower (12.8 vs 20.0 it/s at width 32), so CUDA keeps fp32 unless
    ``bf16`` is asked for.  Losses are computed in fp32 either way; on CPU, spectral
    norm's power iteration (``torch.mv``) is not autocast and stays fp32.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision '{precision}'; valid: {', '.join(PRECISIONS)}")
    if precision == "fp32":
        return None, False
    if precision == "bf16":
        return torch.bfloat16, True
    if device.type == "cpu" and cpu_has_bf16():
        return torch.bfloat16, True
    return None, False


def fast_autocast(device: torch.device, precision: str = "auto"):
    """The autocast context of :func:`fast_path` on ``device``: bf16 where the fast path
    takes it, a no-op where it keeps fp32.  Sampling for metrics uses it too, so a
    run is scored at the precision it trained in (features are always fp32)."""
    dtype, _ = fast_path(device, precision)
    return torch.autocast(device.type, dtype=dtype or torch.bfloat16, enabled=dtype is not None)


def compute_kind() -> str:
    """The default device and the precision ``auto`` takes on it, e.g. ``cpu-bf16``: what a
    run key must tell apart, since the same run rounds differently on each."""
    device = pick_device()
    dtype, _ = fast_path(device, "auto")
    return f"{device.type}-{'bf16' if dtype is not None else 'fp32'}"
