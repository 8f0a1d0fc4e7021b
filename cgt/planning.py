"""Planning mode: the chapters' own code runs, but every training loop stops after a
few measured steps, so that ``python -m cgt plan`` learns what a profile would run.

Inside :func:`session` the run layer names each run (:func:`run_named`); the training
loops (:func:`cgt.train.train_gan`, :func:`cgt.methods.bsa.fit_bsa`) take ``STEPS``
steps at no more than ``BATCH`` images (one FLOP-counted by :class:`FlopCount`, which
also warms up, then a timed one, unless the first was long enough to be timed too)
and note the length and batch they were asked for; a
step whose signature (:func:`sign`) was measured before takes those figures and is not
run, and one whose convolutions have the shapes of a step taken before (warm) is
counted and timed in one step.  The evaluator samples at most ``SAMPLES`` images and
notes how many it was asked for (and featurises at most ``REFERENCE`` real ones where
their features are not cached); the places that take images from a dataset note how
many they need against how many it has (:func:`take`), and take what there is, so that
one short dataset does not hide the next.  Nothing here knows the chapters: :mod:`cgt.plan` drives them.

A *dry run* (``dry_run``) is the check that every chapter's code paths run in a
profile's configuration on little data: the embedded datasets are read in their tiny
variant and the real ones from small stand-in files in their formats, while every
demand is checked against the full datasets (the committed manifest's counts, or the
published sizes of the real ones); each list of repetitions (seeds, settings, dataset
sizes: :data:`REPEATS`) is clipped to its first entry, so that each kind of run
executes once instead of for every seed and setting.

A real dataset or imported weights that are not on this machine are planned all the
same: the loaders give a small *stand-in* of the published shapes and class names
(:func:`note_stand_in`), demands on it are checked against the published sizes, and
the runs that used it say which variable would make them real (``needs``).
"""

from __future__ import annotations

import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field, replace

from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

STEPS = 2  # a FLOP-counted step that also warms up, then a timed one
# A counted step at least this long is the timed one too: its warm-up (oneDNN primitives,
# first allocations) is then a small share, e.g. a 128-px BigGAN step: 8.72 s counted
# and warming up, 8.40 s timed after it (+4 %), which a second step would not be worth.
LONG_STEP_S = 2.0
BATCH = 8  # the most 32×32 images per measured step; figures scale linearly to the real batch
SAMPLES = 16  # the most samples per evaluation
REFERENCE = 256  # the most real images featurised for a reference not yet cached
# A dry run checks code paths, not speed: one step (FLOPs and time, warm-up included) of
# at most two images, and fewer samples and reference images.
DRY = {"steps": 1, "batch": 2, "samples": 8, "reference": 64}

# The smallest class of the real datasets as published (train splits), for dry runs on
# stand-in files: CIFAR-10 5,000 per class, CIFAR-100 500, Places365-Standard 3,068–5,000.
PUBLISHED_SMALLEST_CLASS = {"cifar10": 5000, "cifar100": 500, "places365": 3068}
# The sizes that repeat runs of one kind; a dry run keeps their first entry.
REPEATS = ("seeds", "settings", "shots", "size_seeds", "source_seeds")


@dataclass
class Loop:
    """One training loop of a run, as asked for and as measured."""

    kind: str  # "gan" (train_gan) or "bsa" (fit_bsa)
    iterations: int
    batch_size: int
    evaluations: int  # evaluations the full loop makes (the start included)
    measured_batch: int
    seconds_per_step: float = float("nan")  # at measured_batch
    flops_per_step: float = float("nan")  # at measured_batch
    signature: tuple = field(default=(), repr=False)  # what the step's FLOPs depend on


@dataclass
class Planned:
    """What one run would do: its loops, the samples it scores, its data demands."""

    chapter: str
    name: str
    loops: list[Loop] = field(default_factory=list)
    training_samples: list[int] = field(default_factory=list)  # asked per evaluation call
    other_samples: int = 0  # asked outside training (the fresh score)
    sample_seconds: float = 0.0  # measured, per sample
    sample_flops: float = 0.0  # measured, per sample
    demands: list[dict] = field(default_factory=list)
    needs: set = field(default_factory=set)  # variables of absent data it was planned without

    def samples(self) -> int:
        """Samples the full run draws: each loop's evaluations at the asked size, then
        the fresh score."""
        per_evaluation = (sum(self.training_samples) / len(self.training_samples)
                          if self.training_samples else 0)
        return int(round(per_evaluation * sum(loop.evaluations for loop in self.loops)
                         + self.other_samples))

    def unmet(self) -> list[dict]:
        return [d for d in self.demands if d["asked"] > d["has"]]


@dataclass
class Session:
    dry_run: bool = False
    steps: int = STEPS
    batch: int = BATCH
    samples: int = SAMPLES
    reference: int = REFERENCE
    runs: dict = field(default_factory=dict)  # (chapter, name) -> Planned
    current: Planned | None = None
    in_training: bool = False
    flops: dict = field(default_factory=dict)  # signature -> FLOPs, counted once
    warm: set = field(default_factory=set)  # the convolutions of the steps taken so far
    seconds: dict = field(default_factory=dict)  # signature -> seconds of a timed step
    sampled: dict = field(default_factory=dict)  # signature -> per-sample figures, samples
    memo: dict = field(default_factory=dict)  # what planning loads or computes once
    shapes: dict = field(default_factory=dict)  # a run's shape (see twin) -> its first run
    stand_ins: dict = field(default_factory=dict)  # dataset or weights -> its variable
    needed: set = field(default_factory=set)  # variables whose stand-ins were used so far


_session: Session | None = None


def active() -> bool:
    return _session is not None


def dry_run() -> bool:
    return _session is not None and _session.dry_run


@contextmanager
def session(dry_run: bool = False):
    """Planning mode for the code inside; yields the :class:`Session` that collects it."""
    global _session
    if _session is not None:
        raise RuntimeError("a planning session is already open")
    _session = Session(dry_run, **(DRY if dry_run else {}))
    try:
        yield _session
    finally:
        _session = None


@contextmanager
def run_named(chapter: str, name: str):
    """What happens inside belongs to run ``chapter/name`` (the run layer's one call)."""
    if _session is None:
        yield
        return
    outer = _session.current
    _session.current = _session.runs.setdefault((chapter, name), Planned(chapter, name))
    try:
        yield
    finally:
        _session.current = outer


def twin(chapter: str, name: str, shape: str) -> tuple[str, str] | None:
    """The (chapter, name) of an earlier planned run of the same ``shape`` (everything of
    its configuration but its seeds), whose measurements run ``chapter/name`` takes over
    instead of being measured again: a run costs the same at every seed.  None outside
    planning or for the first run of a shape, which is then measured."""
    if _session is None:
        return None
    first = _session.shapes.setdefault(shape, (chapter, name))
    planned = _session.runs.setdefault((chapter, name), Planned(chapter, name))
    if first == (chapter, name) or planned.loops:
        return None
    measured = _session.runs[first]
    planned.loops = [replace(loop) for loop in measured.loops]
    planned.training_samples = list(measured.training_samples)
    planned.other_samples = measured.other_samples
    planned.sample_seconds, planned.sample_flops = measured.sample_seconds, measured.sample_flops
    planned.demands += [d for d in measured.demands if d not in planned.demands]
    planned.needs |= measured.needs
    return first


def _run() -> Planned:
    if _session.current is None:  # work outside any named run (e.g. a chapter's analysis)
        _session.current = _session.runs.setdefault(("(other)", "(outside runs)"),
                                                    Planned("(other)", "(outside runs)"))
    return _session.current


def repeats(values):
    """``values`` (a list of seeds, settings or sizes, or a dict of such lists), or in a dry
    run its first entry (of each list)."""
    if _session is None or not _session.dry_run:
        return values
    if isinstance(values, dict):
        return {k: repeats(v) for k, v in values.items()}
    return list(values)[:1]


def clip_sizes(chapter_sizes: dict) -> dict:
    """A chapter's sizes with each of :data:`REPEATS` (also one level down) clipped by
    :func:`repeats`; unchanged outside a dry run."""
    if _session is None or not _session.dry_run:
        return chapter_sizes
    return {k: repeats(v) if k in REPEATS else clip_sizes(v) if isinstance(v, dict) else v
            for k, v in chapter_sizes.items()}


def memo(key, compute):
    """``compute()``, done once per planning session for ``key`` (every time otherwise):
    what the many short runs of a plan would load or featurise again and again."""
    if _session is None:
        return compute()
    if key not in _session.memo:
        _session.memo[key] = compute()
    return _session.memo[key]


def writes_weights() -> bool:
    """Whether a training loop writes its best weights (``best.pt``): always, but in a plan
    that is not a dry run, where the weights of a few steps decide nothing and writing a
    128-px model's took seconds a run; what reads them then builds the model from its
    config alone (:func:`cgt.builders.load`), which costs the same to sample from."""
    return _session is None or _session.dry_run


def skip_start_evaluation() -> bool:
    """Planning skips a loop's evaluation at iteration 0 (the same code as its last)."""
    return _session is not None


@contextmanager
def training(kind: str, iterations: int, batch_size: int, eval_every: int, resolution: int = 32):
    """A training loop asked for ``iterations`` steps of ``batch_size`` images of
    ``resolution``²: yields the :class:`Loop` whose ``iterations`` and ``measured_batch``
    the loop runs instead (the asked ones when not planning).  The measured batch holds
    at most as many pixels as ``BATCH`` images of 32² (one 128² image)."""
    evaluations = (1 + -(-iterations // eval_every)) if eval_every else 0
    if _session is None:
        yield Loop(kind, iterations, batch_size, evaluations, batch_size)
        return
    measured = max(1, _session.batch * 32 ** 2 // resolution ** 2)
    loop = Loop(kind, iterations, batch_size, evaluations, min(batch_size, measured))
    _run().loops.append(loop)
    _session.in_training = True
    try:
        yield loop
    finally:
        _session.in_training = False


class FlopCount(TorchDispatchMode):
    """The FLOPs of the operators run inside (``total``), by torch's own per-operator
    formulas (``torch.utils.flop_counter.flop_registry``): the totals of
    ``FlopCounterMode`` without its attribution to modules, whose hooks on every module
    call made a counted 32-px training step take 1.5× as long as a plain one (this
    counter: 1.17×), so that a counted step can also be the timed one."""

    def __init__(self):
        super().__init__()
        self.total = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        formula = flop_registry.get(func._overloadpacket)
        if formula is not None:
            self.total += formula(*args, **kwargs, out_val=out)
        return out


def planned_iterations(loop: Loop) -> int:
    return min(loop.iterations, _session.steps) if _session is not None else loop.iterations


def _architecture(loop: Loop) -> tuple:
    """What a signed step's warm-up depends on: its convolutions' kernel shapes (their
    first run creates oneDNN's primitives) and precision, whichever parameters train."""
    kind, batch, parameters, precision, *_ = loop.signature
    return kind, batch, tuple(shape for shape, _ in parameters if len(shape) == 4), precision


def steps_to_measure(loop: Loop) -> int:
    """How many steps a signed loop (:func:`sign`) runs while planning: none when a step
    of its signature was measured before (it takes those figures: :func:`measured`),
    one when convolutions of its shapes were stepped before (warm: that step is counted
    and timed), else :func:`planned_iterations`."""
    if measured(loop):
        return 0
    return 1 if _architecture(loop) in _session.warm else planned_iterations(loop)


def measured(loop: Loop) -> bool:
    """Whether a step of ``loop``'s signature was FLOP-counted and timed already (by an
    earlier loop, or by this one's first step); then ``loop`` takes over those figures
    and need not step (again)."""
    if _session is None or not loop.signature or loop.signature not in _session.seconds:
        return False
    loop.flops_per_step = _session.flops[loop.signature]
    loop.seconds_per_step = _session.seconds[loop.signature]
    return True


@contextmanager
def step(loop: Loop, index: int):
    """Step ``index`` of a planned loop: the first is FLOP-counted, the second timed.  The
    first is timed too when it is the loop's only one, e.g. when its networks were warm,
    or when it took ``LONG_STEP_S`` or longer (then the loop need not step again:
    :func:`measured`); that time includes the counter's overhead (17 % of a 32-px step
    here) and errs long."""
    if _session is None or index > 1:
        yield
        return
    warm = bool(loop.signature) and _architecture(loop) in _session.warm
    counter = FlopCount() if index == 0 else nullcontext()
    start = time.perf_counter()
    with counter:
        yield
    seconds = time.perf_counter() - start
    if index == 0:
        loop.flops_per_step = float(counter.total)
        if loop.signature:
            _session.flops[loop.signature] = loop.flops_per_step
            _session.warm.add(_architecture(loop))
    if index == 1 or warm or planned_iterations(loop) == 1 or seconds >= LONG_STEP_S:
        loop.seconds_per_step = seconds
        if loop.signature:
            _session.seconds[loop.signature] = seconds


def samples(n: int, resolution: int = 32) -> int:
    """How many of ``n`` asked samples of ``resolution``² to draw: all, unless planning,
    which draws at most ``SAMPLES`` of 32² (as many pixels at another resolution, at
    least two: a covariance needs them)."""
    if _session is None:
        return n
    run = _run()
    if _session.in_training:
        run.training_samples.append(n)
    else:
        run.other_samples += n
    return min(n, max(2, _session.samples * 32 ** 2 // resolution ** 2))


def sampled(n: int, generator, draw, *switches):
    """``draw()``: ``n`` samples of ``generator`` and their features, measured while
    planning (time and FLOPs per sample).  A generator of the shapes (and ``switches``)
    of one sampled before gives that one's samples and figures instead of drawing: a plan
    never reads the samples' numbers, only what drawing them costs."""
    if _session is None:
        return draw()
    signature = ("sampling", n, type(generator).__name__, shapes(generator), *switches)
    run = _run()
    if signature not in _session.sampled:
        counter = FlopCount()  # its overhead is in the time, which errs long by it
        start = time.perf_counter()
        with counter:
            out = draw()
        _session.sampled[signature] = ((time.perf_counter() - start) / max(n, 1),
                                       counter.total / max(n, 1), out)
    run.sample_seconds, run.sample_flops, out = _session.sampled[signature]
    return out


def preparation(n: int) -> int:
    """How many of ``n`` batches of preparatory work outside the runs (a fresh model's BN
    statistics) to do: all, unless planning, which does not count that work: one."""
    return n if _session is None else min(n, 1)


def reference_images(n: int) -> int:
    """How many of ``n`` real images to featurise for a comparison (all, unless planning)."""
    return n if _session is None else min(n, _session.reference)


def take(dataset: str, what: str, asked: int, has: int, full: int | None = None) -> int:
    """``asked`` of ``what`` (images per class, classes) in ``dataset``, which has ``has``
    here and ``full`` in its full variant: returns ``asked`` outside planning (the
    caller then refuses a shortage as before); while planning, notes the demand and
    returns what can be taken.  The demand is met when the full dataset can meet it: a
    dry run's data are small on purpose."""
    if _session is None:
        return asked
    if _session.dry_run or dataset in _session.stand_ins:
        full = PUBLISHED_SMALLEST_CLASS.get(dataset, has if full is None else full)
    else:
        full = has
    if dataset in _session.stand_ins:
        note_stand_in(dataset, _session.stand_ins[dataset])
    demand = {"dataset": dataset, "what": what, "asked": asked, "has": full}
    if demand not in _run().demands:
        _run().demands.append(demand)
    return min(asked, has)


def note_stand_in(what: str, variable: str) -> None:
    """The current run (and the plan's current step) is planned on a stand-in for
    ``what``, which is absent: setting ``variable`` would make it real."""
    if _session is None:
        return
    _session.stand_ins[what] = variable
    _session.needed.add(variable)
    if _session.current is not None:
        _session.current.needs.add(variable)


def shapes(*modules) -> tuple:
    """The parameter shapes of ``modules`` and which of them train."""
    return tuple((tuple(p.shape), p.requires_grad) for m in modules for p in m.parameters())


def sign(loop: Loop, modules, precision: str, *switches) -> None:
    """Say what the FLOPs and time of ``loop``'s step depend on besides its batch (the
    networks' shapes and trained parameters, the precision, the loop's other switches),
    so that equal steps are measured once per session."""
    if _session is not None:
        loop.signature = (loop.kind, loop.measured_batch, shapes(*modules), precision, *switches)
