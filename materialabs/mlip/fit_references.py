"""Fit a potential's per-element reference energies on the shared MP set; write its table.

    python -m materialabs.mlip.fit_references                      # every known potential
    python -m materialabs.mlip.fit_references --potential chgnet

For each potential, writes ``materialabs/mlip/references/<potential>.json`` with

* ``fitted_mu_eV_per_atom``: mu_i minimising sum over structures of
  (E_pot/N - sum_i x_i mu_i - E_f,MP)^2, x_i the atomic fractions, E_pot the potential's
  static energy of MP's relaxed structure. The fit structures are a seeded sample of the
  shared set (SOURCES.md §1) with at most ``--fit-max-sites`` sites that covers every
  element at least ``--min-per-element`` times where the set allows, and shares no
  reduced formula with the evaluation pool of ``benchmarks/mlip.py`` (:func:`evaluation_pool`);
* ``elemental_mu_eV_per_atom``: the energy per atom of each element's MP ground state
  (lowest E_f in the set, then fewest sites, at most 32) relaxed by the potential.

Same data, seed and potential give the same table (CPU, deterministic inference).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from typing import Any

import numpy as np
import pandas as pd

from materialabs.crystals import Crystal

EVAL_SEED = 0
EVAL_MAX_SITES = 20
EVAL_POOL = 400  # benchmarks/mlip.py draws its samples from the first rows of this pool
ELEMENT_MAX_SITES = 32


def evaluation_pool(frame: pd.DataFrame, max_sites: int = EVAL_MAX_SITES,
                    seed: int = EVAL_SEED, size: int = EVAL_POOL) -> pd.DataFrame:
    """The benchmark's evaluation structures, in a fixed seeded order (compounds only:
    an element's formation energy is 0 by construction)."""
    compounds = frame[(frame["nsites"] <= max_sites)
                      & frame["crystal"].map(lambda c: len(set(c.species)) > 1)]
    return compounds.sample(n=min(size, len(compounds)), random_state=seed)


def fit_sample(frame: pd.DataFrame, *, size: int, max_sites: int, min_per_element: int,
               seed: int) -> pd.DataFrame:
    """Seeded fit structures: first ``min_per_element`` per element, then random fill."""
    held = set(evaluation_pool(frame)["reduced_formula"])
    candidates = frame[(frame["nsites"] <= max_sites) & ~frame["reduced_formula"].isin(held)]
    candidates = candidates.sample(frac=1.0, random_state=seed)
    chosen: list[Any] = []
    seen: set[Any] = set()
    counts: Counter[str] = Counter()
    for index, crystal in zip(candidates.index, candidates["crystal"], strict=True):
        elements = set(crystal.species)
        if any(counts[el] < min_per_element for el in elements):
            chosen.append(index)
            seen.add(index)
            counts.update(elements)
    for index in candidates.index:
        if len(chosen) >= size:
            break
        if index not in seen:
            chosen.append(index)
            seen.add(index)
    return candidates.loc[chosen]


def elemental_ground_states(frame: pd.DataFrame) -> dict[str, tuple[str, Crystal]]:
    """element -> (material_id, crystal) of its lowest-E_f elemental structure."""
    elemental = frame[frame["crystal"].map(lambda c: len(set(c.species)) == 1)
                      & (frame["nsites"] <= ELEMENT_MAX_SITES)]
    elemental = elemental.assign(element=elemental["crystal"].map(lambda c: c.species[0]))
    ordered = elemental.sort_values(["element", "formation_energy_per_atom", "nsites",
                                     "material_id"])
    first = ordered.groupby("element", sort=True).head(1)
    return {row.element: (row.material_id, row.crystal) for row in first.itertuples()}


def least_squares_mu(crystals: list[Crystal], energies_per_atom: np.ndarray,
                     labels: np.ndarray) -> tuple[dict[str, float], np.ndarray]:
    """mu_i (eV/atom) and the per-structure residuals (eV/atom) of the fit."""
    elements = sorted({el for c in crystals for el in c.species})
    column = {el: k for k, el in enumerate(elements)}
    fractions = np.zeros((len(crystals), len(elements)))
    for row, crystal in enumerate(crystals):
        for el, n in Counter(crystal.species).items():
            fractions[row, column[el]] = n / crystal.num_sites
    target = energies_per_atom - labels
    mu, *_ = np.linalg.lstsq(fractions, target, rcond=None)
    residuals = fractions @ mu - target
    return {el: float(mu[column[el]]) for el in elements}, residuals


def fit(potential_name: str, frame: pd.DataFrame, *, size: int, max_sites: int,
        min_per_element: int, seed: int, element_steps: int = 300,
        progress: bool = True) -> dict[str, Any]:
    from materialabs.mlip import load_potential

    potential = load_potential(potential_name)
    sample = fit_sample(frame, size=size, max_sites=max_sites,
                        min_per_element=min_per_element, seed=seed)
    crystals = list(sample["crystal"])
    started = time.process_time()
    energies, kept, skipped = [], [], []
    for k, crystal in enumerate(crystals):
        try:
            energies.append(potential.energy(crystal) / crystal.num_sites)
            kept.append(k)
        except Exception as error:  # noqa: BLE001 - an element the model does not know
            skipped.append(f"{sample['material_id'].iloc[k]}: {error}"[:200])
        if progress and (k + 1) % 100 == 0:
            print(f"  {potential_name}: {k + 1}/{len(crystals)} static energies",
                  file=sys.stderr)
    static_cpu = time.process_time() - started
    labels = sample["formation_energy_per_atom"].to_numpy()[kept]
    mu, residuals = least_squares_mu([crystals[k] for k in kept], np.asarray(energies),
                                     labels)
    counts = Counter(el for k in kept for el in set(crystals[k].species))
    elemental: dict[str, float] = {}
    element_ids: dict[str, str] = {}
    started = time.process_time()
    for element, (material_id, crystal) in elemental_ground_states(frame).items():
        try:
            relaxed = potential.relax(crystal, max_steps=element_steps)
        except Exception as error:  # noqa: BLE001
            skipped.append(f"{material_id} ({element}): {error}"[:200])
            continue
        elemental[element] = relaxed.energy_per_atom_eV
        element_ids[element] = material_id
    return {
        "potential": potential_name,
        "fitted_mu_eV_per_atom": mu,
        "elemental_mu_eV_per_atom": elemental,
        "meta": {
            "command": f"python -m materialabs.mlip.fit_references --potential "
                       f"{potential_name} --fit-size {size} --fit-max-sites {max_sites} "
                       f"--min-per-element {min_per_element} --seed {seed} "
                       f"--element-steps {element_steps}",
            "data": "kdmsit_mp_cgcnn/mp_cgcnn_shared.csv.gz (SOURCES.md §1)",
            "fit_structures": len(kept),
            "fit_mae_eV_per_atom": float(np.mean(np.abs(residuals))),
            "fit_rmse_eV_per_atom": float(np.sqrt(np.mean(residuals ** 2))),
            "structures_per_element": dict(sorted(counts.items())),
            "elemental_material_ids": element_ids,
            "skipped": skipped,
            "static_cpu_s": static_cpu,
            "elemental_relax_cpu_s": time.process_time() - started,
            "held_out": f"reduced formulas of benchmarks/mlip.py's evaluation pool "
                        f"({EVAL_POOL} compounds, <= {EVAL_MAX_SITES} sites, seed {EVAL_SEED})",
        },
    }


def main(argv: list[str] | None = None) -> int:
    from materialabs.datasets import load_mp_formation
    from materialabs.mlip import KNOWN_POTENTIALS
    from materialabs.mlip.references import table_path

    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--potential", action="append", choices=KNOWN_POTENTIALS)
    parser.add_argument("--fit-size", type=int, default=800)
    parser.add_argument("--fit-max-sites", type=int, default=12)
    parser.add_argument("--min-per-element", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--element-steps", type=int, default=300,
                        help="FIRE steps at most per elemental reference (molecular "
                             "crystals such as O2 and N2 take many)")
    args = parser.parse_args(argv)
    frame = load_mp_formation()
    for name in args.potential or KNOWN_POTENTIALS:
        table = fit(name, frame, size=args.fit_size, max_sites=args.fit_max_sites,
                    min_per_element=args.min_per_element, seed=args.seed,
                    element_steps=args.element_steps)
        path = table_path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(table, indent=1, sort_keys=True) + "\n")
        meta = table["meta"]
        print(f"{name}: {meta['fit_structures']} structures, fit MAE "
              f"{meta['fit_mae_eV_per_atom']:.3f} eV/atom, {len(table['elemental_mu_eV_per_atom'])}"
              f" elemental references -> {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
