"""``cgt bench`` (``make bench``): how fast the training path runs here.

Prints, for the current machine and as it goes: training-step throughput of two 32×32
settings, cGANTransfer's (the 8-class source model, BigGAN-style G and D) and CTF's
phase 2 (G_A reading the transferring features of a frozen G_LH, the box-regressing D
and its self-supervision loss), on the naive path (fp32, NCHW) and the fast path (bf16
autocast + channels-last where supported), their ratio, and the achieved FLOP/s
(counted by :class:`cgt.planning.FlopCount`, with the formulas of ``torch.utils.flop_counter``)
against a roofline measured in the same run;
then generator-sampling and feature-extraction throughput and peak memory.

The roofline of a path is the best FLOP/s of the operations a step spends its FLOPs
in, each timed alone on that path: square matmuls of several sizes, and every
convolution and linear layer of the timed steps at the shape the step runs it, its
forward and its backward timed apart.  A step's FLOP/s is its FLOPs over the sum of
its operations' times (plus overhead), so it cannot beat the fastest of them: the
utilisation printed stays at or below 100 % (up to the noise of timing the step and
its operations apart: a few percent where one shape carries most of a small step),
and the operation that set the roofline is named.  Every figure is the median of ``--repeats`` timings (the roofline's: the
best); the figures also go to ``_build/bench.json``.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from . import atomic, paths
from .machine import device_description
from .methods import ctf
from .metrics import extract_features
from .metrics.evaluate import generate
from .nn import Discriminator, GANConfig, Generator
from .planning import FlopCount
from .train import TrainConfig, fast_path, pick_device, train_gan


PEAK_SIZES = (1024, 2048, 4096)
PEAK_REPEATS = 5
OP_REPEATS = 3  # timings per step operation (forward and backward each), the best kept
# The two paths a step is timed on: precision asked of the training loop.
PATHS = {"naive": "fp32", "fast": "auto"}


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
    generator = ctf.CTFGenerator(Generator(cfg), low_to_high, low, low_labels, same_classes=True)
    return Setting(generator, ctf.BoxDiscriminator(cfg), images, torch.arange(512) % 10,
                   {"select_parameters": ctf.select_conditional,
                    "d_regulariser": ctf.SelfSupervision(images, weight=1.0)})


SETTINGS = {"cGANTransfer": cgantransfer_setting, "CTF": ctf_setting}


def step_flops(width: int, batch: int, setting: str = "cGANTransfer") -> float:
    """FLOPs of one training iteration (one D step + one G step), counted on CPU in fp32."""
    s = SETTINGS[setting](width)
    with FlopCount() as counter:
        train_gan(s.generator, s.discriminator, s.images, s.labels,
                  TrainConfig(iterations=1, batch_size=batch, device="cpu", precision="fp32"),
                  progress=False, **s.train_kwargs)
    return float(counter.total)


@dataclass(frozen=True)
class Operation:
    """A convolution or linear layer of a training step, at the shape the step runs it."""
    kind: str  # "conv" or "linear"
    input_shape: tuple
    in_features: int
    out_features: int
    kernel: tuple = ()
    stride: tuple = ()
    padding: tuple = ()
    bias: bool = True

    def __str__(self) -> str:
        if self.kind == "linear":
            return f"linear {self.in_features}→{self.out_features} on {tuple(self.input_shape)}"
        n, _, h, w = self.input_shape
        kernel = "×".join(map(str, self.kernel))
        stride = f", stride {self.stride[0]}" if max(self.stride) > 1 else ""
        return (f"conv {kernel} {self.in_features}→{self.out_features} on {n}×{h}×{w}{stride}")

    def module(self) -> torch.nn.Module:
        if self.kind == "linear":
            return torch.nn.Linear(self.in_features, self.out_features, bias=self.bias)
        return torch.nn.Conv2d(self.in_features, self.out_features, self.kernel, self.stride,
                               self.padding, bias=self.bias)


def _operation(module, inputs) -> Operation:
    shape = tuple(inputs[0].shape)
    if isinstance(module, torch.nn.Linear):
        return Operation("linear", shape, module.in_features, module.out_features,
                         bias=module.bias is not None)
    return Operation("conv", shape, module.in_channels, module.out_channels, module.kernel_size,
                     module.stride, module.padding, module.bias is not None)


def step_operations(width: int, batch: int, setting: str = "cGANTransfer") -> set[Operation]:
    """Every convolution and linear layer one training iteration runs, with its input shape."""
    s = SETTINGS[setting](width)
    seen: set[Operation] = set()
    hooks = [m.register_forward_hook(lambda m, inputs, _: seen.add(_operation(m, inputs)))
             for net in (s.generator, s.discriminator) for m in net.modules()
             if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    try:
        train_gan(s.generator, s.discriminator, s.images, s.labels,
                  TrainConfig(iterations=1, batch_size=batch, device="cpu", precision="fp32"),
                  progress=False, **s.train_kwargs)
    finally:
        for hook in hooks:
            hook.remove()
    return seen


def operation_rates(operation: Operation, device, precision: str,
                    repeats: int = PEAK_REPEATS) -> dict:
    """Best FLOP/s of ``operation``'s forward and of its backward (weight and input
    gradients), timed apart on ``precision``'s path (autocast dtype, memory format)."""
    dtype, channels_last = fast_path(device, precision)
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    module = operation.module().to(device)
    x = torch.randn(operation.input_shape, device=device)
    if x.dim() == 4:
        module, x = module.to(memory_format=memory_format), x.contiguous(memory_format=memory_format)
    x.requires_grad_(True)
    autocast = torch.autocast(device.type, dtype=dtype or torch.bfloat16, enabled=dtype is not None)

    def forward():
        with autocast:
            return module(x)

    with FlopCount() as counted:  # also the warm-up
        y = forward()
    forward_flops = counted.total
    gradient = torch.randn_like(y)
    with FlopCount() as counted:
        y.backward(gradient)
    backward_flops = counted.total
    best = {"forward": float("inf"), "backward": float("inf")}
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        y = forward()
        _sync(device)
        best["forward"] = min(best["forward"], time.perf_counter() - start)
        start = time.perf_counter()
        y.backward(gradient)
        _sync(device)
        best["backward"] = min(best["backward"], time.perf_counter() - start)
    return {"forward": forward_flops / best["forward"], "backward": backward_flops / best["backward"]}


def roofline(candidates: dict) -> tuple[str, float]:
    """The best of ``candidates`` (operation name → FLOP/s): (its name, its FLOP/s)."""
    name = max(candidates, key=candidates.get)
    return name, candidates[name]


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


def _path_name(device, precision: str) -> str:
    dtype, channels_last = fast_path(device, precision)
    return f"{'bf16' if dtype is not None else 'fp32'}{', channels-last' if channels_last else ''}"


def measure_rooflines(device, operations: dict, peak_sizes=PEAK_SIZES, repeats: int = OP_REPEATS,
                      say=print) -> dict:
    """Per path ("naive", "fast"): every candidate's FLOP/s (the matmuls of ``peak_sizes``
    in the path's dtype, the forward and backward of each of ``operations[path]``) and the
    roofline, the best of them.  A fast path that is the naive one is measured once."""
    out = {}
    for path, precision in PATHS.items():
        name = _path_name(device, precision)
        same = next((o for o in out.values() if o["path"] == name), None)
        if same is not None:
            out[path] = same
            continue
        dtype = fast_path(device, precision)[0] or torch.float32
        matmul = matmul_peak(device, dtype, peak_sizes)
        say(f"{path} path ({name}): matmul best {matmul['peak'] / 1e12:.3f} TFLOP/s ("
            + "; ".join(f"{size}²: median {r['median'] / 1e12:.3f}" for size, r in matmul["by_size"].items())
            + ")", flush=True)
        candidates = {f"matmul {size}² {str(dtype).removeprefix('torch.')}": r["max"]
                      for size, r in matmul["by_size"].items()}
        ordered = sorted(operations[path], key=str)
        for i, operation in enumerate(ordered, 1):
            for direction, rate in operation_rates(operation, device, precision, repeats).items():
                candidates[f"{operation}, {direction}"] = rate
            if i % 10 == 0 or i == len(ordered):
                say(f"{path} path: timed {i}/{len(ordered)} step operations", flush=True)
        operation, peak = roofline(candidates)
        say(f"{path} path roofline: {peak / 1e12:.3f} TFLOP/s, set by {operation}", flush=True)
        out[path] = {"path": name, "operation": operation, "peak": peak, "candidates": candidates,
                     "matmul_by_size": matmul["by_size"]}
    return out


def run(widths=(16, 32, 64), batch: int = 64, steps: int = 3, repeats: int = 3,
        device: str = "auto", peak_sizes=PEAK_SIZES, op_repeats: int = OP_REPEATS,
        say=print) -> dict:
    """The benchmark (see the module's text); ``say`` prints each figure as it is measured."""
    device = pick_device(device)
    median = lambda f: statistics.median(f() for _ in range(repeats))  # noqa: E731
    fast_dtype, channels_last = fast_path(device, "auto")
    say(f"device: {device_description()}; naive path: {_path_name(device, 'fp32')}; "
        f"fast path: {_path_name(device, 'auto')}", flush=True)
    timed = [("cGANTransfer", width) for width in widths] + [("CTF", 32)]
    # the naive path is timed at width 32 only (it is the slow one)
    paths_of = {(setting, width): ("naive", "fast") if width == 32 else ("fast",)
                for setting, width in timed}
    operations = {"naive": set(), "fast": set()}
    for (setting, width), paths_timed in paths_of.items():
        found = step_operations(width, batch, setting)
        for path in paths_timed:
            operations[path] |= found
    say(f"the timed steps run {len(operations['fast'])} distinct convolution and linear "
        f"shapes; each is timed alone, forward and backward", flush=True)
    rooflines = measure_rooflines(device, operations, peak_sizes, op_repeats, say)
    report = {"device": device_description(), "torch": torch.__version__, "batch": batch,
              "repeats": repeats, "fast_path": {"autocast": str(fast_dtype),
                                                "channels_last": channels_last},
              "roofline": {path: {"path": r["path"], "operation": r["operation"],
                                  "tflops": r["peak"] / 1e12} for path, r in rooflines.items()},
              "candidates_tflops": {path: {k: v / 1e12 for k, v in r["candidates"].items()}
                                    for path, r in rooflines.items()},
              "training": {}}
    for setting, width in timed:
        flops = step_flops(width, batch, setting)
        row = {"setting": setting, "width": width, "gflop_per_step": flops / 1e9}
        for path in paths_of[(setting, width)]:
            seconds = median(lambda: step_time(width, batch, PATHS[path], device, steps, setting))
            peak = rooflines[path]["peak"]
            row[path] = {"it_per_s": 1 / seconds, "images_per_s": batch / seconds,
                         "tflops": flops / seconds / 1e12, "utilisation_of_peak": flops / seconds / peak}
        if "naive" in row:
            row["speedup"] = row["fast"]["it_per_s"] / row["naive"]["it_per_s"]
        report["training"][f"{setting}, width {width}"] = row
        say(_training_line(f"{setting}, width {width}", row, batch), flush=True)
    sampling, features = sampling_throughput(device, "auto")
    report["sampling_images_per_s"] = sampling
    report["feature_extraction_images_per_s"] = features
    report["peak_memory_mb"] = peak_memory_mb(device)
    say(f"G sampling: {sampling:.0f} img/s; feature extraction: {features:.0f} img/s; "
        f"peak memory {report['peak_memory_mb']:.0f} MB", flush=True)
    return report


def _training_line(name: str, row: dict, batch: int) -> str:
    line = f"{name} setting, batch {batch}: {row['gflop_per_step']:.0f} GFLOP/step"
    for path in ("naive", "fast"):
        if path in row:
            r = row[path]
            line += (f"; {path} {r['it_per_s']:.2f} it/s = {r['images_per_s']:.0f} img/s, "
                     f"{r['tflops']:.3f} TFLOP/s ({100 * r['utilisation_of_peak']:.0f} % of its roofline)")
    if "speedup" in row:
        line += f"; fast/naive {row['speedup']:.2f}×"
    return line


def main(argv=None, prog: str = "cgt bench") -> None:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--widths", type=int, nargs="+", default=[16, 32, 64])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=3, help="timed iterations per timing")
    parser.add_argument("--repeats", type=int, default=3, help="timings per figure (median)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", default=str(paths.build_dir() / "bench.json"))
    args = parser.parse_args(argv)
    report = run(tuple(args.widths), args.batch, args.steps, args.repeats, args.device)
    atomic.write_json(Path(args.out), report)
    print(f"written to {args.out}")


if __name__ == "__main__":  # the former entry point: say where it went instead of doing nothing
    raise SystemExit("error: the benchmark's command is now `cgt bench` (or `python -m cgt bench`)")
