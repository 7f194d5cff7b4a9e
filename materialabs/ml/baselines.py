"""Composition-only baselines (the seed paper's Fig. 1 comparison): SVR, linear, random forest.

Features, computed from the formula alone (structure is ignored, as in the paper):

* the fractional element vector (atomic fraction of each of H..Lr);
* Magpie-style statistics (Ward et al., npj Comput. Mater. 2, 16028, 2016) of element
  properties taken from pymatgen: fraction-weighted mean, mean absolute deviation, minimum,
  maximum and range of each property over the elements present, plus the element count.

Everything is vectorised over the whole table (chunks of rows, no per-structure loop).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np

from materialabs.ml.features import MAX_Z, atomic_numbers

if TYPE_CHECKING:
    from materialabs.crystals import Crystal

ELEMENT_PROPERTIES = (
    "Z", "atomic_mass", "row", "group", "X", "atomic_radius", "mendeleev_no",
    "melting_point", "molar_volume", "ionization_energy", "s_valence", "p_valence",
    "d_valence", "f_valence",
)
_CHUNK = 4096


@lru_cache(maxsize=1)
def element_table() -> np.ndarray:
    """(MAX_Z, len(ELEMENT_PROPERTIES)) property values; gaps filled with the column mean."""
    import warnings

    from pymatgen.core.periodic_table import Element

    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pymatgen warns about elements lacking some data
        for z in range(1, MAX_Z + 1):
            element = Element.from_Z(z)
            rows.append([_property(element, name) for name in ELEMENT_PROPERTIES])
    table = np.array(rows, dtype=np.float64)
    column_mean = np.nanmean(table, axis=0)
    gaps = np.isnan(table)
    table[gaps] = np.take(column_mean, np.nonzero(gaps)[1])
    return table


def _property(element: Any, name: str) -> float:
    if name.endswith("_valence"):
        return float(_valence_electrons(element)[name[0]])
    try:
        value = getattr(element, name)
    except Exception:
        return float("nan")
    try:
        return float(value) if value is not None else float("nan")
    except (TypeError, ValueError):
        return float("nan")


def _valence_electrons(element: Any) -> dict[str, int]:
    """Electrons in the outer s/p shell, the (n-1) d shell and the (n-2) f shell."""
    shells = element.full_electronic_structure
    outer = max(n for n, _, _ in shells)
    counts = {"s": 0, "p": 0, "d": 0, "f": 0}
    for n, orbital, electrons in shells:
        if (orbital in "sp" and n == outer) or (orbital == "d" and n == outer - 1) or \
                (orbital == "f" and n == outer - 2):
            counts[orbital] += electrons
    return counts


def element_fractions(crystals: Sequence[Crystal]) -> np.ndarray:
    """(n, MAX_Z) atomic fraction of each element in each crystal."""
    counts = np.array([c.num_sites for c in crystals], dtype=np.int64)
    z = np.concatenate([atomic_numbers(c.species) for c in crystals])
    rows = np.repeat(np.arange(len(crystals)), counts)
    fractions = np.zeros((len(crystals), MAX_Z))
    np.add.at(fractions, (rows, z - 1), 1.0)
    return fractions / counts[:, None]


def composition_features(crystals: Sequence[Crystal]) -> np.ndarray:
    """Fractional element vector + Magpie-style statistics, one row per crystal."""
    fractions = element_fractions(crystals)
    return np.vstack([_statistics(fractions[s:s + _CHUNK])
                      for s in range(0, len(fractions), _CHUNK)])


def _statistics(fractions: np.ndarray) -> np.ndarray:
    props = element_table()  # (Z, P)
    present = fractions > 0
    mean = fractions @ props  # (n, P)
    deviation = np.einsum("nz,nzp->np", fractions, np.abs(props[None] - mean[:, None, :]))
    low = np.where(present[:, :, None], props[None], np.inf).min(axis=1)
    high = np.where(present[:, :, None], props[None], -np.inf).max(axis=1)
    n_elements = present.sum(axis=1, keepdims=True).astype(np.float64)
    return np.hstack([fractions, mean, deviation, low, high, high - low, n_elements])


@dataclass
class BaselineResult:
    name: str
    description: str
    predictions: np.ndarray
    train_seconds: float
    n_train: int


def fit_baselines(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray,
                  seed: int = 0, svr_max_train: int | None = 10_000,
                  n_jobs: int = 2) -> list[BaselineResult]:
    """Random forest, RBF support-vector regression and ridge-regularised linear regression.

    SVR's training cost grows with the square of the training rows; above
    ``svr_max_train`` a random subset of that size is used (reported in the result).
    """
    import time

    from sklearn.ensemble import RandomForestRegressor
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVR

    rng = np.random.default_rng(seed)
    svr_rows = np.arange(len(x_train))
    if svr_max_train is not None and len(x_train) > svr_max_train:
        svr_rows = np.sort(rng.choice(len(x_train), svr_max_train, replace=False))
    models = [
        ("RF", "random forest, 200 trees, max_features 1/3",
         RandomForestRegressor(n_estimators=200, max_features=1 / 3, n_jobs=n_jobs,
                               random_state=seed), np.arange(len(x_train))),
        ("SVR", "RBF support-vector regression, C 10, ε 0.01, standardised features",
         make_pipeline(StandardScaler(), SVR(C=10.0, epsilon=0.01, gamma="scale")), svr_rows),
        ("Linear", "linear regression (ridge α 1, standardised features)",
         make_pipeline(StandardScaler(), Ridge(alpha=1.0)), np.arange(len(x_train))),
    ]
    results = []
    for name, description, model, rows in models:
        started = time.perf_counter()
        model.fit(x_train[rows], y_train[rows])
        seconds = time.perf_counter() - started
        results.append(BaselineResult(name, description, model.predict(x_test), seconds,
                                      len(rows)))
    return results
