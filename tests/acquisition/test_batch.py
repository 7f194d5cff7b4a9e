"""Batch selection: best first, no near-duplicates, nothing already evaluated."""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk

from materialabs.acquisition import (
    AcquisitionContext,
    DiversityRule,
    GreedyPolicy,
    Predictions,
    duplicate_key,
    select_batch,
)
from materialabs.crystals import Crystal

MEAN = np.array([-3.0, -2.9, -2.8, -1.0, -0.5, 0.0])
PRED = Predictions(mean=MEAN, std=np.full(6, 0.1))


def ctx() -> AcquisitionContext:
    return AcquisitionContext(np.random.default_rng(0))


def test_plain_batch_is_top_k():
    assert select_batch(GreedyPolicy(), PRED, ctx(), 3) == [0, 1, 2]


def test_same_duplicate_key_is_rejected_within_a_batch():
    keys = ["NaCl:225", "NaCl:225", "KCl:225", "NaCl:225", "LiF:225", "MgO:225"]
    picks = select_batch(GreedyPolicy(), PRED, ctx(), 3,
                         diversity=DiversityRule(duplicate_keys=keys))
    assert picks == [0, 2, 4]
    assert len({keys[i] for i in picks}) == len(picks)


def test_close_fingerprints_are_rejected_within_a_batch():
    fps = np.array([[0.0, 0.0], [0.01, 0.0], [5.0, 5.0], [0.02, 0.01], [9.0, 0.0], [0.0, 9.0]])
    picks = select_batch(GreedyPolicy(), PRED, ctx(), 4,
                         diversity=DiversityRule(fingerprints=fps, min_distance=0.5))
    assert picks == [0, 2, 4, 5]


def test_excluded_candidates_are_never_picked_and_pool_can_run_out():
    picks = select_batch(GreedyPolicy(), PRED, ctx(), 10, exclude=[0, 2])
    assert picks == [1, 3, 4, 5]
    mask = np.array([True, True, True, True, True, False])
    assert select_batch(GreedyPolicy(), PRED, ctx(), 3, exclude=mask) == [5]


def test_bad_diversity_lengths_name_the_problem():
    with pytest.raises(ValueError, match="duplicate keys"):
        select_batch(GreedyPolicy(), PRED, ctx(), 2, diversity=DiversityRule(duplicate_keys=["a"]))


def test_duplicate_key_is_formula_and_space_group_and_ignores_cell_choice():
    prim = bulk("NaCl", "rocksalt", a=5.64)
    conv = bulk("NaCl", "rocksalt", a=5.64, cubic=True)
    to_crystal = lambda a: Crystal.from_arrays(a.cell.array, a.get_chemical_symbols(),  # noqa: E731
                                               a.get_scaled_positions())
    assert duplicate_key(to_crystal(prim)) == "NaCl:225"
    assert duplicate_key(to_crystal(conv)) == duplicate_key(to_crystal(prim))
    assert duplicate_key(to_crystal(bulk("Si"))) == "Si:227"
