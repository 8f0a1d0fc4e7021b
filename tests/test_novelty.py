"""Measures that copying cannot win, on feature sets whose answer is known."""

import numpy as np
import pytest

from cgt.metrics import novelty


def _gaussian(n: int, seed: int, dim: int = 16) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, dim))


def test_a_copy_of_the_training_set_scores_zero_and_new_draws_about_one():
    training, held_out = _gaussian(25, 0), _gaussian(25, 1)
    copy = novelty.novelty(training, training, held_out)
    assert copy["memorisation_ratio"] == 0.0 and copy["nearer_than_held_out"] == 1.0
    assert copy["training_neighbours"] == 25
    fresh = novelty.novelty(_gaussian(500, 2), training, held_out)
    assert 0.8 < fresh["memorisation_ratio"] < 1.25
    assert fresh["nearer_than_held_out"] < 0.1
    near_copies = training[np.arange(500) % 25] + 0.05 * _gaussian(500, 3)
    assert novelty.memorisation_ratio(near_copies, training, held_out) < 0.1


def test_a_generator_of_few_modes_uses_few_training_neighbours_and_covers_little():
    training, held_out = _gaussian(25, 0), _gaussian(200, 1)
    few = training[np.arange(400) % 3] + 0.01 * _gaussian(400, 4)
    assert novelty.training_neighbours(few, training) == 3
    spread = novelty.density_coverage(held_out, _gaussian(400, 5))
    narrow = novelty.density_coverage(held_out, few)
    assert spread["coverage"] > 0.8 and 0.6 < spread["density"] < 1.5  # 1 for the real distribution
    assert narrow["coverage"] < 0.3
    far = novelty.density_coverage(held_out, _gaussian(100, 6) + 50)
    assert far == {"density": 0.0, "coverage": 0.0}


def test_density_and_coverage_need_more_real_vectors_than_neighbours():
    with pytest.raises(ValueError, match="need more than 5"):
        novelty.density_coverage(_gaussian(5, 0), _gaussian(10, 1))
