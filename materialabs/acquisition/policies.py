"""Acquisition policies: which candidates deserve a DFT calculation next.

Direction: every single-target policy here **minimises** the target (formation energy per
atom, energy above hull: lower is more stable). A policy turns the surrogate's
predictions into a *score*; the batch selector picks the highest scores first. So:

=============  ===========================================  ==============================
policy         score (higher = pick first)                   picks
=============  ===========================================  ==============================
random         uniform random                                anything (the baseline)
greedy         -mean                                         the lowest predicted value
uncertainty    std                                           where the model knows least
ucb            -(mean - kappa * std)                         lowest optimistic bound (LCB)
ei             E[max(best - y - xi, 0)], y ~ N(mean, std)    expected gain over the best
thompson       -(one ensemble member's prediction)           a random plausible model's best
=============  ===========================================  ==============================

"UCB" for minimisation is the lower confidence bound: optimism means assuming the value
may be ``kappa`` standard deviations *lower* than predicted, so at equal mean the more
uncertain candidate wins.

Multi-objective policies (:class:`ParetoPolicy`, :class:`EhviPolicy`) work on two or more
targets, each mapped to a quantity to minimise by an :class:`Objective` (e.g. formation
energy as is, band gap as its distance outside a window).

Sequential policies (Thompson, EI, EHVI) are re-scored after every pick within a batch,
with the picks so far in ``context.pending`` (a fresh ensemble member per pick for
Thompson; the pending candidates' predicted means treated as observed for EI and EHVI,
the "kriging believer"), so one batch does not pile onto a single optimum.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

import numpy as np
from scipy.stats import norm

_TINY = 1e-12


@dataclass(frozen=True)
class Predictions:
    """Surrogate output for a pool of ``n`` candidates.

    ``mean`` and ``std`` have shape (n,) for one target or (n, d) for d targets;
    ``members`` (optional) holds each ensemble member's prediction, shape (m, n) or (m, n, d).
    """

    mean: np.ndarray
    std: np.ndarray
    members: np.ndarray | None = None

    def __post_init__(self) -> None:
        mean, std = np.asarray(self.mean, float), np.asarray(self.std, float)
        if mean.shape != std.shape:
            raise ValueError(f"predictions: mean shape {mean.shape} != std shape {std.shape}")
        if np.any(std < 0) or not np.all(np.isfinite(std)):
            raise ValueError("predictions: std must be finite and >= 0")
        if self.members is not None and np.asarray(self.members).shape[1:] != mean.shape:
            raise ValueError(f"predictions: members shape {np.asarray(self.members).shape} "
                             f"does not match (m, *{mean.shape})")
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "std", std)

    def __len__(self) -> int:
        return int(self.mean.shape[0])


@dataclass(frozen=True)
class AcquisitionContext:
    """What a policy may know besides the predictions.

    ``best_observed``: the lowest target value measured so far (EI's incumbent).
    ``observed_objectives``: (k, d) measured objective values (already mapped to
    minimised quantities), for the multi-objective policies' current Pareto front.
    ``pending``: indices picked earlier in the batch being assembled.
    """

    rng: np.random.Generator
    best_observed: float | None = None
    observed_objectives: np.ndarray | None = None
    pending: tuple[int, ...] = ()

    def with_pending(self, pending: Sequence[int]) -> AcquisitionContext:
        return replace(self, pending=tuple(int(i) for i in pending))


class Policy(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def sequential(self) -> bool:
        """Re-score after every pick within a batch."""
        ...

    def scores(self, predictions: Predictions, context: AcquisitionContext) -> np.ndarray: ...


# -- single target ------------------------------------------------------------------------------

@dataclass(frozen=True)
class RandomPolicy:
    name: str = "random"
    sequential: bool = False

    def scores(self, predictions: Predictions, context: AcquisitionContext) -> np.ndarray:
        return context.rng.random(len(predictions))


@dataclass(frozen=True)
class GreedyPolicy:
    """Exploit: the lowest predicted mean."""

    name: str = "greedy"
    sequential: bool = False

    def scores(self, predictions: Predictions, context: AcquisitionContext) -> np.ndarray:
        return -_single(predictions).mean


@dataclass(frozen=True)
class UncertaintyPolicy:
    """Explore: the largest predicted standard deviation."""

    name: str = "uncertainty"
    sequential: bool = False

    def scores(self, predictions: Predictions, context: AcquisitionContext) -> np.ndarray:
        return _single(predictions).std.copy()


@dataclass(frozen=True)
class UcbPolicy:
    """Lower confidence bound for minimisation: score = -(mean - kappa * std)."""

    kappa: float = 2.0
    name: str = "ucb"
    sequential: bool = False

    def scores(self, predictions: Predictions, context: AcquisitionContext) -> np.ndarray:
        pred = _single(predictions)
        return -(pred.mean - self.kappa * pred.std)


def expected_improvement(mean: np.ndarray, std: np.ndarray, best: float,
                         xi: float = 0.0) -> np.ndarray:
    """EI for minimisation: E[max(best - xi - y, 0)] with y ~ N(mean, std²).

    With std = 0 it is the plain improvement max(best - xi - mean, 0).
    """
    mean, std = np.asarray(mean, float), np.asarray(std, float)
    gain = best - xi - mean
    safe = np.maximum(std, _TINY)
    z = gain / safe
    ei = gain * norm.cdf(z) + safe * norm.pdf(z)
    return np.where(std > _TINY, np.maximum(ei, 0.0), np.maximum(gain, 0.0))


@dataclass(frozen=True)
class EiPolicy:
    """Expected improvement over the best observed value (minimisation).

    Before anything is observed the incumbent is the best predicted mean.
    """

    xi: float = 0.0
    name: str = "ei"
    sequential: bool = True

    def scores(self, predictions: Predictions, context: AcquisitionContext) -> np.ndarray:
        pred = _single(predictions)
        candidates = [float(np.min(pred.mean))] if context.best_observed is None else [
            context.best_observed]
        if context.pending:  # kriging believer: pending picks count at their predicted mean
            candidates.append(float(np.min(pred.mean[list(context.pending)])))
        return expected_improvement(pred.mean, pred.std, min(candidates), self.xi)


@dataclass(frozen=True)
class ThompsonPolicy:
    """Thompson sampling: score by one randomly chosen ensemble member's prediction.

    Each pick of a batch draws a new member from ``context.rng`` (reproducible with a seeded
    generator). Without ensemble members, one joint draw from N(mean, std²) plays the member.
    """

    name: str = "thompson"
    sequential: bool = True

    def scores(self, predictions: Predictions, context: AcquisitionContext) -> np.ndarray:
        pred = _single(predictions)
        if pred.members is not None and len(pred.members) > 0:
            member = int(context.rng.integers(len(pred.members)))
            return -np.asarray(pred.members[member], float)
        return -(pred.mean + pred.std * context.rng.standard_normal(len(pred)))


def _single(predictions: Predictions) -> Predictions:
    if predictions.mean.ndim != 1:
        raise ValueError(f"single-target policy: expected mean of shape (n,), got "
                         f"{predictions.mean.shape}; use ParetoPolicy or EhviPolicy for "
                         f"several targets")
    return predictions


# -- several targets ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Objective:
    """Maps one raw target to a quantity to minimise (vectorised over any array shape)."""

    name: str
    transform: Callable[[np.ndarray], np.ndarray] = field(default=lambda v: v)

    def __call__(self, values: np.ndarray) -> np.ndarray:
        return np.asarray(self.transform(np.asarray(values, float)), float)


def minimise(name: str) -> Objective:
    """The target itself is to be minimised (e.g. formation energy, energy above hull)."""
    return Objective(name, lambda v: v)


def maximise(name: str) -> Objective:
    return Objective(name, lambda v: -v)


def window(name: str, low: float, high: float) -> Objective:
    """Distance outside [low, high] (0 inside): e.g. a band gap window of 1-3 eV for PV."""
    if not low <= high:
        raise ValueError(f"objective {name}: window low {low} > high {high}")
    return Objective(name, lambda v: np.maximum(np.maximum(low - v, v - high), 0.0))


def pareto_ranks(points: np.ndarray) -> np.ndarray:
    """Non-dominated sorting (minimisation): rank 0 is the Pareto front, then 1, ...

    Two objectives: one sweep in O(n log n). More: the dominance matrix once, then layers
    peeled by counting (NSGA-II's fast non-dominated sort), O(n²).
    """
    points = np.asarray(points, float)
    if len(points) == 0:
        return np.zeros(0, dtype=int)
    if points.shape[1] == 2:
        return _pareto_ranks_2d(points)
    # dominated_by[i, j]: j dominates i (<= everywhere, < somewhere)
    le = np.all(points[None, :, :] <= points[:, None, :], axis=2)
    lt = np.any(points[None, :, :] < points[:, None, :], axis=2)
    dominated_by = le & lt
    remaining = dominated_by.sum(axis=1)
    ranks = np.full(len(points), -1, dtype=int)
    rank = 0
    layer = np.flatnonzero(remaining == 0)
    while layer.size:
        ranks[layer] = rank
        remaining = remaining - dominated_by[:, layer].sum(axis=1)
        remaining[ranks >= 0] = -1
        layer = np.flatnonzero(remaining == 0)
        rank += 1
    return ranks


def _pareto_ranks_2d(points: np.ndarray) -> np.ndarray:
    """Sweep in order of the first objective; each layer keeps its lowest second objective,
    and those minima rise from layer to layer, so a point's layer is found by bisection:
    the first layer whose minimum is above its second objective (which then leaves it
    undominated there)."""
    import bisect

    order = np.lexsort((points[:, 1], points[:, 0]))
    layer_min: list[float] = []
    ranks = np.empty(len(points), dtype=int)
    previous: tuple[float, float] | None = None
    previous_rank = 0
    for i in order:
        x, y = float(points[i, 0]), float(points[i, 1])
        if previous == (x, y):  # an exact duplicate shares its twin's layer
            ranks[i] = previous_rank
            continue
        k = bisect.bisect_right(layer_min, y)
        if k == len(layer_min):
            layer_min.append(y)
        else:
            layer_min[k] = y
        ranks[i] = k
        previous, previous_rank = (x, y), k
    return ranks


def pareto_front(points: np.ndarray) -> np.ndarray:
    """The non-dominated rows of ``points`` (minimisation), duplicates kept once."""
    points = np.asarray(points, float).reshape(-1, np.asarray(points).shape[-1])
    if len(points) == 0:
        return points
    front = points[pareto_ranks(points) == 0]
    return np.unique(front, axis=0)


def crowding_distance(points: np.ndarray) -> np.ndarray:
    """NSGA-II crowding distance: larger = more isolated on its front (ends are infinite)."""
    points = np.asarray(points, float)
    n, d = points.shape
    distance = np.zeros(n)
    if n <= 2:
        return np.full(n, np.inf)
    for k in range(d):
        order = np.argsort(points[:, k], kind="stable")
        span = points[order[-1], k] - points[order[0], k]
        distance[order[0]] = distance[order[-1]] = np.inf
        if span > 0:
            distance[order[1:-1]] += (points[order[2:], k] - points[order[:-2], k]) / span
    return distance


def hypervolume(points: np.ndarray, reference: np.ndarray) -> float:
    """Volume dominated by ``points`` and bounded by ``reference`` (minimisation), exact.

    2-D by a sweep; higher dimensions by slicing along the last axis (fine for fronts of
    tens of points, which is what a DFT campaign has).
    """
    reference = np.asarray(reference, float)
    points = np.asarray(points, float).reshape(-1, reference.size)
    points = points[np.all(points < reference, axis=1)]
    if len(points) == 0:
        return 0.0
    points = pareto_front(points)
    if reference.size == 1:
        return float(reference[0] - points[:, 0].min())
    if reference.size == 2:
        order = np.argsort(points[:, 0])
        xs, ys = points[order, 0], points[order, 1]
        widths = np.diff(np.append(xs, reference[0]))
        heights = reference[1] - np.minimum.accumulate(ys)
        return float(np.sum(widths * heights))
    order = np.argsort(points[:, -1])
    points = points[order]
    levels = np.append(points[:, -1], reference[-1])
    volume = 0.0
    for i in range(len(points)):
        depth = levels[i + 1] - levels[i]
        if depth > 0:
            volume += depth * hypervolume(points[: i + 1, :-1], reference[:-1])
    return volume


def hypervolume_improvement_2d(samples: np.ndarray, front: np.ndarray,
                               reference: np.ndarray) -> np.ndarray:
    """Exact hypervolume gained by adding each 2-D point in ``samples`` (..., 2) to ``front``.

    Vectorised: the region not yet dominated is a staircase of columns; a point gains the
    part of each column that lies above and to the right of it.
    """
    reference = np.asarray(reference, float)
    front = pareto_front(front) if len(front) else np.empty((0, 2))
    front = front[np.all(front < reference, axis=1)]
    order = np.argsort(front[:, 0])
    xs, ys = front[order, 0], front[order, 1]
    lefts = np.concatenate([[-np.inf], xs])
    rights = np.concatenate([xs, [reference[0]]])
    ceilings = np.concatenate([[reference[1]], np.minimum.accumulate(ys)])
    x = samples[..., 0:1]
    y = samples[..., 1:2]
    widths = np.clip(rights - np.maximum(lefts, x), 0.0, None)
    heights = np.clip(ceilings - y, 0.0, None)
    return np.sum(widths * heights, axis=-1)


@dataclass(frozen=True)
class ParetoPolicy:
    """Pick by Pareto rank of the predicted objectives, then by crowding distance.

    Rank-0 candidates (non-dominated under the predicted means) come first; within a rank,
    isolated ones (large crowding distance) first, so a batch spreads along the front.
    """

    objectives: Sequence[Objective]
    name: str = "pareto"
    sequential: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "objectives", tuple(self.objectives))

    def scores(self, predictions: Predictions, context: AcquisitionContext) -> np.ndarray:
        values = _objective_means(predictions, self.objectives)
        ranks = pareto_ranks(values)
        scores = -ranks.astype(float)
        for rank in np.unique(ranks):
            members = np.flatnonzero(ranks == rank)
            crowd = crowding_distance(values[members])
            finite = np.where(np.isinf(crowd), 2.0, np.minimum(crowd, 2.0))
            scores[members] += 0.49 * finite / 2.0  # stays inside its rank's band
        return scores


@dataclass(frozen=True)
class EhviPolicy:
    """Expected hypervolume improvement over the observed Pareto front (Monte Carlo).

    Samples each candidate's targets from N(mean, std²) (independent per target), maps them
    through the objectives and averages the hypervolume gained. ``reference`` bounds the
    hypervolume (one value per objective, worse than anything of interest). For more than
    two objectives only the ``max_exact`` candidates best by Pareto rank are scored (the
    exact hypervolume is costly there); the rest score below all of them, ordered by rank.
    """

    objectives: Sequence[Objective]
    reference: Sequence[float]
    samples: int = 64
    max_exact: int = 200
    name: str = "ehvi"
    sequential: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "objectives", tuple(self.objectives))
        object.__setattr__(self, "reference", tuple(float(r) for r in self.reference))
        if len(self.objectives) < 2 or len(self.reference) != len(self.objectives):
            raise ValueError(f"EHVI: expected >= 2 objectives and one reference value each, "
                             f"got {len(self.objectives)} objectives and "
                             f"{len(self.reference)} reference values")

    def scores(self, predictions: Predictions, context: AcquisitionContext) -> np.ndarray:
        mean, std = predictions.mean, predictions.std
        if mean.ndim != 2 or mean.shape[1] != len(self.objectives):
            raise ValueError(f"EHVI: expected mean of shape (n, {len(self.objectives)}), "
                             f"got {mean.shape}")
        front = self._front(predictions, context)
        reference = np.asarray(self.reference, float)
        # common random numbers: the same standard normals for every candidate
        noise = context.rng.standard_normal((self.samples, mean.shape[1]))
        if len(self.objectives) == 2:
            raw = mean[:, None, :] + std[:, None, :] * noise[None, :, :]
            samples = self._transform(raw)
            return hypervolume_improvement_2d(samples, front, reference).mean(axis=1)
        return self._scores_nd(predictions, noise, front, reference)

    def _front(self, predictions: Predictions, context: AcquisitionContext) -> np.ndarray:
        parts = []
        if context.observed_objectives is not None and len(context.observed_objectives):
            parts.append(np.asarray(context.observed_objectives, float))
        if context.pending:
            parts.append(_objective_means(predictions, self.objectives)[list(context.pending)])
        return pareto_front(np.vstack(parts)) if parts else np.empty((0, len(self.objectives)))

    def _transform(self, raw: np.ndarray) -> np.ndarray:
        return np.stack([obj(raw[..., k]) for k, obj in enumerate(self.objectives)], axis=-1)

    def _scores_nd(self, predictions: Predictions, noise: np.ndarray, front: np.ndarray,
                   reference: np.ndarray) -> np.ndarray:
        ranks = pareto_ranks(_objective_means(predictions, self.objectives))
        scores = -1e6 - ranks.astype(float)  # below any real EHVI, ordered by rank
        shortlist = np.argsort(ranks, kind="stable")[: self.max_exact]
        base = hypervolume(front, reference) if len(front) else 0.0
        for i in shortlist:
            raw = predictions.mean[i] + predictions.std[i] * noise
            values = self._transform(raw)
            gains = [hypervolume(np.vstack([front, v[None, :]]), reference) - base
                     for v in values]
            scores[i] = float(np.mean(gains))
        return scores


def _objective_means(predictions: Predictions, objectives: Sequence[Objective]) -> np.ndarray:
    mean = predictions.mean
    if mean.ndim != 2 or mean.shape[1] != len(objectives):
        raise ValueError(f"multi-objective policy: expected mean of shape (n, {len(objectives)}),"
                         f" got {mean.shape}")
    return np.stack([obj(mean[:, k]) for k, obj in enumerate(objectives)], axis=1)


SINGLE_TARGET_POLICIES: dict[str, Callable[[], Policy]] = {
    "random": RandomPolicy,
    "greedy": GreedyPolicy,
    "uncertainty": UncertaintyPolicy,
    "ucb": UcbPolicy,
    "ei": EiPolicy,
    "thompson": ThompsonPolicy,
}


def make_policy(name: str, **options: float) -> Policy:
    """A single-target policy by name (``kappa`` for ucb, ``xi`` for ei)."""
    try:
        factory = SINGLE_TARGET_POLICIES[name]
    except KeyError:
        raise ValueError(f"acquisition policy {name!r}: expected one of "
                         f"{sorted(SINGLE_TARGET_POLICIES)}") from None
    return factory(**options)  # type: ignore[call-arg]
