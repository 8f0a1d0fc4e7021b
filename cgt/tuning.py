"""The one learning-rate rule of the book, the same for every arm whose rate is not the
paper's own (and for any other positive setting the book tunes, such as BSA's
perceptual weight, with "rate" read as that setting).

The rule, fixed before the runs it serves:

1. every arm gets a grid of the same number of rates (at least three) and runs each
   rate at the same tuning seeds (at least two, none of them a seed any verdict uses);
2. a trial's score is its late-training score (:func:`cgt.claims.late_score`: the mean
   of its last evaluations, not its best checkpoint), so a rate one step from
   divergence that got lucky once is not rewarded; a trial that failed at any seed
   (NaN) rules its rate out;
3. each arm takes the rate of lowest mean score over the seeds (ties: the smaller rate);
4. a choice at an edge of the grid extends that arm's grid once, by one more rate
   beyond that edge at the grid's own step, run at every tuning seed;
5. an arm whose choice still lies at an edge of its (extended) grid is not tuned:
   :meth:`Tuning.precondition` fails for it, and a claim on it is untestable.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import pandas as pd

from .claims import Precondition

MIN_RATES = 3
MIN_SEEDS = 2


@dataclass
class Tuning:
    """The trials (``table``: arm, rate, seed, score, extension) and each arm's choice."""
    table: pd.DataFrame
    chosen: dict
    inside: dict  # arm → whether its choice lies inside its (extended) grid
    parameter: str = "learning rate"  # what the "rate" column holds

    def precondition(self, arm: str) -> Precondition:
        rates = sorted(self.table[self.table.arm == arm].rate.unique())
        return Precondition(f"{arm}'s {self.parameter} chosen inside its grid", self.inside[arm],
                            f"chose {self.chosen[arm]:g} of {', '.join(f'{r:g}' for r in rates)}",
                            arm, f"{self.parameter} inside its grid")

    def summary(self) -> pd.DataFrame:
        """Arm × rate: mean late score over the tuning seeds (inf: failed at a seed; empty: not
        in that arm's grid), the chosen rate and whether it lies inside the grid."""
        means = pd.DataFrame({arm: _mean_scores(cell.to_dict("records"))
                              for arm, cell in self.table.groupby("arm")}).T
        means = means[sorted(means.columns)]
        means["chosen"] = [self.chosen[arm] for arm in means.index]
        means["inside its grid"] = [self.inside[arm] for arm in means.index]
        return means


def _mean_scores(rows: list[dict]) -> dict:
    """rate → mean score over seeds; +inf if any seed failed (NaN)."""
    frame = pd.DataFrame(rows)
    return {rate: (math.inf if cell.score.isna().any() else float(cell.score.mean()))
            for rate, cell in frame.groupby("rate")}


def _choose(scores: dict) -> float:
    return min(sorted(scores), key=lambda rate: scores[rate])


def tune(grids: Mapping[str, Sequence[float]], trial: Callable[[str, float, int], float],
         seeds: Sequence[int], verdict_seeds: Sequence[int] = (),
         parameter: str = "learning rate") -> Tuning:
    """Apply the rule: ``trial(arm, rate, seed)`` trains one run and returns its late score
    (lower is better; NaN for a failed run); ``grids`` maps each arm to its rates (values
    of ``parameter``)."""
    if len(set(seeds)) < MIN_SEEDS:
        raise ValueError(f"the tuning rule needs at least {MIN_SEEDS} tuning seeds, got {list(seeds)}")
    if shared := sorted(set(seeds) & set(verdict_seeds)):
        raise ValueError(f"tuning seeds {shared} are also verdict seeds: tune on seeds no verdict uses")
    if any(rate <= 0 for grid in grids.values() for rate in grid):
        raise ValueError(f"every {parameter} must be positive")
    sizes = {len(set(g)) for g in grids.values()}
    if len(sizes) != 1 or min(sizes) < MIN_RATES:
        raise ValueError(f"every arm needs a grid of the same number of rates (≥ {MIN_RATES}); got "
                         + ", ".join(f"{arm}: {len(set(g))}" for arm, g in grids.items()))
    rows, chosen, inside = [], {}, {}
    for arm, grid in grids.items():
        grid = sorted(set(grid))
        arm_rows = [{"arm": arm, "rate": rate, "seed": seed, "score": trial(arm, rate, seed),
                     "extension": False} for rate in grid for seed in seeds]
        choice = _choose(_mean_scores(arm_rows))
        if choice in (grid[0], grid[-1]):
            step = grid[1] / grid[0] if choice == grid[0] else grid[-1] / grid[-2]
            extra = choice / step if choice == grid[0] else choice * step
            arm_rows += [{"arm": arm, "rate": extra, "seed": seed, "score": trial(arm, extra, seed),
                          "extension": True} for seed in seeds]
            grid = sorted(grid + [extra])
            choice = _choose(_mean_scores(arm_rows))
        rows += arm_rows
        chosen[arm], inside[arm] = choice, choice not in (grid[0], grid[-1])
    return Tuning(pd.DataFrame(rows), chosen, inside, parameter)
