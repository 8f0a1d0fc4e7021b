"""The one protocol by which the book judges a paper's claim.

A :class:`Claim` says what is compared (metric, direction, kind, the two arms),
the paper's own figure (a row of ``data/paper_tables/claims.csv``) and, fixed
before any run, the margin or factor that decides it.  Its evidence is one value
per seed and arm, **paired**: the same seed means the same k-shot subset, the
same initialisation and the same batch and z streams for both arms.

Kinds and their rules (:data:`VERDICTS` are the only words a row can carry):

* ``superiority`` (A better than B): the paired differences' mean with a 95 %
  Student-t interval; *supported* if the interval excludes 0 in the claimed
  direction, *contradicted* if it excludes 0 the other way, else *inconclusive*.
* ``equivalence`` (A as good as B, within a relative margin m): TOST on the
  paired log ratios, i.e. the 90 % t-interval of the mean log(A/B) lies inside
  ±log(1 + m) → *supported*; the 95 % interval lies wholly outside → *contradicted*.
  Where the 95 % interval excludes a ratio of 1 the row also says which arm is ahead.
* ``non-inferiority`` (A matches or beats B: no worse than B by more than a
  relative margin m): the one-sided 95 % bound of the paired log ratio (A worse
  than B positive) lies below log(1 + m) → *supported*; its other one-sided bound
  lies above → *contradicted*.
* ``speed`` (A reaches a target at least ``factor`` times sooner than B): a run
  that never reaches it is censored at its length, so each seed bounds the ratio
  t_B / t_A from below and above; the t-interval of the lower bounds' logs must
  clear log(factor) to support, that of the upper bounds' logs must fall below
  it to contradict.
* ``exact`` (a property that holds by construction, e.g. a difference of 0):
  *supported* if the observed value equals the expected one, else *contradicted*.
  These are checks of our code, listed apart from the papers' claims.

Any claim is *untestable* when one of its :class:`Precondition` s fails or an arm
failed (NaN, a diverged or collapsed run) at some seed; the row says why, and
``ungated`` keeps the verdict its numbers alone would have given.  The arm
preconditions (:func:`adapted`, :func:`converged`, :func:`learned`,
:func:`not_memorising`) check that each arm did what it is meant to do.
A single seed gives no interval and is always *inconclusive*.  :func:`holm` then
corrects a chapter's decided rows for the number of claims it tests.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import optimize, special, stats

from . import paper_tables
from .atomic import plain

VERDICTS = ("supported", "contradicted", "inconclusive", "untestable")
KINDS = ("superiority", "equivalence", "non-inferiority", "speed", "exact")
LEVEL = 0.95
ALPHA = 1 - LEVEL
POWER = 0.80  # for the smallest effect the design could have detected, and seeds needed

# The arm preconditions' rules, fixed before the runs they judge (the book's intro
# states them).  An arm *converged* when the last third of its evaluations improved its
# best score by at most LATE_GAIN of what the whole run gained; a conditional generator
# *learned* its classes when its conditional accuracy covers at least LEARNED_SHARE of the
# way from chance to 1 (0.55 with 10 classes, 0.75 with 2: a level above chance that means
# the same at any class count); an arm
# is *not memorising* when its samples lie at least MEMORISATION_FLOOR as far from
# their nearest training image as held-out real images do (cgt.metrics.novelty); a
# method that learns one code per training image *fitted* them when at least FITTED_SHARE
# of its reconstructions lie nearer its own image than any other training image.
LATE_GAIN = 0.10
LEARNED_SHARE = 0.5
MEMORISATION_FLOOR = 0.5
FITTED_SHARE = 0.5


@dataclass(frozen=True)
class Claim:
    """What is claimed and how it is decided; ``key`` names its row of
    ``data/paper_tables/claims.csv`` (the paper's statement and its source)."""
    chapter: str
    key: str
    text: str
    kind: str
    metric: str
    arms: tuple[str, str]
    lower_is_better: bool = True
    margin: float | None = None  # equivalence, non-inferiority: relative margin, e.g. 0.10
    factor: float = 1.0          # speed: the speed-up that must be exceeded

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"unknown claim kind {self.kind!r}; valid: {', '.join(KINDS)}")
        if self.kind in ("equivalence", "non-inferiority") and not (self.margin and self.margin > 0):
            raise ValueError(f"{self.kind} claim {self.key!r} needs a positive margin, stated "
                             f"before the runs")

    @property
    def paper(self) -> str:
        return paper_statement(self.key)


@dataclass(frozen=True)
class Precondition:
    """Something that must hold for the claim to be testable at all."""
    description: str
    holds: bool
    detail: str = ""
    # an arm's check, for summaries (e.g. "BSA", "converged"); empty for a gate of scope
    # or design (a row this profile does not run), which says nothing about an arm
    arm: str = ""
    check: str = ""


@dataclass
class Result:
    """One row of a chapter's "claims checked" table and of the book's summary.

    ``detectable`` is the smallest effect a two-sided paired t-test would find with 80 %
    power at the spread seen: a difference (superiority), a relative change of the
    ratio, e.g. 0.05 for 5 % (equivalence, non-inferiority) or a speed-up factor (speed),
    always against no effect rather than the margin.
    ``p_value`` is the row's own test (None where nothing was tested), ``adjusted_p``
    that after :func:`holm`; ``seeds_needed`` (:func:`seeds_needed`) how many paired
    seeds would settle the row at 80 % power; ``ungated`` the verdict the numbers
    alone give when a precondition made the row untestable; ``lines`` the values of the
    estimate's scale that decide the row (:func:`decision_lines`); ``checks`` each arm
    check that gated the row (``arm``, ``check``, whether it ``holds``)."""
    chapter: str
    claim: str
    paper: str
    ours: str
    seeds: int
    estimate: float | None
    interval: tuple[float, float] | None
    detectable: float | None
    verdict: str
    reason: str = ""
    kind: str = ""
    values: dict = field(default_factory=dict)
    p_value: float | None = None
    adjusted_p: float | None = None
    seeds_needed: dict | None = None
    ungated: str = ""
    lines: tuple = ()
    checks: list = field(default_factory=list)

    def as_dict(self) -> dict:
        """Strict JSON: units become text keys (a seed ``"3"``, a (setting, dataset, seed)
        unit ``"2/25 fashion_mnist 0"``); NaN and an unbounded side of an interval, None."""
        return plain(asdict(self), key=_unit_text, strict=True)


def _unit_text(key) -> str:
    """A pairing unit in words: an integer is a seed; a tuple, its parts in order."""
    if isinstance(key, tuple):
        return " ".join(_unit_text(k) for k in key)
    key = key.item() if isinstance(key, np.generic) else key
    return f"seed {key}" if isinstance(key, int) else str(key)


def paper_statement(key: str) -> str:
    """The paper's figure for claim ``key``, with its table or figure."""
    table = paper_tables.load("claims").set_index("key")
    if key not in table.index:
        raise KeyError(f"no claim '{key}' in data/paper_tables/claims.csv")
    row = table.loc[key]
    return f"{row.statement} ({row.source})"


# --- intervals, tests and power ----------------------------------------------------

def t_interval(values, level: float = LEVEL) -> tuple[float, float, float]:
    """Mean and two-sided Student-t interval of ``values`` (n ≥ 2)."""
    values = np.asarray(values, dtype=float)
    n, mean = len(values), float(values.mean())
    half = stats.t.ppf(0.5 + level / 2, n - 1) * values.std(ddof=1) / math.sqrt(n)
    return mean, mean - half, mean + half


def _t_statistic(values, centre: float = 0.0) -> float:
    """(mean − centre) / standard error; ±inf for a spread of 0, 0 when also centred."""
    values = np.asarray(values, dtype=float)
    shift, error = values.mean() - centre, values.std(ddof=1) / math.sqrt(len(values))
    if error == 0:
        return 0.0 if shift == 0 else math.copysign(math.inf, shift)
    return float(shift / error)


def _power(n: int, standardised: float, one_sided: bool = False) -> float:
    """Power of a t-test of n paired values whose true mean is ``standardised`` standard
    deviations beyond the tested bound (noncentral t, scipy.special's fast CDF), at
    level :data:`LEVEL`."""
    tail = ALPHA if one_sided else ALPHA / 2
    critical = special.stdtrit(n - 1, 1 - tail)
    shift = standardised * math.sqrt(n)
    if shift > 38:  # the noncentral t's CDF gives NaN this far out, where the power is 1
        return 1.0
    power = 1 - special.nctdtr(n - 1, shift, critical)
    if one_sided or shift > 5:  # the far tail adds under 1e-8 there
        return float(power)
    return float(power + special.nctdtr(n - 1, shift, -critical))


def detectable_effect(values) -> float:
    """The paired mean a two-sided t-test at :data:`LEVEL` would find with :data:`POWER`,
    given the spread seen and the seeds run (noncentral t, as :func:`seeds_needed` counts)."""
    values = np.asarray(values, dtype=float)
    n, spread = len(values), values.std(ddof=1)
    if spread == 0:
        return 0.0
    high = 1.0
    while _power(n, high) < POWER:
        high *= 2
    return float(spread * optimize.brentq(lambda d: _power(n, d) - POWER, 0.0, high))


def _smallest_n(power_at, limit: int) -> int | None:
    """The smallest n in [2, limit] with ``power_at(n)`` ≥ :data:`POWER` (power grows with n:
    doubling, then bisection)."""
    if power_at(limit) < POWER:
        return None
    low, high = 1, 2  # power_at(low) < POWER is taken for n = 1: no interval at all
    while power_at(high) < POWER:
        low, high = high, min(2 * high, limit)
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if power_at(middle) >= POWER else (middle, high)
    return high


def _needed(values: np.ndarray, power_at, limit: int) -> tuple[int | None, tuple]:
    """Seeds needed at the spread seen, and at the ends of the spread's own 95 % interval
    (chi-square), as (n, (n at the low spread, n at the high spread))."""
    k = len(values)
    spread = values.std(ddof=1)
    low = spread * math.sqrt((k - 1) / stats.chi2.ppf(1 - ALPHA / 2, k - 1))
    high = spread * math.sqrt((k - 1) / stats.chi2.ppf(ALPHA / 2, k - 1))
    count = lambda s: _smallest_n(lambda n: power_at(n, s), limit)  # noqa: E731
    return count(spread), (count(low), count(high))


def seeds_needed(claim: Claim, a: Mapping, b: Mapping, limit: int = 1000) -> dict | None:
    """How many paired seeds would settle ``claim`` with 80 % power if the mean and spread
    stayed as measured, and in which direction (``settles``: the verdict the mean points
    to); ``range`` repeats the count at both ends of the spread's 95 % interval.  None for
    speed and exact claims, fewer than two seeds, a failed arm, or a mean of no effect at
    all.  A count above ``limit`` is None inside the dict."""
    seeds, va, vb, failed = _paired(claim, a, b)
    if claim.kind in ("speed", "exact") or failed or len(seeds) < 2:
        return None
    if claim.kind == "superiority":
        values = va - vb
        effect = abs(values.mean())
        ahead = (values.mean() < 0) == claim.lower_is_better
        settles = "supported" if ahead else "contradicted"
        power_at = lambda n, s: _power(n, effect / s) if s > 0 else 1.0  # noqa: E731
    else:
        if (va <= 0).any() or (vb <= 0).any():
            return None
        bound = math.log(1 + claim.margin)
        if claim.kind == "equivalence":
            values = np.log(va / vb)
            effect = abs(values.mean())
            if effect < bound:  # TOST: both one-sided tests must reject
                settles = "supported"
                power_at = lambda n, s: max(0.0, _power(n, (bound - effect) / s, True)  # noqa: E731
                                            + _power(n, (bound + effect) / s, True) - 1) if s > 0 else 1.0
            else:  # the 95 % interval must clear the margin
                settles, effect = "contradicted", effect - bound
                power_at = lambda n, s: _power(n, effect / s) if s > 0 else 1.0  # noqa: E731
        else:  # non-inferiority: A worse than B is positive
            values = np.log(va / vb) if claim.lower_is_better else np.log(vb / va)
            settles = "supported" if values.mean() < bound else "contradicted"
            effect = abs(bound - values.mean())
            power_at = lambda n, s: _power(n, effect / s, True) if s > 0 else 1.0  # noqa: E731
    if effect == 0:
        return None
    n, (low, high) = _needed(values, power_at, limit)
    return {"settles": settles, "seeds": n, "range": (low, high)}


# --- the arms' preconditions -------------------------------------------------------

def curve(history: Sequence[Mapping], metric: str) -> list[tuple[int, float]]:
    """(iteration, score) of every evaluation in a run's history that has ``metric``;
    a collapsed evaluation scores +inf (it can never be chosen)."""
    return [(int(h["iteration"]), math.inf if h.get("collapsed") else float(h[metric]))
            for h in history if h.get(metric) is not None]


def late_score(history: Sequence[Mapping], metric: str, last: int = 3) -> float:
    """A checkpoint-free score of a run: the mean of ``metric`` over its last ``last``
    evaluations (NaN if any of them collapsed or none has it), shown beside the score of
    the checkpoint that selection chose, so that a lucky evaluation on an oscillating
    curve is visible."""
    points = curve(history, metric)[-last:]
    if not points:
        return math.nan
    scores = [s for _, s in points]
    return math.nan if not np.isfinite(scores).all() else float(np.mean(scores))


def _arm_gate(arm: str, what: str, failures: dict, units: int, remedy: str) -> Precondition:
    """Whether ``what`` holds for ``arm`` at every unit; failing, the units and why, and
    what would make the claim testable (``remedy``)."""
    check = what.split(" (")[0]  # without its definition
    if units == 0:
        return Precondition(f"{arm} {what}", False, "no runs of this arm to check", arm, check)
    detail = "; ".join(f"{_unit_text(u)}: {why}" for u, why in failures.items())
    return Precondition(f"{arm} {what}", not failures,
                        f"fails at {len(failures)} of {units}: {detail}; testable with {remedy}"
                        if failures else f"holds at all {units}", arm, check)


def adapted(arm: str, curves: Mapping, chosen: Mapping) -> Precondition:
    """Every run of ``arm`` left its start: the chosen checkpoint (``chosen[unit]``, an
    iteration) lies past iteration 0 and scores better on validation than iteration 0
    (``curves[unit]``: :func:`curve`, lower is better)."""
    failures = {}
    for unit, points in curves.items():
        scores = dict(points)
        pick = chosen.get(unit)
        if 0 not in scores or math.isnan(scores[0]):
            failures[unit] = "no evaluation at iteration 0 to compare with"
        elif pick is None or not np.isfinite(pick):
            failures[unit] = "no chosen checkpoint"
        elif int(pick) == 0:
            failures[unit] = "chose iteration 0 (the untouched start)"
        elif not scores.get(int(pick), math.inf) < scores[0]:
            failures[unit] = f"chosen {scores.get(int(pick), math.nan):.4g} not below the start {scores[0]:.4g}"
    return _arm_gate(arm, "adapted (chose a checkpoint past iteration 0 that beats its start)",
                     failures, len(curves), "a learning rate or run length at which the arm moves")


def late_gain(points: Sequence[tuple[int, float]]) -> float:
    """The share of a run's total gain (its first score minus its best) that came in the
    last third of its evaluations (0 when it never improved; NaN under 3 evaluations, with
    a failed (NaN) evaluation, or from a start that collapsed (+inf), where no gain is
    measured)."""
    scores = np.array([s for _, s in points], dtype=float)
    if len(scores) < 3 or np.isnan(scores).any() or not np.isfinite(scores[0]):
        return math.nan
    late = math.ceil(len(scores) / 3)
    best, early_best = scores.min(), scores[:-late].min()
    gain = scores[0] - best
    return 0.0 if not gain > 0 or not np.isfinite(gain) else float((early_best - best) / gain)


def converged(arm: str, curves: Mapping) -> Precondition:
    """Every run of ``arm`` stopped on a plateau: the last third of its evaluations improved
    its best score by at most :data:`LATE_GAIN` of the run's total gain (:func:`late_gain`)."""
    failures = {}
    for unit, points in curves.items():
        share = late_gain(points)
        if math.isnan(share):
            failures[unit] = (f"{len(points)} evaluation(s), a failed one or a collapsed start: "
                              "no curve to judge")
        elif share > LATE_GAIN:
            failures[unit] = f"the last third brought {share:.0%} of its gain"
    return _arm_gate(arm, f"converged (the last third of its evaluations brought at most "
                     f"{LATE_GAIN:.0%} of its gain)", failures, len(curves), "longer runs")


def learned_level(chance: float) -> float:
    """The conditional accuracy that counts as having learned the classes."""
    return chance + LEARNED_SHARE * (1 - chance)


def learned(arm: str, accuracies: Mapping, chance: float) -> Precondition:
    """Every run of a conditional ``arm`` renders its classes: conditional accuracy at least
    :func:`learned_level` of the classifier's ``chance``."""
    level = learned_level(chance)
    failures = {u: ("not measured" if v is None or not np.isfinite(v) else f"accuracy {v:.3f}")
                for u, v in accuracies.items() if v is None or not np.isfinite(v) or v < level}
    return _arm_gate(arm, f"learned its classes (conditional accuracy ≥ {level:.3g}; chance "
                     f"{chance:.3g})", failures, len(accuracies),
                     "more steps or a setting in which the classes are learned")


def not_memorising(arm: str, ratios: Mapping, floor: float = MEMORISATION_FLOOR) -> Precondition:
    """Every run of ``arm`` makes new images: its memorisation ratio
    (:func:`cgt.metrics.novelty.memorisation_ratio`) is at least ``floor``."""
    failures = {u: ("not measured" if v is None or not np.isfinite(v) else f"ratio {v:.2f}")
                for u, v in ratios.items() if v is None or not np.isfinite(v) or v < floor}
    return _arm_gate(arm, f"not memorising (samples at least {floor:g}× as far from the training "
                     "images as held-out images are)", failures, len(ratios),
                     "more training images or a checkpoint chosen before copying")


def fitted(arm: str, shares: Mapping, floor: float = FITTED_SHARE) -> Precondition:
    """Every run of a same-loss ``arm`` (one learned code per training image) reproduced its
    images: ``shares[unit]`` (the share of reconstructions G(z_i) nearest, in the scoring
    network's features, to their own image x_i among the training images) is at least
    ``floor``.  A low pixel loss can hide reconstructions that lost what tells the images
    apart; this share makes that visible."""
    failures = {u: ("not measured" if v is None or not np.isfinite(v) else f"{v:.0%} matched")
                for u, v in shares.items() if v is None or not np.isfinite(v) or v < floor}
    return _arm_gate(arm, f"fitted its images (at least {floor:.0%} of its reconstructions "
                     "nearest their own image)", failures, len(shares),
                     "more steps or a learning rate at which the codes fit their images")


def measurable_gap(what: str, better: Mapping, worse: Mapping, lower_is_better: bool = True) -> Precondition:
    """``better`` is measurably ahead of ``worse``, paired by unit: the 95 % t-interval of
    the gap excludes 0.  A claim that an arm recovers part of a gap needs the gap first."""
    units = [u for u in better if u in worse]
    ahead = np.array([(worse[u] - better[u]) if lower_is_better else (better[u] - worse[u])
                      for u in units], dtype=float)
    if len(units) < 2 or not np.isfinite(ahead).all():
        return Precondition(what, False, f"{len(units)} paired unit(s) with finite values: no "
                                         "interval; testable with more seeds", check=what)
    mean, low, high = t_interval(ahead)
    detail = f"gap {mean:+.3g}, 95 % interval [{low:+.3g}, {high:+.3g}] over {len(units)} units"
    if low > 0:
        return Precondition(what, True, detail, check=what)
    if high < 0:
        return Precondition(what, False, f"{detail}: the other way round; testable only in a "
                                         "setting where the expected gap exists", check=what)
    if mean <= 0:  # more seeds would only pin down a gap of no cost
        return Precondition(what, False, f"{detail}: its mean is not in the expected direction; "
                                         "testable only in a setting where the expected gap exists",
                            check=what)
    seeds, _ = _needed(ahead, lambda n, s: _power(n, mean / s) if s > 0 else 1.0, limit=1000)
    count = f"about {seeds}" if seeds is not None else "more than 1,000"
    return Precondition(what, False, f"{detail}; testable in a setting where the gap is larger, or "
                                     f"with {count} seeds if its mean and spread held "
                                     f"({POWER * 100:.0f} % power)", check=what)


# --- judging ---------------------------------------------------------------------

def _paired(claim: Claim, a: Mapping, b: Mapping) -> tuple[list, np.ndarray, np.ndarray, str]:
    """Seeds and aligned values; a reason string when the arms are not paired or an arm
    failed somewhere."""
    if set(a) != set(b):
        unpaired = sorted(map(_unit_text, set(a) ^ set(b)))
        return [], np.array([]), np.array([]), f"not paired: no run of both arms at {', '.join(unpaired)}"
    seeds = sorted(a)
    va = np.array([np.nan if a[s] is None else a[s] for s in seeds], dtype=float)
    vb = np.array([np.nan if b[s] is None else b[s] for s in seeds], dtype=float)
    failed = [f"{arm} failed ("
              + ", ".join(_unit_text(s) for s, ok in zip(seeds, np.isfinite(v)) if not ok) + ")"
              for arm, v in zip(claim.arms, (va, vb)) if not np.isfinite(v).all()]
    if not seeds:
        return seeds, va, vb, "no paired runs"
    return seeds, va, vb, "; ".join(failed)


def _gate(preconditions) -> str:
    broken = [p for p in preconditions if not p.holds]
    return "; ".join(p.description + (f" ({p.detail})" if p.detail else "") for p in broken)


def decision_lines(claim: Claim) -> tuple:
    """The values on a row's estimate scale that decide it: no effect first (a difference
    of 0; a ratio A / B or a speed-up of 1), then the margins (equivalence: both; non-
    inferiority: A worse than B by the margin) or the speed-up to exceed."""
    m = claim.margin
    if claim.kind == "superiority":
        return (0.0,)
    if claim.kind == "equivalence":
        return (1.0, 1 / (1 + m), 1 + m)
    if claim.kind == "non-inferiority":
        return (1.0, 1 + m if claim.lower_is_better else 1 / (1 + m))
    if claim.kind == "speed":
        return (1.0, claim.factor)
    return ()


def _result(claim: Claim, ours: str, seeds, verdict: str, reason: str = "", estimate=None,
            interval=None, detectable=None, values=None, p_value=None, needed=None) -> Result:
    assert verdict in VERDICTS, verdict
    return Result(claim.chapter, claim.text, claim.paper, ours, len(seeds),
                  None if estimate is None else float(estimate),
                  None if interval is None else (float(interval[0]), float(interval[1])),
                  None if detectable is None else float(detectable), verdict, reason,
                  claim.kind, values or {}, None if p_value is None else float(min(1.0, p_value)),
                  None, needed, lines=decision_lines(claim))


def _gated(result: Result, preconditions) -> Result:
    """``result`` unless a precondition fails: then untestable, saying which and keeping
    the verdict the numbers alone gave.  Either way the row keeps which checks held."""
    held = {}
    for p in preconditions:
        if p.check:
            held[p.arm, p.check] = held.get((p.arm, p.check), True) and bool(p.holds)
    result = replace(result, checks=[{"arm": a, "check": c, "holds": h} for (a, c), h in held.items()])
    if not (reason := _gate(preconditions)):
        return result
    if result.verdict == "untestable":  # an arm failed outright too: say both
        reason = f"{result.reason}; {reason}"
    ungated = result.verdict
    return replace(result, ours="—", estimate=None, interval=None, detectable=None,
                   verdict="untestable", reason=reason, p_value=None, seeds_needed=None,
                   ungated=ungated)


def _untestable(claim: Claim, seeds, reason: str, values) -> Result:
    return _result(claim, "—", seeds, "untestable", reason, values=values)


def superiority(claim: Claim, a: Mapping, b: Mapping, preconditions=()) -> Result:
    """A better than B on ``claim.metric``: paired differences A − B, 95 % t-interval."""
    return _gated(_superiority(claim, a, b), preconditions)


def _superiority(claim: Claim, a: Mapping, b: Mapping) -> Result:
    seeds, va, vb, failed = _paired(claim, a, b)
    values = {claim.arms[0]: dict(a), claim.arms[1]: dict(b)}
    if failed:
        return _untestable(claim, seeds, failed, values)
    difference = va - vb
    ours = f"{claim.arms[0]} {va.mean():.3g} vs {claim.arms[1]} {vb.mean():.3g} {claim.metric}"
    if len(seeds) < 2:
        return _result(claim, ours, seeds, "inconclusive", "one seed: no interval",
                       difference.mean(), values=values)
    mean, low, high = t_interval(difference)
    better = (high < 0) if claim.lower_is_better else (low > 0)
    worse = (low > 0) if claim.lower_is_better else (high < 0)
    verdict = "supported" if better else "contradicted" if worse else "inconclusive"
    reason = "" if verdict != "inconclusive" else "the interval of A − B includes 0"
    p_value = 2 * stats.t.sf(abs(_t_statistic(difference)), len(seeds) - 1)
    return _result(claim, ours + f"; A − B {mean:+.3g} [{low:+.3g}, {high:+.3g}]", seeds, verdict,
                   reason, mean, (low, high), detectable_effect(difference), values, p_value,
                   seeds_needed(claim, a, b))


def _ahead(claim: Claim, low95: float, high95: float) -> str:
    """Which arm the 95 % interval of log(A / B) puts ahead ("" if it includes 0)."""
    if low95 <= 0 <= high95:
        return ""
    a_lower = high95 < 0
    better = a_lower == claim.lower_is_better
    return (f"; {claim.arms[0] if better else claim.arms[1]} ahead "
            f"(A / B {'below' if a_lower else 'above'} 1 at 95 %)")


def equivalence(claim: Claim, a: Mapping, b: Mapping, preconditions=()) -> Result:
    """A as good as B within ±margin (relative), by TOST on paired log(A / B)."""
    return _gated(_equivalence(claim, a, b), preconditions)


def _ratios(claim: Claim, a: Mapping, b: Mapping):
    """Paired evidence for a ratio rule: (seeds, A, B, values, an untestable Result or None)."""
    seeds, va, vb, failed = _paired(claim, a, b)
    values = {claim.arms[0]: dict(a), claim.arms[1]: dict(b)}
    if not failed and ((va <= 0).any() or (vb <= 0).any()):
        failed = "a ratio needs positive values on both arms"
    return seeds, va, vb, values, _untestable(claim, seeds, failed, values) if failed else None


def _equivalence(claim: Claim, a: Mapping, b: Mapping) -> Result:
    seeds, va, vb, values, untestable = _ratios(claim, a, b)
    if untestable:
        return untestable
    log_ratio, bound = np.log(va / vb), math.log(1 + claim.margin)
    ours = (f"{claim.arms[0]} {va.mean():.3g} vs {claim.arms[1]} {vb.mean():.3g} {claim.metric} "
            f"(margin ±{claim.margin:.0%})")
    if len(seeds) < 2:
        return _result(claim, ours, seeds, "inconclusive", "one seed: no interval",
                       math.exp(log_ratio.mean()), values=values)
    mean, low90, high90 = t_interval(log_ratio, level=1 - 2 * ALPHA)
    _, low95, high95 = t_interval(log_ratio)
    df = len(seeds) - 1
    p_inside = max(stats.t.sf(_t_statistic(log_ratio, -bound), df),
                   stats.t.cdf(_t_statistic(log_ratio, bound), df))
    p_outside = 2 * min(stats.t.sf(_t_statistic(log_ratio, bound), df),
                        stats.t.cdf(_t_statistic(log_ratio, -bound), df))
    if -bound < low90 and high90 < bound:
        verdict, reason, p_value = "supported", "", p_inside
    elif low95 > bound or high95 < -bound:
        verdict, reason, p_value = "contradicted", "the ratio lies outside the margin", p_outside
    else:
        verdict, reason = "inconclusive", "the 90 % interval of A / B crosses the margin"
        p_value = min(p_inside, p_outside)
    ratio = tuple(math.exp(x) for x in (low90, high90))
    return _result(claim, ours + f"; A / B {math.exp(mean):.3f}, 90 % interval "
                   f"[{ratio[0]:.3f}, {ratio[1]:.3f}]" + _ahead(claim, low95, high95),
                   seeds, verdict, reason, math.exp(mean), ratio,
                   math.exp(detectable_effect(log_ratio)) - 1, values, p_value,
                   seeds_needed(claim, a, b))


def non_inferiority(claim: Claim, a: Mapping, b: Mapping, preconditions=()) -> Result:
    """A matches or beats B: no worse than B by more than the relative margin, by the
    one-sided 95 % bounds of the paired log ratio (A worse than B counted positive)."""
    return _gated(_non_inferiority(claim, a, b), preconditions)


def _non_inferiority(claim: Claim, a: Mapping, b: Mapping) -> Result:
    seeds, va, vb, values, untestable = _ratios(claim, a, b)
    if untestable:
        return untestable
    worse = np.log(va / vb) if claim.lower_is_better else np.log(vb / va)
    bound = math.log(1 + claim.margin)
    ours = (f"{claim.arms[0]} {va.mean():.3g} vs {claim.arms[1]} {vb.mean():.3g} {claim.metric} "
            f"(A may be up to {claim.margin:.0%} worse)")
    ratio = float(np.exp(np.log(va / vb).mean()))
    if len(seeds) < 2:
        return _result(claim, ours, seeds, "inconclusive", "one seed: no interval", ratio,
                       values=values)
    mean, low, high = t_interval(worse, level=1 - 2 * ALPHA)  # its ends: one-sided 95 % bounds
    statistic, df = _t_statistic(worse, bound), len(seeds) - 1
    if high < bound:
        verdict, reason, p_value = "supported", "", stats.t.cdf(statistic, df)
    elif low > bound:
        verdict, reason, p_value = "contradicted", "A is worse than B by more than the margin", \
            stats.t.sf(statistic, df)
    else:
        verdict, reason = "inconclusive", "the one-sided bound of A's shortfall crosses the margin"
        p_value = min(stats.t.cdf(statistic, df), stats.t.sf(statistic, df))
    # the interval reported as A / B, whichever direction is better
    ends = sorted(math.exp(x if claim.lower_is_better else -x) for x in (low, high))
    return _result(claim, ours + f"; A / B {ratio:.3f}, 90 % interval [{ends[0]:.3f}, {ends[1]:.3f}]",
                   seeds, verdict, reason, ratio, ends, math.exp(detectable_effect(worse)) - 1,
                   values, p_value, seeds_needed(claim, a, b))


def speed(claim: Claim, a: Mapping, b: Mapping, length_a: Mapping, length_b: Mapping,
          preconditions=()) -> Result:
    """A reaches the target ``claim.factor``× sooner than B.  ``a``/``b`` map seed →
    iterations (or seconds) to reach it, None where the run never did (censored at
    its ``length``); NaN marks a failed run."""
    return _gated(_speed(claim, a, b, length_a, length_b), preconditions)


def _speed(claim: Claim, a: Mapping, b: Mapping, length_a: Mapping, length_b: Mapping) -> Result:
    censored = {arm: {s: (v is None) for s, v in values.items()}
                for arm, values in zip(claim.arms, (a, b))}
    # a censored run without a known length is a failed arm (NaN)
    known_a = {s: (length_a.get(s, math.nan) if v is None else v) for s, v in a.items()}
    known_b = {s: (length_b.get(s, math.nan) if v is None else v) for s, v in b.items()}
    seeds, ta, tb, failed = _paired(claim, known_a, known_b)
    values = {claim.arms[0]: dict(a), claim.arms[1]: dict(b), "censored": censored}
    if failed:
        return _untestable(claim, seeds, failed, values)
    ca = np.array([censored[claim.arms[0]][s] for s in seeds])
    cb = np.array([censored[claim.arms[1]][s] for s in seeds])
    if ((ta <= 0) & ~ca).any() or ((tb <= 0) & ~cb).any():
        return _untestable(claim, seeds, "an arm starts at the target (reached at 0)", values)
    # per seed, t_B / t_A lies in [lower, upper]: a censored time is only a lower bound
    lower = np.where(ca, -np.inf, np.log(tb) - np.log(ta))
    upper = np.where(cb, np.inf, np.log(tb) - np.log(ta))
    estimate = float(np.exp(np.mean(np.log(tb) - np.log(ta))))
    ours = (f"{claim.arms[1]} ÷ {claim.arms[0]} {claim.metric}: {estimate:.2f}× "
            f"({int(ca.sum())} of {claim.arms[0]}, {int(cb.sum())} of {claim.arms[1]} runs censored, "
            f"counted at their length)")
    if len(seeds) < 2:
        return _result(claim, ours, seeds, "inconclusive", "one seed: no interval", estimate,
                       values=values)
    low = -np.inf if np.isinf(lower).any() else t_interval(lower)[1]
    high = np.inf if np.isinf(upper).any() else t_interval(upper)[2]
    target, df = math.log(claim.factor), len(seeds) - 1
    p_faster = 1.0 if np.isinf(lower).any() else 2 * stats.t.sf(_t_statistic(lower, target), df)
    p_slower = 1.0 if np.isinf(upper).any() else 2 * stats.t.cdf(_t_statistic(upper, target), df)
    verdict = "supported" if low > target else "contradicted" if high < target else "inconclusive"
    reason = "" if verdict != "inconclusive" else (
        f"the interval of the speed-up includes {claim.factor:g}×"
        + (" (censored runs leave it open)" if ca.any() or cb.any() else ""))
    p_value = p_faster if verdict == "supported" else p_slower if verdict == "contradicted" else \
        min(p_faster, p_slower)
    spread = np.log(tb) - np.log(ta)
    return _result(claim, ours + f"; interval [{math.exp(low):.2f}×, {math.exp(high):.2f}×]", seeds,
                   verdict, reason, estimate, (math.exp(low), math.exp(high)),
                   math.exp(detectable_effect(spread)), values, p_value)


def exact(claim: Claim, observed: float, expected: float, ours: str, preconditions=()) -> Result:
    """A property that holds by construction: ``observed`` must equal ``expected``
    exactly; no interval, no seeds, no p-value (a check of our code, never a paper claim)."""
    values = {"observed": observed, "expected": expected}
    if observed is None or (isinstance(observed, float) and math.isnan(observed)):
        return _untestable(claim, [], "nothing was measured", values)
    holds = observed == expected
    result = Result(claim.chapter, claim.text, claim.paper, ours, 0, float(observed),
                    (float(observed), float(observed)), None,
                    "supported" if holds else "contradicted",
                    "" if holds else f"{observed!r} ≠ {expected!r}", claim.kind, values)
    return _gated(result, preconditions)


def holm(results: Sequence[Result], alpha: float = ALPHA) -> list[Result]:
    """Holm's step-down correction across the paper claims one chapter tests: the rows
    with a p-value (untestable rows and construction checks test nothing).  Each gets
    ``adjusted_p``; a supported or contradicted row whose adjusted p reaches ``alpha``
    becomes inconclusive, saying so."""
    tested = sorted((i for i, r in enumerate(results) if r.p_value is not None and r.kind != "exact"),
                    key=lambda i: results[i].p_value)
    family, running, out = len(tested), 0.0, list(results)
    for rank, i in enumerate(tested):
        running = max(running, min(1.0, (family - rank) * results[i].p_value))
        row = replace(results[i], adjusted_p=running)
        if running >= alpha and row.verdict in ("supported", "contradicted"):
            row = replace(row, verdict="inconclusive",
                          reason=f"{row.verdict} alone (p = {row.p_value:.3g}) but not after Holm's "
                                 f"correction across {family} claims (adjusted p = {running:.3g})")
        out[i] = row
    return out


def seeds_table(results: Sequence[Result]) -> pd.DataFrame:
    """For each inconclusive row with a seeds-needed count: the claim, the seeds run, the
    seeds that would settle it with 80 % power (and the range the spread's uncertainty
    allows) and which verdict they would most likely give.  The counts are at the row's
    own level, before Holm's correction, which would ask for more."""
    rows = []
    for r in results:
        if r.verdict == "inconclusive" and r.seeds_needed:
            low, high = r.seeds_needed["range"]
            rows.append({"claim": r.claim, "seeds run": r.seeds,
                         "seeds needed at 5 %": _count_text(r.seeds_needed["seeds"]),
                         "range": f"{_count_text(low)}–{_count_text(high)}",
                         "would settle it as": r.seeds_needed["settles"]})
    return pd.DataFrame(rows, columns=["claim", "seeds run", "seeds needed at 5 %", "range",
                                       "would settle it as"])


def _count_text(n: int | None) -> str:
    return "> 1000" if n is None else str(n)
