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
* ``speed`` (A reaches a target at least ``factor`` times sooner than B): a run
  that never reaches it is censored at its length, so each seed bounds the ratio
  t_B / t_A from below and above; the t-interval of the lower bounds' logs must
  clear log(factor) to support, that of the upper bounds' logs must fall below
  it to contradict.
* ``exact`` (a property that holds by construction, e.g. a difference of 0):
  *supported* if the observed value equals the expected one, else *contradicted*.

Any claim is *untestable* when one of its :class:`Precondition` s fails or an arm
failed (NaN, a diverged or collapsed run) at some seed; the row says why.
A single seed gives no interval and is always *inconclusive*.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Mapping

import numpy as np
from scipy import stats

from . import paper_tables

VERDICTS = ("supported", "contradicted", "inconclusive", "untestable")
KINDS = ("superiority", "equivalence", "speed", "exact")
LEVEL = 0.95
POWER = 0.80  # for the smallest effect the design could have detected


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
    margin: float | None = None  # equivalence: relative margin, e.g. 0.10 for ±10 %
    factor: float = 1.0          # speed: the speed-up that must be exceeded

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"unknown claim kind {self.kind!r}; valid: {', '.join(KINDS)}")
        if self.kind == "equivalence" and not (self.margin and self.margin > 0):
            raise ValueError(f"equivalence claim {self.key!r} needs a positive margin, stated "
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


@dataclass
class Result:
    """One row of a chapter's "claims checked" table and of the book's summary."""
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

    def as_dict(self) -> dict:
        """Strict JSON: units become text keys (a seed ``"3"``, a (setting, dataset, seed)
        unit ``"2/25 fashion_mnist 0"``); NaN and an unbounded side of an interval, None."""
        return _plain(asdict(self))


def _plain(value):
    if isinstance(value, dict):
        return {_unit_text(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


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


def t_interval(values, level: float = LEVEL) -> tuple[float, float, float]:
    """Mean and two-sided Student-t interval of ``values`` (n ≥ 2)."""
    values = np.asarray(values, dtype=float)
    n, mean = len(values), float(values.mean())
    half = stats.t.ppf(0.5 + level / 2, n - 1) * values.std(ddof=1) / math.sqrt(n)
    return mean, mean - half, mean + half


def detectable_effect(values, level: float = LEVEL, power: float = POWER) -> float:
    """The paired mean a two-sided t-test at ``level`` would find with ``power``,
    given the spread seen: (t_{1-α/2} + t_{power}) · s / √n."""
    values = np.asarray(values, dtype=float)
    n = len(values)
    quantiles = stats.t.ppf(0.5 + level / 2, n - 1) + stats.t.ppf(power, n - 1)
    return float(quantiles * values.std(ddof=1) / math.sqrt(n))


def seeds_for_equivalence(claim: Claim, a: Mapping, b: Mapping, limit: int = 1000) -> int | None:
    """How many paired seeds equivalence ``claim`` would need for its 90 % interval to fit
    inside the margin, if the mean and spread of the log ratios stayed as measured in
    ``a`` and ``b`` (None with fewer than two seeds, when the mean itself lies outside
    the margin, or beyond ``limit``)."""
    seeds, va, vb, failed = _paired(claim, a, b)
    if claim.kind != "equivalence" or failed or len(seeds) < 2 or (va <= 0).any() or (vb <= 0).any():
        return None
    ratios = np.log(va / vb)
    room, spread = math.log(1 + claim.margin) - abs(ratios.mean()), ratios.std(ddof=1)
    if room <= 0:
        return None
    return next((n for n in range(2, limit + 1)
                 if stats.t.ppf(0.5 + (1 - 2 * (1 - LEVEL)) / 2, n - 1) * spread / math.sqrt(n) < room),
                None)


def seeds_for_superiority(claim: Claim, a: Mapping, b: Mapping, limit: int = 1000) -> int | None:
    """How many paired seeds superiority ``claim`` would need for its 95 % interval of
    A − B to exclude 0, if the mean and spread of the differences stayed as measured
    (None with fewer than two seeds, no difference at all, or beyond ``limit``)."""
    seeds, va, vb, failed = _paired(claim, a, b)
    if claim.kind != "superiority" or failed or len(seeds) < 2:
        return None
    difference = va - vb
    mean, spread = abs(difference.mean()), difference.std(ddof=1)
    if mean == 0:
        return None
    return next((n for n in range(2, limit + 1)
                 if stats.t.ppf(0.5 + LEVEL / 2, n - 1) * spread / math.sqrt(n) < mean), None)


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


def _result(claim: Claim, ours: str, seeds, verdict: str, reason: str = "", estimate=None,
            interval=None, detectable=None, values=None) -> Result:
    assert verdict in VERDICTS, verdict
    return Result(claim.chapter, claim.text, claim.paper, ours, len(seeds),
                  None if estimate is None else float(estimate),
                  None if interval is None else (float(interval[0]), float(interval[1])),
                  None if detectable is None else float(detectable), verdict, reason,
                  claim.kind, values or {})


def _untestable(claim: Claim, seeds, reason: str, values) -> Result:
    return _result(claim, "—", seeds, "untestable", reason, values=values)


def superiority(claim: Claim, a: Mapping, b: Mapping, preconditions=()) -> Result:
    """A better than B on ``claim.metric``: paired differences A − B, 95 % t-interval."""
    seeds, va, vb, failed = _paired(claim, a, b)
    values = {claim.arms[0]: dict(a), claim.arms[1]: dict(b)}
    if reason := _gate(preconditions) or failed:
        return _untestable(claim, seeds, reason, values)
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
    return _result(claim, ours + f"; A − B {mean:+.3g} [{low:+.3g}, {high:+.3g}]", seeds, verdict,
                   reason, mean, (low, high), detectable_effect(difference), values)


def equivalence(claim: Claim, a: Mapping, b: Mapping, preconditions=()) -> Result:
    """A as good as B within ±margin (relative), by TOST on paired log(A / B)."""
    seeds, va, vb, failed = _paired(claim, a, b)
    values = {claim.arms[0]: dict(a), claim.arms[1]: dict(b)}
    if reason := _gate(preconditions) or failed:
        return _untestable(claim, seeds, reason, values)
    if (va <= 0).any() or (vb <= 0).any():
        return _untestable(claim, seeds, "a ratio needs positive values on both arms", values)
    log_ratio, bound = np.log(va / vb), math.log(1 + claim.margin)
    ours = (f"{claim.arms[0]} {va.mean():.3g} vs {claim.arms[1]} {vb.mean():.3g} {claim.metric} "
            f"(margin ±{claim.margin:.0%})")
    if len(seeds) < 2:
        return _result(claim, ours, seeds, "inconclusive", "one seed: no interval",
                       math.exp(log_ratio.mean()), values=values)
    mean, low90, high90 = t_interval(log_ratio, level=1 - 2 * (1 - LEVEL))
    _, low95, high95 = t_interval(log_ratio)
    if -bound < low90 and high90 < bound:
        verdict, reason = "supported", ""
    elif low95 > bound or high95 < -bound:
        verdict, reason = "contradicted", "the ratio lies outside the margin"
    else:
        verdict, reason = "inconclusive", "the 90 % interval of A / B crosses the margin"
    ratio = tuple(math.exp(x) for x in (low90, high90))
    return _result(claim, ours + f"; A / B {math.exp(mean):.3f}, 90 % interval "
                   f"[{ratio[0]:.3f}, {ratio[1]:.3f}]",
                   seeds, verdict, reason, math.exp(mean), ratio,
                   math.exp(detectable_effect(log_ratio)) - 1, values)


def speed(claim: Claim, a: Mapping, b: Mapping, length_a: Mapping, length_b: Mapping,
          preconditions=()) -> Result:
    """A reaches the target ``claim.factor``× sooner than B.  ``a``/``b`` map seed →
    iterations (or seconds) to reach it, None where the run never did (censored at
    its ``length``); NaN marks a failed run."""
    censored = {arm: {s: (v is None) for s, v in values.items()}
                for arm, values in zip(claim.arms, (a, b))}
    known_a = {s: (length_a[s] if v is None else v) for s, v in a.items()}
    known_b = {s: (length_b[s] if v is None else v) for s, v in b.items()}
    seeds, ta, tb, failed = _paired(claim, known_a, known_b)
    values = {claim.arms[0]: dict(a), claim.arms[1]: dict(b), "censored": censored}
    if reason := _gate(preconditions) or failed:
        return _untestable(claim, seeds, reason, values)
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
    target = math.log(claim.factor)
    verdict = "supported" if low > target else "contradicted" if high < target else "inconclusive"
    reason = "" if verdict != "inconclusive" else (
        f"the interval of the speed-up includes {claim.factor:g}×"
        + (" (censored runs leave it open)" if ca.any() or cb.any() else ""))
    spread = np.log(tb) - np.log(ta)
    return _result(claim, ours + f"; interval [{math.exp(low):.2f}×, {math.exp(high):.2f}×]", seeds,
                   verdict, reason, estimate, (math.exp(low), math.exp(high)),
                   math.exp(detectable_effect(spread)), values)


def exact(claim: Claim, observed: float, expected: float, ours: str, preconditions=()) -> Result:
    """A property that holds by construction: ``observed`` must equal ``expected``
    exactly; no interval, no seeds."""
    values = {"observed": observed, "expected": expected}
    failed = "nothing was measured" if observed is None or (
        isinstance(observed, float) and math.isnan(observed)) else ""
    if reason := _gate(preconditions) or failed:
        return _untestable(claim, [], reason, values)
    holds = observed == expected
    return Result(claim.chapter, claim.text, claim.paper, ours, 0, float(observed),
                  (float(observed), float(observed)), None,
                  "supported" if holds else "contradicted",
                  "" if holds else f"{observed!r} ≠ {expected!r}", claim.kind, values)
