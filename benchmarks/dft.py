"""GPAW wall time per job for a few small cells, on this machine's cores.

Each job runs as the DFT runner runs it: one subprocess per job (``GpawBackend``), one
BLAS thread, elemental references computed once beforehand (reported separately: that cost
is paid once per settings and then cached). The baseline, measured in the same run on the
same cells, is the test settings (``GpawSettings.quick()``: 250 eV, 1.5 k-points/Å⁻¹); the
ratio says what the production settings (400 eV, 3.0 k-points/Å⁻¹) cost on top.

    python benchmarks/dft.py               # both settings, 5 cells
    python benchmarks/dft.py --repeats 3   # median of 3 runs per cell
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from ase.build import bulk

from materialabs.crystals import Crystal
from materialabs.dft.base import DftResult
from materialabs.dft.gpaw import ElementalReferences, GpawBackend, GpawSettings

CELLS = {
    "Si (diamond, 2 atoms)": lambda: bulk("Si", "diamond", a=5.43),
    "Al (fcc, 1 atom)": lambda: bulk("Al", "fcc", a=4.05),
    "NaCl (rocksalt, 2 atoms)": lambda: bulk("NaCl", "rocksalt", a=5.64),
    "MgO (rocksalt, 2 atoms)": lambda: bulk("MgO", "rocksalt", a=4.21),
    "GaAs (zincblende, 2 atoms)": lambda: bulk("GaAs", "zincblende", a=5.65),
}


def crystal_of(atoms) -> Crystal:
    return Crystal.from_arrays(atoms.cell.array, atoms.get_chemical_symbols(),
                               atoms.get_scaled_positions())


def run_cells(backend: GpawBackend, repeats: int) -> dict[str, DftResult]:
    """Median-wall-time result per cell (the references are computed first, untimed)."""
    elements = sorted({s for make in CELLS.values() for s in make().get_chemical_symbols()})
    t0 = time.monotonic()
    for element in elements:
        backend.references.energy_per_atom(element)
    print(f"  references ({', '.join(elements)}): {time.monotonic() - t0:.1f} s, once per "
          f"settings")
    results = {}
    for name, make in CELLS.items():
        runs = [backend.run(crystal_of(make()), timeout_s=600) for _ in range(repeats)]
        results[name] = sorted(runs, key=lambda r: r.wall_time_s)[len(runs) // 2]
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=1, help="runs per cell (median)")
    args = parser.parse_args(argv)
    print(f"{os.cpu_count()} cores visible; one job at a time, 1 thread per job")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, settings in (("quick", GpawSettings.quick()), ("default", GpawSettings())):
            print(f"{label}: {settings.ecut_eV:g} eV, {settings.kpoint_density:g} k-points/Å⁻¹, "
                  f"{settings.xc}")
            references = ElementalReferences(settings, Path(tmp) / label)
            results[label] = run_cells(GpawBackend(settings, references=references),
                                       args.repeats)
    print(f"{'cell':28s} {'quick s':>8s} {'default s':>10s} {'ratio':>6s} "
          f"{'E_f eV/atom':>12s} {'gap eV':>7s}")
    for name in CELLS:
        quick, full = results["quick"][name], results["default"][name]
        if not (quick.ok and full.ok):
            print(f"{name:28s} quick {quick.status.value}, default {full.status.value}: "
                  f"{full.message or quick.message}")
            continue
        print(f"{name:28s} {quick.wall_time_s:8.1f} {full.wall_time_s:10.1f} "
              f"{full.wall_time_s / quick.wall_time_s:6.1f} "
              f"{full.formation_energy_per_atom_eV:12.3f} {full.band_gap_eV:7.2f}")
    print("E_f and gap at default settings; PBE, spin-paired, unrelaxed experimental cells")
    return 0


if __name__ == "__main__":
    sys.exit(main())
