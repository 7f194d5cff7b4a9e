"""A cheap surrogate for active learning: composition + structure features and a random
forest whose trees serve as the ensemble (mean, spread, and members for Thompson sampling).

It retrains in well under a second on a few hundred labels, so a retrospective campaign
can retrain every round on two CPU cores. The GNN ensemble of ``materialabs.ml`` is the
production predictor; this one stands in where speed matters more than accuracy.

Features per crystal (all from the structure record, no labels):
  * element fractions over the elements of the periodic table's first 94;
  * fraction-weighted mean, min, max and range of element properties (Z, Pauling
    electronegativity, row, group, atomic radius, Mendeleev number, mass);
  * number of elements, volume per atom (Å³), density (g/cm³), sites in the cell;
  * ionic-bonding descriptors from electronegativities (see ``_ionic``).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

from materialabs.acquisition.policies import Predictions
from materialabs.crystals import Crystal

MAX_Z = 94
_AMU_PER_A3_TO_G_PER_CM3 = 1.66053906660


@lru_cache(maxsize=1)
def element_table() -> tuple[tuple[str, ...], np.ndarray]:
    """Symbols Z=1..94 and their property matrix (94 x 7); gaps filled with column means."""
    from pymatgen.core import Element

    symbols, rows = [], []
    with warnings.catch_warnings():  # noble gases have no Pauling electronegativity: NaN
        warnings.simplefilter("ignore", UserWarning)
        for z in range(1, MAX_Z + 1):
            el = Element.from_Z(z)
            symbols.append(el.symbol)
            rows.append([z, _num(el.X), el.row, el.group, _num(el.atomic_radius),
                         _num(el.mendeleev_no), float(el.atomic_mass)])
    table = np.asarray(rows, dtype=float)
    means = np.nanmean(table, axis=0)
    table = np.where(np.isnan(table), means, table)
    return tuple(symbols), table


def _num(value: object) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return float("nan")


def featurize(crystals: Sequence[Crystal]) -> np.ndarray:
    """Feature matrix (n_crystals x n_features) for the crystals, in order."""
    symbols, props = element_table()
    index = {s: i for i, s in enumerate(symbols)}
    fractions = np.zeros((len(crystals), len(symbols)))
    extra = np.zeros((len(crystals), 4))
    for row, crystal in enumerate(crystals):
        for species in crystal.species:
            if species not in index:
                raise ValueError(f"featurize: crystal {row} has species {species!r}; "
                                 f"expected an element with Z <= {MAX_Z}")
            fractions[row, index[species]] += 1.0
        volume = crystal.volume_angstrom3
        mass = sum(props[index[s], 6] for s in crystal.species)
        extra[row] = [len(set(crystal.species)), volume / crystal.num_sites,
                      mass / volume * _AMU_PER_A3_TO_G_PER_CM3, crystal.num_sites]
    fractions /= fractions.sum(axis=1, keepdims=True)
    present = fractions > 0
    mean = fractions @ props
    lo = np.stack([np.where(present, props[:, j], np.inf).min(axis=1)
                   for j in range(props.shape[1])], axis=1)
    hi = np.stack([np.where(present, props[:, j], -np.inf).max(axis=1)
                   for j in range(props.shape[1])], axis=1)
    return np.hstack([fractions, mean, lo, hi, hi - lo, extra, _ionic(fractions, props[:, 1])])


def _ionic(fractions: np.ndarray, electronegativity: np.ndarray) -> np.ndarray:
    """Descriptors of ionic bonding, the main driver of very negative formation energies:
    Pauling's ionic character of the most and least electronegative elements, the mean
    absolute electronegativity deviation, and the anion's (most electronegative) fraction
    and that fraction times the electronegativity gap."""
    present = fractions > 0
    x_max = np.where(present, electronegativity, -np.inf).max(axis=1)
    x_min = np.where(present, electronegativity, np.inf).min(axis=1)
    x_mean = fractions @ electronegativity
    deviation = np.abs(electronegativity[None, :] - x_mean[:, None])
    anion = np.where(present, electronegativity, -np.inf).argmax(axis=1)
    anion_fraction = fractions[np.arange(len(fractions)), anion]
    gap = x_max - x_min
    return np.stack([1 - np.exp(-gap**2 / 4), (fractions * deviation).sum(axis=1),
                     anion_fraction, anion_fraction * gap], axis=1)


@dataclass
class ForestSurrogate:
    """Random forest regression; each tree is one ensemble member."""

    n_trees: int = 64
    max_features: float = 0.33
    min_samples_leaf: int = 1
    seed: int = 0
    n_jobs: int = 1
    _model: Any = field(default=None, init=False, repr=False)

    def fit(self, features: np.ndarray, targets: np.ndarray) -> ForestSurrogate:
        from sklearn.ensemble import RandomForestRegressor

        if len(features) != len(targets) or len(targets) < 2:
            raise ValueError(f"surrogate fit: {len(features)} feature rows for {len(targets)} "
                             f"targets; need equal counts and at least 2")
        self._model = RandomForestRegressor(
            n_estimators=self.n_trees, max_features=self.max_features,
            min_samples_leaf=self.min_samples_leaf, random_state=self.seed, n_jobs=self.n_jobs,
        ).fit(features, targets)
        return self

    def predict(self, features: np.ndarray) -> Predictions:
        if self._model is None:
            raise RuntimeError("surrogate: predict called before fit")
        members = np.stack([tree.predict(features) for tree in self._model.estimators_])
        return Predictions(mean=members.mean(axis=0), std=members.std(axis=0), members=members)
