"""``cgt plan``: every run a profile's book makes, what it costs, and whether
its data demands can be met, before any hour is spent.

The plan runs each chapter's own experiment functions in :mod:`cgt.planning` mode (a
few measured steps per training loop, a few samples per evaluation) in a scratch
folder, so it lists exactly the runs the chapter makes, the source pretraining
included.  Per run it gives the steps and batch asked for, the FLOPs per step
(``torch.utils.flop_counter``, counted at the measured batch and scaled linearly to
the real one), the samples its evaluations draw, and two time estimates:

* *here*: measured seconds per step and per sample on this machine's device, scaled
  the same way (on a CPU the small measured batch runs at most as fast per image as
  the real one, so this errs long);
* *on a named GPU*: each step's FLOPs over its dense bf16 peak times a stated
  utilisation, but no less than a measured floor per step (small 32-px steps are bound
  by launching their kernels, not by their FLOPs), and the samples' FLOPs at that rate.

Only the runs are estimated: data builds, reference features and the chapters'
analysis cells are not.  Runs on a real dataset (CIFAR-10/100, Places365) or imported
weights that are not on this machine are planned on a stand-in of the published shapes,
with their demands checked against the published sizes, and say what they need (e.g.
``needs CGT_CIFAR100``) in their rows and in the totals.  With ``dry_run`` the real
datasets found on disk are taken as stand-in files in their formats (see
``tests/test_plan.py``): their runs execute on what the files hold, while their demands
are checked against the published sizes.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from . import atomic, paths, planning
from .experiments import bsa, cgantransfer, ctf, foundations
from .machine import device_description
from .profiles import PROFILES, sizes

# Dense bf16 tensor-core peaks from the vendors' datasheets, TFLOP/s (V100 and T4: fp16).
GPU_PEAK_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "A10G": 125.0,
                   "L4": 121.0, "V100": 125.0, "T4": 65.0}
# Measured with ``cgt bench --device cuda`` on an H200 (torch 2.11; the figures
# are in data/bench/): the 32-px training steps at batch 64 ran 16-19 iterations a second
# whatever their width (16: 132 GFLOP a step, 64: 2,097), bound by launching kernels, not
# by FLOPs; at batch 256 the width-64 step reached 89 TFLOP/s, 9 % of the bf16 peak (the
# CUDA fast path is fp32 with TF32 convolutions).  So a step costs at least the fastest
# launch-bound one measured, 1 / 18.64 it/s (``--step-floor``), and beyond that its FLOPs
# at the stated 10 % (``--utilisation``).  The floor was measured on train_gan's G+D steps;
# BSA's steps (frozen G, BN parameters, a perceptual network) are assumed no cheaper.
DEFAULT_UTILISATION = 0.10
DEFAULT_STEP_FLOOR_S = 0.054


# The chapters in book order, each with the calls of its notebook that make runs.
CHAPTERS = {"foundations": foundations.steps, "bsa": bsa.steps, "ctf": ctf.steps,
            "cgantransfer": cgantransfer.steps}


@contextmanager
def _scratch():
    """Records and retrained sources in a scratch folder; the data cache stays shared."""
    keep = {k: os.environ.get(k) for k in ("CGT_HOME", "CGT_RUNS_DIR", "CGT_DATA_CACHE")}
    cache = paths.data_cache()
    with tempfile.TemporaryDirectory(prefix="cgt-plan-") as folder:
        os.environ.update(CGT_HOME=folder, CGT_DATA_CACHE=str(cache))
        os.environ.pop("CGT_RUNS_DIR", None)
        try:
            yield
        finally:
            for k, v in keep.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


def run_row(p: planning.Planned, chapter: str, step: str, needs=()) -> dict:
    flops = seconds = 0.0
    steps = 0
    for loop in p.loops:
        scale = loop.batch_size / loop.measured_batch
        steps += loop.iterations
        flops += loop.iterations * loop.flops_per_step * scale
        seconds += loop.iterations * loop.seconds_per_step * scale
    samples = p.samples()
    return {"chapter": chapter, "step": step, "run": p.name if p.chapter == chapter else f"{p.chapter}/{p.name}",
            "loops": [f"{loop.kind} {loop.iterations}×{loop.batch_size}" for loop in p.loops],
            "steps": steps, "samples": samples,
            "iterations": [loop.iterations for loop in p.loops],
            "flops_per_step": [loop.flops_per_step * loop.batch_size / loop.measured_batch
                               for loop in p.loops],
            "train_flops": flops, "sample_flops": samples * p.sample_flops,
            "seconds_here": seconds + samples * p.sample_seconds,
            "unmet": [f"{d['dataset']}: {d['asked']} {d['what']} asked, {d['has']} there"
                      for d in p.unmet()],
            "needs": sorted(set(needs) | p.needs)}


def plan(profile: str, chapters=None, dry_run: bool = False, progress: bool = True) -> list[dict]:
    """One row per planned run of ``chapters`` (default all) under ``profile``."""
    unknown = set(chapters or ()) - set(CHAPTERS)
    if unknown:
        raise KeyError(f"unknown chapter(s) {sorted(unknown)}; valid: {', '.join(CHAPTERS)}")
    rows, seen = [], set()
    with _scratch(), planning.session(dry_run=dry_run) as session:  # runs shared across
        for chapter in chapters or CHAPTERS:                           # steps are counted once
            for step, call in CHAPTERS[chapter](profile, sizes(chapter, profile)):
                start = time.perf_counter()
                session.needed.clear()  # the stand-ins this step plans on
                call()
                new = [key for key in session.runs if key not in seen]
                needs = sorted(session.needed)
                if progress:
                    print(f"planned {chapter}: {step}, {len(new)} runs in "
                          f"{time.perf_counter() - start:.0f} s"
                          + (f" (on stand-ins: needs {', '.join(needs)})" if needs else ""),
                          flush=True)
                rows += [run_row(session.runs[key], chapter, step, needs) for key in new]
                seen.update(new)
    return rows


def gpu_seconds(row: dict, rate: float, step_floor_s: float) -> float:
    """A run's seconds on a GPU that does ``rate`` FLOP/s: every step at least
    ``step_floor_s`` (launch-bound), the samples at the rate."""
    steps = sum(n * max(step_floor_s, flops / rate)
                for n, flops in zip(row["iterations"], row["flops_per_step"]))
    return steps + row["sample_flops"] / rate


def totals(rows: list[dict], gpu: str, utilisation: float,
           step_floor_s: float = DEFAULT_STEP_FLOOR_S) -> dict:
    """Per chapter: runs, steps, FLOPs, hours here and on ``gpu``, and the data it needs
    that is absent (its runs on stand-ins: how many, and what they need)."""
    rate = GPU_PEAK_TFLOPS[gpu] * 1e12 * utilisation
    out = {}
    for row in rows:
        t = out.setdefault(row["chapter"], {"runs": 0, "steps": 0, "pflops": 0.0, "hours_here": 0.0,
                                            "hours_gpu": 0.0, "runs_on_stand_ins": 0, "needs": []})
        flops = row["train_flops"] + row["sample_flops"]
        t["runs"] += 1
        t["steps"] += row["steps"]
        t["pflops"] += flops / 1e15
        t["hours_here"] += row["seconds_here"] / 3600
        t["hours_gpu"] += gpu_seconds(row, rate, step_floor_s) / 3600
        if row.get("needs"):
            t["runs_on_stand_ins"] += 1
            t["needs"] = sorted(set(t["needs"]) | set(row["needs"]))
    summed = ("runs", "steps", "pflops", "hours_here", "hours_gpu", "runs_on_stand_ins")
    out["all"] = {**{k: sum(t[k] for t in out.values()) for k in summed},
                  "needs": sorted({n for t in out.values() for n in t["needs"]})}
    return out


def _hours(h: float) -> str:
    return f"{h * 60:.1f} min" if h < 1 else f"{h:.1f} h"


def report(profile: str, rows: list[dict], gpu: str, utilisation: float,
           step_floor_s: float = DEFAULT_STEP_FLOOR_S) -> str:
    lines = [f"plan of the {profile} profile: {len(rows)} runs; here = {device_description()}, "
             f"measured; {gpu} = {GPU_PEAK_TFLOPS[gpu]:.0f} TFLOP/s bf16 peak × "
             f"{utilisation:.0%} utilisation (stated), at least {step_floor_s * 1000:.0f} ms "
             f"a step (launch-bound, measured on an H200)",
             f"{'chapter':<14}{'runs':>6}{'steps':>10}{'PFLOP':>10}{'here':>12}{gpu:>12}  needs"]
    for chapter, t in totals(rows, gpu, utilisation, step_floor_s).items():
        needs = (f"{t['runs_on_stand_ins']} runs need {', '.join(t['needs'])}" if t["needs"]
                 else "—")
        lines.append(f"{chapter:<14}{t['runs']:>6}{t['steps']:>10}{t['pflops']:>10.2f}"
                     f"{_hours(t['hours_here']):>12}{_hours(t['hours_gpu']):>12}  {needs}")
    unmet = [(row, u) for row in rows for u in row["unmet"]]
    for row, problem in unmet:
        lines.append(f"unmet data demand: {row['chapter']}/{row['run']} ({row['step']}): {problem}")
    return "\n".join(lines)


def timeout_minutes(hours: float, margin: float = 2.0, fixed: int = 60) -> int:
    """A job time limit for runs estimated at ``hours``: ``margin`` × the estimate plus
    ``fixed`` minutes for what the plan does not count (data, reference features, the
    chapters' analysis cells)."""
    return math.ceil(hours * 60 * margin) + fixed


def main(argv=None, prog: str = "cgt plan") -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", choices=PROFILES, default="paper")
    parser.add_argument("--chapter", action="append", choices=list(CHAPTERS),
                        help="plan this chapter (repeat for several; default: all)")
    parser.add_argument("--gpu", choices=sorted(GPU_PEAK_TFLOPS), default="H100")
    parser.add_argument("--utilisation", type=float, default=DEFAULT_UTILISATION,
                        help=f"share of the GPU's peak assumed (default {DEFAULT_UTILISATION})")
    parser.add_argument("--step-floor", type=float, default=DEFAULT_STEP_FLOOR_S, metavar="S",
                        help="the fewest seconds a training step takes on the GPU, however few "
                             f"its FLOPs (default {DEFAULT_STEP_FLOOR_S}, measured on an H200)")
    parser.add_argument("--dry-run", action="store_true",
                        help="the real datasets on disk are small stand-ins: run on them, check "
                             "demands against the published sizes")
    parser.add_argument("--runs", action="store_true", help="also list every run")
    parser.add_argument("--out", type=Path, help="write the rows as JSON here "
                        "(default _build/plan-<profile>.json)")
    parser.add_argument("--timeout-of", type=Path, metavar="PLAN_JSON",
                        help="only print the job time limit (minutes) of a written plan, "
                             "from its estimate on the machine that made it")
    args = parser.parse_args(argv)
    if args.timeout_of:
        print(json.loads(args.timeout_of.read_text())["timeout_minutes_here"])
        return 0
    if not 0 < args.utilisation <= 1:
        parser.error("--utilisation must lie in (0, 1]")
    if args.step_floor < 0:
        parser.error("--step-floor must be 0 or more seconds")
    rows = plan(args.profile, args.chapter, args.dry_run)
    out = args.out or paths.build_dir() / f"plan-{args.profile}.json"
    summed = totals(rows, args.gpu, args.utilisation, args.step_floor)
    # the build skips the runs whose data is absent: its time limit counts the others
    runnable = totals([row for row in rows if not row["needs"]], args.gpu, args.utilisation,
                      args.step_floor)["all"]
    atomic.write_json(out, {"profile": args.profile, "device": device_description(),
                            "gpu": args.gpu, "utilisation": args.utilisation,
                            "step_floor_s": args.step_floor, "totals": summed,
                            "timeout_minutes_here": timeout_minutes(runnable["hours_here"]),
                            "runs": rows})
    if args.runs:
        for row in rows:
            print(f"{row['chapter']}/{row['run']}: {', '.join(row['loops']) or 'no training'}, "
                  f"{row['samples']} samples, {row['train_flops'] / 1e12:.1f} TFLOP, "
                  f"{_hours(row['seconds_here'] / 3600)} here"
                  + (f"; needs {', '.join(row['needs'])}" if row["needs"] else ""))
    print(report(args.profile, rows, args.gpu, args.utilisation, args.step_floor))
    print(f"job time limit (2 × the estimate of the runs whose data is here + 60 min): "
          f"{timeout_minutes(runnable['hours_here'])} min here, "
          f"{timeout_minutes(runnable['hours_gpu'])} min on {args.gpu}; rows in {out}")
    return 1 if any(row["unmet"] for row in rows) else 0
