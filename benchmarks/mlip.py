"""Universal interatomic potentials on the shared MP set: accuracy on MP's scale vs CPU cost.

For each potential (CHGNet 0.3.0, SevenNet-0, SevenNet-l3i5), over a fixed seeded sample
of compounds of the shared Materials Project set (SOURCES.md §1; the first ``--n`` of
``materialabs.mlip.fit_references.evaluation_pool``: at most 20 sites, seed 0, reduced
formulas disjoint from the reference fit), prints:

* formation-energy MAE (eV/atom) against MP's labels, the relaxed structure's energy put
  on MP's scale two ways (materialabs/mlip/references.py): ``fitted`` per-element
  references, and ``mp2020`` (pymatgen's MP2020 corrections, the potential's relaxed
  elements as references; only compounds whose elements all have an elemental structure
  in the shared set, so ``fitted`` is also given on that same subset);
* the MAE of the static energy at MP's geometry (fitted references), for comparison;
* CPU seconds (this process, all threads; torch at 2 threads) per static energy and per
  relaxation (FIRE + FrechetCellFilter, fmax 0.05 eV/Å, at most ``--max-steps``), mean
  FIRE steps, converged share, and each potential's CPU ratio to the fastest.

usage:
  python benchmarks/mlip.py                       # 100 compounds, all three (minutes)
  python benchmarks/mlip.py --n 400 --potential chgnet
  python benchmarks/mlip.py --json results.json

The reference tables come from python -m materialabs.mlip.fit_references; a potential
without one gets its CPU figures and nan MAEs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from materialabs.datasets import load_mp_formation  # noqa: E402
from materialabs.mlip import KNOWN_POTENTIALS, load_potential  # noqa: E402
from materialabs.mlip.fit_references import EVAL_POOL, evaluation_pool  # noqa: E402
from materialabs.mlip.references import MissingReference, load_table  # noqa: E402


def measure(name: str, crystals: list, labels: np.ndarray, max_steps: int) -> dict:
    potential = load_potential(name)
    try:
        table = load_table(name)
    except FileNotFoundError:  # costs are still measured; MAEs come out as nan
        table = None
    potential.energy(crystals[0])  # load the model outside the timings
    static_cpu, relax_cpu, steps, converged = [], [], [], []
    static_fitted, fitted, mp2020 = [], [], []
    for crystal in crystals:
        started = time.process_time()
        energy = potential.energy(crystal)
        static_cpu.append(time.process_time() - started)
        static_fitted.append(np.nan if table is None else
                             table.formation_energy_per_atom(crystal, energy, "fitted"))
        started = time.process_time()
        relaxed = potential.relax(crystal, max_steps=max_steps)
        relax_cpu.append(time.process_time() - started)
        steps.append(relaxed.steps)
        converged.append(relaxed.converged)
        if table is None:
            fitted.append(np.nan)
            mp2020.append(np.nan)
            continue
        fitted.append(table.formation_energy_per_atom(relaxed.crystal, relaxed.energy_eV,
                                                      "fitted"))
        try:
            mp2020.append(table.formation_energy_per_atom(relaxed.crystal, relaxed.energy_eV,
                                                          "mp2020"))
        except (MissingReference, ValueError):
            mp2020.append(np.nan)
    fitted_a, mp2020_a = np.asarray(fitted), np.asarray(mp2020)
    both = ~np.isnan(mp2020_a)
    if not both.any():
        both = ~np.isnan(fitted_a)
    return {
        "potential": name,
        "n": len(crystals),
        "mae_fitted": float(np.mean(np.abs(fitted_a - labels))),
        "mae_static_fitted": float(np.mean(np.abs(np.asarray(static_fitted) - labels))),
        "n_mp2020": int(both.sum()),
        "mae_mp2020": float(np.mean(np.abs(mp2020_a[both] - labels[both]))),
        "mae_fitted_same_subset": float(np.mean(np.abs(fitted_a[both] - labels[both]))),
        "cpu_static_s": float(np.mean(static_cpu)),
        "cpu_relax_s": float(np.mean(relax_cpu)),
        "mean_steps": float(np.mean(steps)),
        "converged": float(np.mean(converged)),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100,
                        help=f"compounds from the evaluation pool (at most {EVAL_POOL})")
    parser.add_argument("--potential", action="append", choices=KNOWN_POTENTIALS)
    parser.add_argument("--max-steps", type=int, default=200)
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    if not 1 <= args.n <= EVAL_POOL:
        parser.error(f"--n {args.n}: expected 1..{EVAL_POOL} (the fit holds out that pool)")
    warnings.simplefilter("ignore")
    sample = evaluation_pool(load_mp_formation()).head(args.n)
    crystals = list(sample["crystal"])
    labels = sample["formation_energy_per_atom"].to_numpy()
    print(f"{len(crystals)} MP compounds (<= 20 sites, mean {np.mean(sample['nsites']):.1f}), "
          f"max {args.max_steps} FIRE steps, torch threads 2; load average before: "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    rows = []
    for name in args.potential or KNOWN_POTENTIALS:
        rows.append(measure(name, crystals, labels, args.max_steps))
        print(f"  {name}: {json.dumps(rows[-1])}", flush=True)  # each as it comes
    fastest = min(r["cpu_relax_s"] for r in rows)
    fastest_static = min(r["cpu_static_s"] for r in rows)
    header = (f"{'potential':<14} {'MAE fitted':>10} {'MAE static':>10} {'MAE mp2020':>10} "
              f"{'fitted same':>11} {'n mp2020':>8} {'CPU static':>10} {'CPU relax':>9} "
              f"{'steps':>6} {'conv':>5} {'relax x':>7} {'static x':>8}")
    print("MAE in eV/atom vs MP labels (relaxed unless 'static'); CPU in s per structure")
    print(header)
    for r in rows:
        print(f"{r['potential']:<14} {r['mae_fitted']:>10.3f} {r['mae_static_fitted']:>10.3f} "
              f"{r['mae_mp2020']:>10.3f} {r['mae_fitted_same_subset']:>11.3f} "
              f"{r['n_mp2020']:>8d} {r['cpu_static_s']:>10.3f} {r['cpu_relax_s']:>9.2f} "
              f"{r['mean_steps']:>6.1f} {r['converged']:>5.0%} "
              f"{r['cpu_relax_s'] / fastest:>7.2f} {r['cpu_static_s'] / fastest_static:>8.2f}")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
