"""Discovery metrics: hull truth on a hand-made system, precision, recall, F1, DAF."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from materialabs.acquisition import discovery_metrics as dm


def test_e_hull_truth_on_a_hand_made_binary_hull() -> None:
    # A-B at 0 (elements), AB at -1.0 eV/atom (on the hull), A3B at -0.4 (the hull at
    # x_B = 1/4 is halfway between A (0) and AB (-1.0): -0.5, so 0.1 above), AB3 at -0.6
    # (hull at x_B = 3/4 is -0.5: 0.1 below, so it is on the hull and pulls nothing up),
    # and a second AB polymorph at -0.95 (0.05 above).
    formulas = ["AlNi", "Al3Ni", "AlNi3", "AlNi"]
    energies = [-1.0, -0.4, -0.6, -0.95]
    e_hull = dm.e_hull_truth(formulas, energies, ["ab", "a3b", "ab3", "ab-poly"])
    assert e_hull == pytest.approx([0.0, 0.1, 0.0, 0.05], abs=1e-9)
    assert dm.is_stable(e_hull).tolist() == [True, False, True, False]


def test_a_phase_just_above_the_hull_is_not_stable() -> None:
    e_hull = dm.e_hull_truth(["NaCl", "NaCl"], [-2.0, -2.0 + 1e-3])
    assert dm.is_stable(e_hull).tolist() == [True, False]


def test_precision_prevalence_daf_f1_by_hand() -> None:
    stable = np.array([True, False, False, True, False, False, False, False, True, False])
    assert dm.prevalence(stable) == pytest.approx(0.3)
    # two rounds: [0, 1] (1 hit) and [3, 8] (2 hits): precision 3/4, recall 3/3
    score = dm.score_campaign([[0, 1], [3, 8]], stable)
    assert score.round_precision == (0.5, 1.0)
    assert score.precision == pytest.approx(0.75)
    assert score.recall == pytest.approx(1.0)
    assert score.daf == pytest.approx(0.75 / 0.3)
    assert score.f1 == pytest.approx(2 * 0.75 * 1.0 / 1.75)
    assert score.hits == 3 and score.found == 3 and score.n_stable == 3


def test_recall_counts_materials_once() -> None:
    # rows 0 and 1 are one stable material (two candidate structures of it)
    stable = np.array([True, True, False, True])
    keys = ["mp-1", "mp-1", "mp-2", "mp-3"]
    score = dm.score_campaign([[0, 1]], stable, keys)
    assert score.precision == 1.0  # both picks are stable crystals
    assert score.recall == pytest.approx(0.5)  # but only one of the two stable materials


def test_degenerate_cases() -> None:
    assert math.isnan(dm.precision([]))
    assert math.isnan(dm.daf(0.5, 0.0))
    assert dm.f1(0.0, 0.0) == 0.0
    with pytest.raises(IndexError):
        dm.score_campaign([[5]], np.array([True, False]))
    with pytest.raises(ValueError):
        dm.score_campaign([[0]], np.array([True, False]), ["a"])


def test_rising() -> None:
    assert dm.rising([0.2, 0.4, 0.4, 0.9])
    assert not dm.rising([0.5, 0.4])
    assert dm.rising([0.1, float("nan"), 0.3])


@given(st.lists(st.booleans(), min_size=1, max_size=60), st.data())
def test_random_expectation_has_daf_one(stable_list: list[bool], data: st.DataObject) -> None:
    """Picking the whole pool gives precision = prevalence (DAF 1) and recall 1."""
    stable = np.array(stable_list)
    order = data.draw(st.permutations(range(len(stable))))
    cut = data.draw(st.integers(0, len(stable)))
    score = dm.score_campaign([list(order[:cut]), list(order[cut:])], stable)
    assert score.precision == pytest.approx(dm.prevalence(stable))
    if stable.any():
        assert score.daf == pytest.approx(1.0)
        assert score.recall == pytest.approx(1.0)
    assert 0.0 <= score.f1 <= 1.0 or math.isnan(score.f1)
