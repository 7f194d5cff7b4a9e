"""Batch selection for one acquisition round, with diversity.

A round sends ``k`` candidates to DFT at once. Taking the top ``k`` scores often wastes
calculations on near-copies of one structure, so after each pick the selector blocks:

* candidates with the same *duplicate key* (by default: reduced formula + space group
  number, see :func:`duplicate_key`), and
* candidates whose *fingerprint* (any feature vector: composition/structure descriptors,
  a GNN embedding) lies within ``min_distance`` (Euclidean) of a picked one.

Candidates already evaluated or pending are excluded through ``exclude``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from materialabs.acquisition.policies import AcquisitionContext, Policy, Predictions
from materialabs.crystals import Crystal


@dataclass(frozen=True)
class DiversityRule:
    """How close two candidates may be within one batch."""

    duplicate_keys: Sequence[str] | None = None
    fingerprints: np.ndarray | None = None
    min_distance: float = 0.0


def duplicate_key(crystal: Crystal, symprec: float = 0.1) -> str:
    """Reduced formula + space group number: two candidates sharing it are the same phase
    for a screening campaign (e.g. 'NaCl:225')."""
    number = crystal.spacegroup_number(symprec) or 1  # spglib gives up on some cells: P1
    return f"{crystal.reduced_formula}:{number}"


def select_batch(
    policy: Policy,
    predictions: Predictions,
    context: AcquisitionContext,
    k: int,
    *,
    exclude: np.ndarray | Sequence[int] | None = None,
    diversity: DiversityRule | None = None,
) -> list[int]:
    """Indices of up to ``k`` candidates, best first; fewer if the pool runs out."""
    n = len(predictions)
    if k < 0:
        raise ValueError(f"batch size: expected >= 0, got {k}")
    blocked = _initial_block(n, exclude)
    diversity = diversity or DiversityRule()
    _check_diversity(diversity, n)
    keys = np.asarray(diversity.duplicate_keys, dtype=object) if diversity.duplicate_keys \
        is not None else None
    chosen: list[int] = []
    scores = None
    while len(chosen) < k and not blocked.all():
        if scores is None or policy.sequential:
            scores = np.asarray(policy.scores(predictions, context.with_pending(chosen)), float)
            if scores.shape != (n,):
                raise ValueError(f"policy {policy.name}: returned scores of shape "
                                 f"{scores.shape}, expected ({n},)")
        open_ = np.flatnonzero(~blocked)
        open_scores = np.nan_to_num(scores[open_], nan=-np.inf)
        pick = int(open_[np.argmax(open_scores)])  # ties: the lowest index, deterministic
        chosen.append(pick)
        blocked[pick] = True
        if keys is not None:
            blocked |= keys == keys[pick]
        if diversity.fingerprints is not None and diversity.min_distance > 0:
            gaps = np.linalg.norm(diversity.fingerprints - diversity.fingerprints[pick], axis=1)
            blocked |= gaps < diversity.min_distance
    return chosen


def _initial_block(n: int, exclude: np.ndarray | Sequence[int] | None) -> np.ndarray:
    blocked = np.zeros(n, dtype=bool)
    if exclude is None:
        return blocked
    exclude = np.asarray(exclude)
    if exclude.dtype == bool:
        if exclude.shape != (n,):
            raise ValueError(f"exclude mask: shape {exclude.shape}, expected ({n},)")
        return exclude.copy()
    blocked[exclude.astype(int)] = True
    return blocked


def _check_diversity(rule: DiversityRule, n: int) -> None:
    if rule.duplicate_keys is not None and len(rule.duplicate_keys) != n:
        raise ValueError(f"diversity: {len(rule.duplicate_keys)} duplicate keys for a pool of {n}")
    if rule.fingerprints is not None and len(rule.fingerprints) != n:
        raise ValueError(f"diversity: {len(rule.fingerprints)} fingerprints for a pool of {n}")
