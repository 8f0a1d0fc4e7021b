"""``python -m cgt.bench`` (``make bench``): how fast the training path runs here.

Prints, for the current machine: training-step throughput of two 32×32 settings,
cGANTransfer's (the 8-class source model, BigGAN-style G and D) and CTF's phase 2
(G_A reading the transferring features of a frozen G_LH, the box-regressing D and
its self-supervision loss), on the naive path (fp32, NCHW) and the fast path
(bf16 autocast + channels-last where supported), their ratio, the
achieved FLOP/s (counted with ``torch.utils.flop_counter``) against a matmul
peak measured in the same run (the best over several sizes and timings, with its spread), generator-sampling and feature-extraction
throughput, and peak memory.  Every figure is the median of ``--repeats`` timings;
the figures also go to ``_build/bench.json``.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from . import atomic, paths
from .machine import device_description
from .methods import ctf
from .nn import Discriminator, GANConfig, Generator
from .train import TrainConfig, fast_path, pick_device, train_gan


PEAK_SIZES = (1024, 2048, 4096)
PEAK_REPEATS = 5


def matmul_peak(device, dtype, sizes=PEAK_SIZES, repeats: int = PEAK_REPEATS,
                budget_s: float = 2.0) -> dict:
    """The machine's usable matmul peak in ``dtype``: the best FLOP/s of square products
    over ``sizes``, each size timed ``repeats`` times (one product per timing), with the
    spread per size.  One size rarely shows the peak (small ones are overhead-bound,
    and a CPU's clock and caches move between runs), so the best of all is the peak;
    sizes stop growing once one product takes longer than ``budget_s``."""
    by_size = {}
    for size in sizes:
        a = torch.randn(size, size, device=device, dtype=dtype)
        b = torch.randn(size, size, device=device, dtype=dtype)
        a @ b  # warm-up: kernel choice, first-touch of the memory
        rates = []
        for _ in range(repeats):
            _sync(device)
            start = time.perf_counter()
            a @ b
            _sync(device)
            rates.append(2 * size ** 3 / (time.perf_counter() - start))
        by_size[size] = {"median": statistics.median(rates), "min": min(rates), "max": max(rates)}
        if 2 * size ** 3 / max(rates) > budget_s:
            break
    return {"peak": max(r["max"] for r in by_size.values()), "by_size": by_size}


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


@dataclass
class Setting:
    """Models, data and ``train_gan`` keywords of one benchmarked training step."""
    generator: torch.nn.Module
    discriminator: torch.nn.Module
    images: torch.Tensor
    labels: torch.Tensor
    train_kwargs: dict = field(default_factory=dict)


def cgantransfer_setting(width: int) -> Setting:
    cfg = GANConfig(resolution=32, channels=1, num_classes=8, ch=width, dim_z=128, init="N02")
    images = torch.rand(512, 1, 32, 32) * 2 - 1
    return Setting(Generator(cfg), Discriminator(cfg), images, torch.arange(512) % 8)


def ctf_setting(width: int) -> Setting:
    """Phase 2 of CTF at the paper profile's proportions (G_LH twice G_A's width)."""
    cfg = GANConfig(resolution=32, channels=1, num_classes=10, ch=width, dim_z=128, init="N02")
    images = torch.rand(512, 1, 32, 32) * 2 - 1
    low, low_labels = torch.rand(256, 1, 8, 8) * 2 - 1, torch.arange(256) % 10
    low_to_high = ctf.LowToHigh(1, 10, 10, width=2 * width, noise_dim=32, noise_channels=4,
                                ctf_channels=8)
    generator = ctf.CTFGenerator(Generator(cfg), low_to_high, low, low_labels)
    return Setting(generator, ctf.BoxDiscriminator(cfg), images, torch.arange(512) % 10,
                   {"select_parameters": ctf.select_conditional,
                    "d_regulariser": ctf.self_supervision(images, weight=1.0)})


SETTINGS = {"cGANTransfer": cgantransfer_setting, "CTF": ctf_setting}


def step_flops(width: int, batch: int, setting: str = "cGANTransfer") -> float:
    """FLOPs of one training iteration (one D step + one G step), counted on CPU in fp32."""
    s = SETTINGS[setting](width)
    with FlopCounterMode(display=False) as counter:
        train_gan(s.generator, s.discriminator, s.images, s.labels,
                  TrainConfig(iterations=1, batch_size=batch, device="cpu", precision="fp32"),
                  progress=False, **s.train_kwargs)
    return float(counter.get_total_flops())


def step_time(width: int, batch: int, precision: str, device, steps: int,
              setting: str = "cGANTransfer") -> float:
    """Seconds per training iteration: (time of 2 + steps) − (time of 2) iterations, over steps."""
    times = []
    for iterations in (2, 2 + steps):
        torch.manual_seed(0)
        s = SETTINGS[setting](width)
        config = TrainConfig(iterations=iterations, batch_size=batch, device=str(device),
                             precision=precision)
        _sync(device)
        start = time.perf_counter()
        train_gan(s.generator, s.discriminator, s.images, s.labels, config, progress=False,
                  **s.train_kwargs)
        _sync(device)
        times.append(time.perf_counter() - start)
    return (times[1] - times[0]) / steps


def sampling_throughput(device, precision: str, n: int = 1000) -> tuple[float, float]:
    """Images/s of G sampling (width 32) and of the feature network's extraction."""
    from .metrics import extract_features
    from .metrics.evaluate import generate

    g = cgantransfer_setting(32).generator.to(device).eval()
    dtype, _ = fast_path(device, precision)
    with torch.autocast(device.type, dtype=dtype or torch.bfloat16, enabled=dtype is not None):
        generate(g, 100)
        start = time.perf_counter()
        fake, _ = generate(g, n)
        sampling = n / (time.perf_counter() - start)
    start = time.perf_counter()
    extract_features(fake, device=device)
    return sampling, n / (time.perf_counter() - start)


def peak_memory_mb(device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated() / 2 ** 20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run(widths=(16, 32, 64), batch: int = 64, steps: int = 3, repeats: int = 3,
        device: str = "auto") -> dict:
    device = pick_device(device)
    median = lambda f: statistics.median(f() for _ in range(repeats))  # noqa: E731
    fast_dtype, channels_last = fast_path(device, "auto")
    # bf16 products are timed only where the fast path uses them: without bf16 units a
    # CPU emulates them ~100× slower than fp32, and nothing here runs in bf16 then
    peaks = {"fp32": matmul_peak(device, torch.float32)}
    if fast_dtype is not None:
        peaks["bf16"] = matmul_peak(device, fast_dtype)
    report = {"device": device_description(), "torch": torch.__version__, "batch": batch,
              "repeats": repeats, "fast_path": {"autocast": str(fast_dtype),
                                                "channels_last": channels_last},
              "matmul_peak_tflops": {k: v["peak"] / 1e12 for k, v in peaks.items()},
              "matmul_by_size_tflops": {k: {size: {stat: x / 1e12 for stat, x in r.items()}
                                            for size, r in v["by_size"].items()}
                                        for k, v in peaks.items()},
              "training": {}}
    timed = [("cGANTransfer", width) for width in widths] + [("CTF", 32)]
    for setting, width in timed:
        flops = step_flops(width, batch, setting)
        row = {"setting": setting, "width": width, "gflop_per_step": flops / 1e9}
        paths_to_time = ("fp32", "auto") if width == 32 else ("auto",)
        for precision in paths_to_time:
            seconds = median(lambda: step_time(width, batch, precision, device, steps, setting))
            name = "naive" if precision == "fp32" else "fast"
            peak = report["matmul_peak_tflops"]["bf16" if fast_dtype and name == "fast" else "fp32"]
            row[name] = {"it_per_s": 1 / seconds, "images_per_s": batch / seconds,
                         "tflops": flops / seconds / 1e12,
                         "utilisation_of_peak": flops / seconds / 1e12 / peak}
        if "naive" in row:
            row["speedup"] = row["fast"]["it_per_s"] / row["naive"]["it_per_s"]
        report["training"][f"{setting}, width {width}"] = row
    sampling, features = sampling_throughput(device, "auto")
    report["sampling_images_per_s"] = sampling
    report["feature_extraction_images_per_s"] = features
    report["peak_memory_mb"] = peak_memory_mb(device)
    return report


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m cgt.bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--widths", type=int, nargs="+", default=[16, 32, 64])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=3, help="timed iterations per timing")
    parser.add_argument("--repeats", type=int, default=3, help="timings per figure (median)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", default=str(paths.build_dir() / "bench.json"))
    args = parser.parse_args(argv)
    report = run(tuple(args.widths), args.batch, args.steps, args.repeats, args.device)
    print(f"device: {report['device']}; fast path: {report['fast_path']}")
    for dtype, by_size in report["matmul_by_size_tflops"].items():
        sizes = "; ".join(f"{size}²: median {r['median']:.3f} (min {r['min']:.3f}, max {r['max']:.3f})"
                          for size, r in by_size.items())
        print(f"matmul peak {dtype}: {report['matmul_peak_tflops'][dtype]:.3f} TFLOP/s, the best "
              f"of {PEAK_REPEATS} timings per size ({sizes})")
    for name, row in report["training"].items():
        line = f"{name} setting, batch {args.batch}: {row['gflop_per_step']:.0f} GFLOP/step"
        for path in ("naive", "fast"):
            if path in row:
                r = row[path]
                line += (f"; {path} {r['it_per_s']:.2f} it/s = {r['images_per_s']:.0f} img/s, "
                         f"{r['tflops']:.3f} TFLOP/s ({100 * r['utilisation_of_peak']:.0f} % of peak)")
        if "speedup" in row:
            line += f"; fast/naive {row['speedup']:.2f}×"
        print(line)
    print(f"G sampling: {report['sampling_images_per_s']:.0f} img/s; feature extraction: "
          f"{report['feature_extraction_images_per_s']:.0f} img/s; "
          f"peak memory {report['peak_memory_mb']:.0f} MB")
    atomic.write_json(Path(args.out), report)
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
