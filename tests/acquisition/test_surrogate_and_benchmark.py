"""The fast surrogate and the retrospective benchmark's campaign loop on a small pool."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from materialabs.acquisition.surrogate import ForestSurrogate, featurize
from materialabs.crystals import Crystal
from materialabs.dft.replay import ReplayBackend


def cubic(species: list[str], a: float) -> Crystal:
    frac = [[0, 0, 0], [0.5, 0.5, 0.5]][: len(species)]
    return Crystal.from_arrays(np.eye(3) * a, species, frac)


def test_features_see_composition_and_ionicity():
    x = featurize([cubic(["Na", "Cl"], 3.0), cubic(["Cu", "Cu"], 3.0), cubic(["Na", "Cl"], 4.0)])
    assert x.shape[0] == 3 and np.all(np.isfinite(x))
    assert not np.allclose(x[0], x[1])  # composition differs
    assert not np.allclose(x[0], x[2])  # volume differs
    ionic = x[:, -4]  # Pauling ionic character of the extreme electronegativities
    assert ionic[0] > 0.5 and ionic[1] == 0.0


def test_featurize_rejects_unknown_species():
    with pytest.raises(ValueError, match="species 'Qq'"):
        featurize([cubic(["Qq"], 3.0)])


def test_forest_gives_mean_std_and_members():
    rng = np.random.default_rng(0)
    x = rng.random((80, 3))
    y = 3 * x[:, 0] + 0.1 * rng.standard_normal(80)
    model = ForestSurrogate(n_trees=16).fit(x[:60], y[:60])
    pred = model.predict(x[60:])
    assert pred.members.shape == (16, 20)
    assert np.allclose(pred.mean, pred.members.mean(axis=0))
    assert np.corrcoef(pred.mean, y[60:])[0, 1] > 0.8
    assert np.all(pred.std >= 0)
    with pytest.raises(RuntimeError, match="before fit"):
        ForestSurrogate().predict(x)


def load_benchmark():
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "active_learning.py"
    spec = importlib.util.spec_from_file_location("al_benchmark", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def synthetic_pool(bench, n: int = 300):
    """Binary cubic cells whose 'formation energy' falls with the lattice constant, so the
    most stable ones are learnable from the volume feature."""
    rng = np.random.default_rng(1)
    pairs = [("Na", "Cl"), ("Mg", "O"), ("Cu", "Zn"), ("Li", "F"), ("Al", "P")]
    rows = []
    for i in range(n):
        a = float(rng.uniform(3.0, 6.0))
        el = pairs[i % len(pairs)]
        rows.append({"material_id": f"syn-{i}", "reduced_formula": "".join(el),
                     "spacegroup_number": 221 + i,  # all distinct: diversity never blocks
                     "formation_energy_per_atom": -a + 0.05 * rng.standard_normal(),
                     "band_gap": 0.0, "crystal": cubic(list(el), a)})
    frame = pd.DataFrame(rows)
    energies = frame["formation_energy_per_atom"].to_numpy()
    top = np.zeros(n, dtype=bool)
    top[np.argsort(energies)[: n // 20]] = True  # top 5% here, so the test has a signal
    keys = (frame["reduced_formula"] + ":" + frame["spacegroup_number"].astype(str)).to_numpy()
    return bench.Pool(frame, featurize(list(frame["crystal"])), keys, top,
                      ReplayBackend.from_dataframe(frame))


def test_campaign_reveals_only_its_budget_and_greedy_beats_random():
    bench = load_benchmark()
    pool = synthetic_pool(bench)
    found = {name: bench.run_campaign(pool, name, seed=0, n_seed=10, batch=10, budget=60)
             for name in ("random", "greedy")}
    assert all(len(curve) == 60 for curve in found.values())
    assert all(np.all(np.diff(curve) >= 0) for curve in found.values())
    assert pool.oracle.queries == 120  # every label came through the oracle, no more
    assert found["greedy"][-1] > found["random"][-1]
    assert found["greedy"][-1] >= 0.6 * pool.top.sum()
    table = bench.summarise({k: v[None, :] for k, v in found.items()}, len(pool.frame),
                            int(pool.top.sum()))
    assert set(table.index) == {"random", "greedy"}
