"""Each policy picks what it should on small hand-made pools (lower target = better)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from materialabs.acquisition import (
    AcquisitionContext,
    EhviPolicy,
    EiPolicy,
    GreedyPolicy,
    ParetoPolicy,
    Predictions,
    RandomPolicy,
    ThompsonPolicy,
    UcbPolicy,
    UncertaintyPolicy,
    make_policy,
    minimise,
    select_batch,
    window,
)
from materialabs.acquisition.policies import (
    expected_improvement,
    hypervolume,
    hypervolume_improvement_2d,
    pareto_front,
    pareto_ranks,
)


def ctx(seed: int = 0, **kw) -> AcquisitionContext:
    return AcquisitionContext(np.random.default_rng(seed), **kw)


def top(policy, pred, k=1, **kw) -> list[int]:
    return select_batch(policy, pred, ctx(**kw.pop("ctx", {})), k, **kw)


def test_greedy_picks_lowest_mean_whatever_the_uncertainty():
    pred = Predictions(mean=np.array([0.5, -1.2, -0.3, 0.0]), std=np.array([2.0, 0.01, 1.0, 3.0]))
    assert top(GreedyPolicy(), pred, k=2) == [1, 2]


def test_uncertainty_picks_largest_std():
    pred = Predictions(mean=np.array([-5.0, 0.0, 1.0]), std=np.array([0.1, 0.2, 0.9]))
    assert top(UncertaintyPolicy(), pred) == [2]


def test_ucb_prefers_higher_std_at_equal_mean():
    pred = Predictions(mean=np.array([-1.0, -1.0, -1.0]), std=np.array([0.1, 0.5, 0.3]))
    assert top(UcbPolicy(kappa=1.0), pred, k=3) == [1, 2, 0]


def test_ucb_trades_mean_against_std_by_kappa():
    # lower bounds with kappa=2: a -> -1.0 - 0.2 = -1.2 ; b -> -0.5 - 2.0 = -2.5
    pred = Predictions(mean=np.array([-1.0, -0.5]), std=np.array([0.1, 1.0]))
    assert top(UcbPolicy(kappa=2.0), pred) == [1]
    assert top(UcbPolicy(kappa=0.0), pred) == [0]  # kappa 0 is greedy


def test_expected_improvement_matches_closed_form_and_limits():
    best = 0.0
    ei = expected_improvement(np.array([0.0, -1.0, 1.0, -1.0]), np.array([1.0, 0.0, 0.0, 1e-9]),
                              best)
    assert ei[0] == pytest.approx(1 / np.sqrt(2 * np.pi))  # sigma * phi(0)
    assert ei[1] == pytest.approx(1.0)  # certain improvement of 1
    assert ei[2] == 0.0  # certainly worse
    assert ei[3] == pytest.approx(1.0)


def test_expected_improvement_by_monte_carlo():
    rng = np.random.default_rng(1)
    mean, std, best = -0.3, 0.7, -0.5
    draws = rng.normal(mean, std, 400_000)
    mc = np.maximum(best - draws, 0).mean()
    assert expected_improvement(np.array([mean]), np.array([std]), best)[0] == pytest.approx(
        mc, rel=0.02)


def test_ei_prefers_uncertain_candidate_when_means_are_equal_and_worse_than_best():
    pred = Predictions(mean=np.array([0.0, 0.0]), std=np.array([0.1, 1.0]))
    assert top(EiPolicy(), pred, ctx={"best_observed": -1.0}) == [1]


def test_ei_prefers_better_mean_at_equal_std():
    pred = Predictions(mean=np.array([0.2, -0.4, 0.0]), std=np.array([0.3, 0.3, 0.3]))
    assert top(EiPolicy(), pred, ctx={"best_observed": 0.0}) == [1]


@given(st.floats(-3, 3), st.floats(0.01, 3), st.floats(-3, 3), st.floats(0.0, 2.0))
@settings(max_examples=60, deadline=None)
def test_ei_is_nonnegative_and_monotone_in_mean(mean, std, best, shift):
    ei = expected_improvement(np.array([mean, mean + shift]), np.array([std, std]), best)
    assert ei[0] >= 0 and ei[1] >= 0
    assert ei[0] >= ei[1] - 1e-12


def test_thompson_uses_one_member_and_is_reproducible_with_seed():
    members = np.array([[0.0, -1.0, 0.5], [-2.0, 0.0, 0.5], [0.0, 0.0, -3.0]])
    pred = Predictions(mean=members.mean(0), std=members.std(0), members=members)
    first = select_batch(ThompsonPolicy(), pred, ctx(seed=7), 2)
    again = select_batch(ThompsonPolicy(), pred, ctx(seed=7), 2)
    assert first == again
    # every pick is some member's best among what was still open
    picks = [select_batch(ThompsonPolicy(), pred, ctx(seed=s), 1)[0] for s in range(30)]
    assert set(picks) == {0, 1, 2}  # each member's favourite gets drawn sometimes


def test_thompson_without_members_samples_from_mean_and_std():
    pred = Predictions(mean=np.array([0.0, -10.0]), std=np.array([0.1, 0.1]))
    assert all(top(ThompsonPolicy(), pred, ctx={"seed": s}) == [1] for s in range(10))


def test_random_is_reproducible_and_spreads():
    pred = Predictions(mean=np.zeros(50), std=np.ones(50))
    assert top(RandomPolicy(), pred, k=5, ctx={"seed": 3}) == top(RandomPolicy(), pred, k=5,
                                                                 ctx={"seed": 3})
    assert top(RandomPolicy(), pred, k=5, ctx={"seed": 3}) != top(RandomPolicy(), pred, k=5,
                                                                 ctx={"seed": 4})


def test_make_policy_by_name_and_unknown_name():
    assert make_policy("ucb", kappa=0.5).kappa == 0.5
    with pytest.raises(ValueError, match="expected one of"):
        make_policy("magic")


def test_single_target_policy_refuses_two_targets():
    pred = Predictions(mean=np.zeros((3, 2)), std=np.ones((3, 2)))
    with pytest.raises(ValueError, match="ParetoPolicy"):
        GreedyPolicy().scores(pred, ctx())


def test_predictions_validate_shapes():
    with pytest.raises(ValueError, match="std shape"):
        Predictions(mean=np.zeros(3), std=np.zeros(2))
    with pytest.raises(ValueError, match=">= 0"):
        Predictions(mean=np.zeros(2), std=np.array([0.1, -0.1]))


# -- several targets ----------------------------------------------------------------------------

POINTS = np.array([
    [0.0, 3.0],   # 0 front
    [1.0, 1.0],   # 1 front
    [3.0, 0.0],   # 2 front
    [2.0, 2.0],   # 3 dominated by 1
    [1.5, 3.5],   # 4 dominated by 0 and 1, not by 3
    [2.5, 3.0],   # 5 dominated by 3 as well
])


def test_pareto_ranks_and_front():
    assert pareto_ranks(POINTS).tolist() == [0, 0, 0, 1, 1, 2]
    assert sorted(map(tuple, pareto_front(POINTS))) == [(0, 3), (1, 1), (3, 0)]


def test_pareto_policy_picks_non_dominated_points_first():
    pred = Predictions(mean=POINTS, std=np.zeros_like(POINTS))
    policy = ParetoPolicy((minimise("formation"), minimise("other")))
    assert set(top(policy, pred, k=3)) == {0, 1, 2}
    picks = top(policy, pred, k=6)
    assert set(picks[3:5]) == {3, 4} and picks[5] == 5


def test_band_gap_window_objective():
    obj = window("band_gap", 1.0, 3.0)
    assert obj(np.array([0.0, 1.0, 2.0, 3.0, 4.5])).tolist() == [1.0, 0.0, 0.0, 0.0, 1.5]


def test_pareto_policy_with_stability_and_gap_window():
    # (formation eV/atom, band gap eV); want low formation energy and a gap in 1-3 eV
    mean = np.array([[-2.0, 0.0], [-1.5, 2.0], [-1.0, 1.5], [-0.5, 6.0]])
    pred = Predictions(mean=mean, std=np.zeros_like(mean))
    policy = ParetoPolicy((minimise("formation"), window("gap", 1.0, 3.0)))
    # 0 is most stable but a metal; 1 is stable and in the window and dominates 2 and 3
    assert set(top(policy, pred, k=2)) == {0, 1}


def test_hypervolume_2d_and_3d_by_hand():
    ref = np.array([4.0, 4.0])
    # union of rectangles: [0,4]x[3,4] + [1,4]x[1,3] + [3,4]x[0,1] = 4 + 6 + 1
    assert hypervolume(POINTS, ref) == pytest.approx(11.0)
    cube = hypervolume(np.array([[0.0, 0.0, 0.0]]), np.array([1.0, 2.0, 3.0]))
    assert cube == pytest.approx(6.0)
    two = hypervolume(np.array([[0.0, 1.0, 1.0], [1.0, 0.0, 1.0]]), np.array([2.0, 2.0, 2.0]))
    assert two == pytest.approx(2 + 2 - 1)  # two 2x1x1 boxes overlapping in a 1x1x1 cube


@given(st.lists(st.tuples(st.floats(0, 3.9), st.floats(0, 3.9)), min_size=0, max_size=8),
       st.tuples(st.floats(-1, 5), st.floats(-1, 5)))
@settings(max_examples=80, deadline=None)
def test_vectorised_2d_improvement_equals_difference_of_hypervolumes(front, point):
    ref = np.array([4.0, 4.0])
    front_arr = np.array(front, dtype=float).reshape(-1, 2)
    p = np.array(point)
    expected = hypervolume(np.vstack([front_arr, p]), ref) - hypervolume(front_arr, ref)
    got = hypervolume_improvement_2d(p[None, :], front_arr, ref)[0]
    assert got == pytest.approx(expected, abs=1e-9)


def test_ehvi_prefers_point_that_extends_the_front():
    observed = np.array([[0.0, 3.0], [3.0, 0.0]])
    mean = np.array([[1.0, 1.0], [2.5, 2.5], [3.5, 3.5]])
    pred = Predictions(mean=mean, std=np.full_like(mean, 0.05))
    policy = EhviPolicy((minimise("a"), minimise("b")), reference=(4.0, 4.0))
    scores = policy.scores(pred, ctx(observed_objectives=observed))
    assert np.argmax(scores) == 0
    assert scores[0] > scores[1] > scores[2] >= 0


def test_ehvi_three_objectives_ranks_front_extending_point_first():
    observed = np.array([[0.0, 2.0, 2.0], [2.0, 0.0, 2.0]])
    mean = np.array([[2.0, 2.0, 0.0], [2.5, 2.5, 2.5], [1.0, 1.0, 1.0]])
    pred = Predictions(mean=mean, std=np.full_like(mean, 0.01))
    policy = EhviPolicy((minimise("a"), minimise("b"), minimise("c")), reference=(3.0, 3.0, 3.0),
                        samples=16)
    scores = policy.scores(pred, ctx(observed_objectives=observed))
    assert scores[1] < scores[0] and scores[1] < scores[2]


def test_ehvi_batch_spreads_over_the_front():
    # two near-identical candidates at one spot and one elsewhere: the believer update
    # makes the second pick go elsewhere rather than to the twin
    mean = np.array([[0.5, 2.5], [0.51, 2.49], [2.5, 0.5]])
    pred = Predictions(mean=mean, std=np.full_like(mean, 0.01))
    policy = EhviPolicy((minimise("a"), minimise("b")), reference=(3.0, 3.0))
    picks = select_batch(policy, pred, ctx(observed_objectives=np.array([[1.5, 1.5]])), 2)
    assert sorted(picks) in ([0, 2], [1, 2])


def _brute_force_ranks(points: np.ndarray) -> list[int]:
    ranks = [-1] * len(points)
    remaining = set(range(len(points)))
    rank = 0
    while remaining:
        layer = {i for i in remaining if not any(
            np.all(points[j] <= points[i]) and np.any(points[j] < points[i])
            for j in remaining)}
        for i in layer:
            ranks[i] = rank
        remaining -= layer
        rank += 1
    return ranks


@given(st.lists(st.tuples(st.integers(0, 6), st.integers(0, 6), st.integers(0, 6)),
                min_size=1, max_size=25))
@settings(max_examples=80, deadline=None)
def test_fast_pareto_ranks_match_brute_force_in_2d_and_3d(rows):
    points3 = np.array(rows, dtype=float)
    assert pareto_ranks(points3).tolist() == _brute_force_ranks(points3)
    points2 = points3[:, :2]
    assert pareto_ranks(points2).tolist() == _brute_force_ranks(points2)
