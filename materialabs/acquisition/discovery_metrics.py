"""Discovery metrics in the style of Matbench Discovery and GNoME.

A retrospective discovery campaign picks candidates in rounds; each pick is a *hit* when
the candidate is truly stable: its energy above the hull of *all* known phases (the full
reference set, not just what the campaign knew) is <= 0 within :data:`STABLE_TOL_EV`.

* prevalence: fraction of the candidate pool that is truly stable (what random picks hit,
  in expectation);
* precision (GNoME's "hit rate"): fraction of a set of picks that is truly stable;
* recall: fraction of the pool's stable materials that the picks found;
* F1: harmonic mean of precision and recall;
* DAF (discovery acceleration factor, Matbench Discovery): precision / prevalence, so
  random selection has DAF 1 and the ceiling is 1 / prevalence (every pick a hit).

Picks are counted once per *material*: ``keys`` (e.g. the MP id a candidate matched) let
several candidates that are one material count as one find for recall.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from materialabs.acquisition.stability import HullReference, KnownPhase

# On the full reference hull every phase has E_hull >= 0 and hull phases have exactly 0;
# the tolerance only absorbs float noise of the hull construction (~1e-14 eV/atom), so a
# phase 1 meV/atom above the hull counts as unstable, as in Matbench Discovery.
STABLE_TOL_EV = 1e-6


def e_hull_truth(formulas: Sequence[str], formation_energies_per_atom_eV: Sequence[float],
                 names: Sequence[str] | None = None) -> np.ndarray:
    """Each phase's energy above the hull built from *all* the given phases (eV/atom)."""
    if len(formulas) != len(formation_energies_per_atom_eV):
        raise ValueError(f"e_hull_truth: {len(formulas)} formulas for "
                         f"{len(formation_energies_per_atom_eV)} energies")
    reference = HullReference(KnownPhase(str(f), float(e), str(names[i]) if names else "")
                              for i, (f, e) in enumerate(zip(
                                  formulas, formation_energies_per_atom_eV, strict=True)))
    return reference.e_above_hull_many(list(formulas), list(formation_energies_per_atom_eV))


def is_stable(e_hull_eV: np.ndarray | Sequence[float],
              tol: float = STABLE_TOL_EV) -> np.ndarray:
    return np.asarray(e_hull_eV, float) <= tol


def prevalence(stable: np.ndarray | Sequence[bool]) -> float:
    """Fraction of the pool that is stable; NaN for an empty pool."""
    stable = np.asarray(stable, bool)
    return float(stable.mean()) if stable.size else float("nan")


def precision(hits: np.ndarray | Sequence[bool]) -> float:
    """Hit rate of a set of picks (True = truly stable); NaN when nothing was picked."""
    hits = np.asarray(hits, bool)
    return float(hits.mean()) if hits.size else float("nan")


def daf(precision_value: float, prevalence_value: float) -> float:
    """Discovery acceleration factor: precision over the random expectation."""
    if not prevalence_value > 0:
        return float("nan")
    return precision_value / prevalence_value


def f1(precision_value: float, recall_value: float) -> float:
    total = precision_value + recall_value
    return 2 * precision_value * recall_value / total if total > 0 else 0.0


@dataclass(frozen=True)
class DiscoveryScore:
    """Scores of one campaign's picks against the truth of its pool."""

    picks: int
    hits: int
    found: int  # distinct stable materials among the picks
    n_stable: int  # distinct stable materials in the pool
    precision: float
    recall: float
    f1: float
    daf: float
    prevalence: float
    round_precision: tuple[float, ...]


def score_campaign(rounds: Sequence[Sequence[int]], stable: np.ndarray,
                   keys: Sequence[str] | None = None) -> DiscoveryScore:
    """Precision per round and, over all rounds, precision, recall, F1 and DAF.

    ``rounds``: the pool indices picked in each round; ``stable``: truth per pool index;
    ``keys``: the material each pool index is (default: itself). Prevalence is over the
    pool's rows (what a uniformly random pick hits); recall is over distinct materials.
    """
    stable = np.asarray(stable, bool)
    keys = [str(i) for i in range(len(stable))] if keys is None else list(keys)
    if len(keys) != len(stable):
        raise ValueError(f"score_campaign: {len(keys)} keys for a pool of {len(stable)}")
    picked = [int(i) for r in rounds for i in r]
    for i in picked:
        if not 0 <= i < len(stable):
            raise IndexError(f"score_campaign: pick {i} outside the pool of {len(stable)}")
    hits = stable[picked] if picked else np.zeros(0, bool)
    stable_keys = {keys[i] for i in np.flatnonzero(stable)}
    found = {keys[i] for i in picked if stable[i]}
    p = precision(hits)
    r = len(found) / len(stable_keys) if stable_keys else float("nan")
    prev = prevalence(stable)
    return DiscoveryScore(
        picks=len(picked), hits=int(hits.sum()), found=len(found), n_stable=len(stable_keys),
        precision=p, recall=r, f1=f1(p, r) if picked and stable_keys else float("nan"),
        daf=daf(p, prev), prevalence=prev,
        round_precision=tuple(precision(stable[list(map(int, r_))]) for r_ in rounds))


def rising(values: Sequence[float]) -> bool:
    """True when every round's hit rate is at least the one before (NaNs ignored)."""
    finite = [v for v in values if np.isfinite(v)]
    return all(b >= a for a, b in zip(finite, finite[1:], strict=False))
