"""One GPAW calculation, run as ``python -m materialabs.dft.gpaw_worker JOBDIR``.

Reads ``JOBDIR/job.json``, writes GPAW's log to ``JOBDIR/gpaw.txt`` and the parsed result
to ``JOBDIR/result.json``. Started and, at its time limit, killed by
:func:`materialabs.dft.gpaw.run_worker`; it imports GPAW, the caller never does.

Job kinds:
  ``crystal``    a single point of the given crystal, or a bounded relaxation (positions, or
                 cell + positions) and the energy at its end;
  ``reference``  the elemental reference phase of one element (see :func:`reference_atoms`).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

# Bond lengths (Å) of the diatomic molecules used as references for elements whose standard
# state is a gas or a molecular crystal (halogens): a molecular crystal's cohesion is a few
# tens of meV/atom, far below the settings' own error.
DIATOMIC_BOND_A = {"H": 0.74, "N": 1.10, "O": 1.21, "F": 1.42, "Cl": 1.99, "Br": 2.28,
                   "I": 2.67}
TRIPLET_DIMERS = {"O"}  # O2's ground state is a spin triplet
NOBLE_GASES = {"He", "Ne", "Ar", "Kr", "Xe", "Rn"}
DEFAULT_RELAX_MAX_SITES = 8  # GpawSettings.relax_max_sites


def crystal_atoms(record: dict[str, Any]) -> Any:
    from ase import Atoms

    lattice = np.asarray(record["lattice_angstrom"], dtype=float).reshape(3, 3)
    frac = np.asarray(record["frac_coords"], dtype=float).reshape(-1, 3)
    return Atoms(symbols=record["species"], scaled_positions=frac, cell=lattice, pbc=True)


def reference_atoms(symbol: str, box_A: float) -> tuple[Any, str]:
    """The structure standing for an element's standard state, and a word saying which.

    Diatomic gases and halogens: a dimer in a cubic box. Noble gases: one atom in a box.
    Elements with an ASE reference crystal: that crystal (primitive cell, experimental
    lattice constant). Others (B, P, S, Mn, Ga, ...: large or low-symmetry cells): fcc with
    nearest neighbours at twice the covalent radius, only a starting guess: the caller
    relaxes its volume (:func:`fcc_equilibrium`), and the result records the approximation.
    """
    from ase import Atoms
    from ase.build import bulk
    from ase.data import atomic_numbers, covalent_radii

    if symbol in DIATOMIC_BOND_A:
        d = DIATOMIC_BOND_A[symbol]
        centre = box_A / 2
        atoms = Atoms([symbol, symbol], positions=[[centre, centre, centre - d / 2],
                                                   [centre, centre, centre + d / 2]],
                      cell=[box_A] * 3, pbc=True)
        return atoms, "dimer"
    if symbol in NOBLE_GASES:
        return Atoms([symbol], positions=[[box_A / 2] * 3], cell=[box_A] * 3, pbc=True), "atom"
    try:
        return bulk(symbol), "bulk"
    except (ValueError, RuntimeError, KeyError):
        nn = 2 * covalent_radii[atomic_numbers[symbol]]
        return bulk(symbol, "fcc", a=nn * np.sqrt(2)), "approximate-fcc"


def fcc_equilibrium(atoms: Any, settings: dict[str, Any], workdir: Path,
                    spin_polarized: bool) -> tuple[float, float]:
    """Energy per atom and lattice constant (Å) of an fcc cell at its equilibrium volume:
    energies at six lattice constants (0.94-1.24 of the guess), a cubic fit in the volume,
    its minimum on that range. A guessed volume alone can be off by an eV per atom."""
    a_guess = float(atoms.cell.cellpar()[0]) * np.sqrt(2)  # primitive cell length -> cubic a
    scales = np.linspace(0.94, 1.24, 6)
    volumes, energies = [], []
    for scale in scales:
        trial = atoms.copy()
        trial.set_cell(atoms.cell.array * scale, scale_atoms=True)
        trial.calc = make_calculator(settings, workdir / "gpaw.txt", molecule=False,
                                     spin_polarized=spin_polarized)
        energies.append(trial.get_potential_energy() / len(trial))
        volumes.append(trial.get_volume() / len(trial))
    fit = np.polyfit(volumes, energies, 3)
    grid = np.linspace(min(volumes), max(volumes), 400)
    best = int(np.argmin(np.polyval(fit, grid)))
    energy = min(float(np.polyval(fit, grid[best])), float(min(energies)))
    return energy, float(a_guess * (grid[best] / volumes[0]) ** (1 / 3) * scales[0])


def make_calculator(settings: dict[str, Any], txt: Path, *, molecule: bool,
                    spin_polarized: bool) -> Any:
    from gpaw import GPAW, PW

    kpts: Any = (1, 1, 1) if molecule else {"density": settings["kpoint_density"],
                                             "gamma": True}
    if not molecule and settings.get("kpts_size"):  # a mesh pinned for a cell relaxation
        kpts = {"size": list(settings["kpts_size"]), "gamma": True}
    return GPAW(
        mode=PW(settings["ecut_eV"]),
        xc=settings["xc"],
        kpts=kpts,
        occupations={"name": "fermi-dirac", "width": settings["smearing_eV"]},
        spinpol=spin_polarized,
        txt=str(txt),
    )


def band_gap_eV(calc: Any) -> float:
    """Gap from the k-mesh eigenvalues; 0 when any band crosses the Fermi level (metal)."""
    fermi = float(np.max(np.atleast_1d(calc.get_fermi_level())))
    nspins = calc.get_number_of_spins()
    nkpts = len(calc.get_ibz_k_points())
    eigs = np.array([[calc.get_eigenvalues(kpt=k, spin=s) for k in range(nkpts)]
                     for s in range(nspins)])  # (spin, k, band)
    below = eigs[eigs <= fermi]
    above = eigs[eigs > fermi]
    if below.size == 0 or above.size == 0:
        return 0.0
    per_band_min = eigs.min(axis=1)
    per_band_max = eigs.max(axis=1)
    if np.any((per_band_min < fermi) & (per_band_max > fermi)):
        return 0.0
    return float(max(above.min() - below.max(), 0.0))


def scf_iterations(calc: Any) -> int | None:
    for name in ("get_number_of_iterations",):
        getter = getattr(calc, name, None)
        if getter is not None:
            try:
                return int(getter())
            except Exception:  # noqa: BLE001 - only a statistic
                return None
    return None


def run_crystal(job: dict[str, Any], workdir: Path) -> dict[str, Any]:
    settings = job["settings"]
    atoms = crystal_atoms(job["crystal"])
    spin = bool(settings["spin_polarized"])
    if spin:
        atoms.set_initial_magnetic_moments([1.0] * len(atoms))
    atoms.calc = make_calculator(settings, workdir / "gpaw.txt", molecule=False,
                                 spin_polarized=spin)
    relax_steps = int(settings.get("relax_steps", 0))
    max_sites = int(settings.get("relax_max_sites", DEFAULT_RELAX_MAX_SITES))
    relaxation: dict[str, Any] | None = None
    note = ""
    if relax_steps > 0 and len(atoms) > max_sites:
        # A relaxation multiplies a single point's cost by its steps; past a few sites that
        # is minutes to hours on this machine's cores, so the job stays a single point.
        note = (f"not relaxed: {len(atoms)} sites is over the relaxation cap of {max_sites}; "
                "single point on the given cell")
    elif relax_steps > 0:
        if settings.get("relax_cell"):
            # The mesh from the k-point density of the *input* cell, kept for every step: a
            # mesh re-chosen as the cell changes makes the energy jump between steps.
            from ase.calculators.calculator import kpts2sizeandoffsets

            size, _ = kpts2sizeandoffsets(density=settings["kpoint_density"], gamma=True,
                                          atoms=atoms)
            settings = dict(settings, kpts_size=[int(n) for n in size])
            atoms.calc = make_calculator(settings, workdir / "gpaw.txt", molecule=False,
                                         spin_polarized=spin)
        relaxation = relax(atoms, settings, workdir, relax_steps)
        relaxation["kpts_size"] = settings.get("kpts_size")
    energy = float(atoms.get_potential_energy())
    result: dict[str, Any] = {
        "energy_eV": energy,
        "band_gap_eV": band_gap_eV(atoms.calc),
        "scf_iterations": scf_iterations(atoms.calc),
        "num_atoms": len(atoms),
        "relax_steps": relax_steps,
        "note": note,
    }
    if relaxation is not None:
        result["relaxation"] = relaxation
        result["relaxed_positions_A"] = atoms.get_positions().tolist()
        result["relaxed_crystal"] = {"lattice_angstrom": atoms.cell.array.tolist(),
                                     "species": atoms.get_chemical_symbols(),
                                     "frac_coords": atoms.get_scaled_positions().tolist()}
    return result


def relax(atoms: Any, settings: dict[str, Any], workdir: Path, steps: int) -> dict[str, Any]:
    """BFGS on the positions, and on the cell too when ``relax_cell`` (ASE's
    FrechetCellFilter: the cell's degrees of freedom in log-strain, driven by GPAW's
    plane-wave stress with its Pulay correction, see :func:`pulay_dedepsilon`). At most
    ``steps`` steps; the caller's time limit bounds the rest."""
    from ase.filters import FrechetCellFilter
    from ase.optimize import BFGS
    from ase.units import GPa

    cell = bool(settings.get("relax_cell", False))
    initial_energy = float(atoms.get_potential_energy())
    initial_volume = float(atoms.get_volume())
    start_cell, start_positions = atoms.cell.array.copy(), atoms.get_positions()
    calc = atoms.calc
    summary: dict[str, Any] = {"cell_relaxed": cell}
    if cell:
        dedepsilon = pulay_dedepsilon(atoms, settings, workdir)
        summary["pulay_stress_GPa"] = dedepsilon / initial_volume / GPa
        atoms.calc = PulayCorrected(calc, dedepsilon)
    target = FrechetCellFilter(atoms) if cell else atoms
    optimizer = BFGS(target, logfile=str(workdir / "relax.log"))
    converged = bool(optimizer.run(fmax=settings["relax_fmax_eV_per_A"], steps=steps))
    forces = atoms.get_forces()
    if cell:
        summary["stress_GPa"] = (atoms.get_stress(voigt=True) / GPa).tolist()
        atoms.calc = calc
    final_energy = float(atoms.get_potential_energy())
    summary["kept_input"] = final_energy > initial_energy + 1e-3 * len(atoms)
    if summary["kept_input"]:
        # BFGS follows forces and stress, not the energy: if they disagree with it, the end
        # point can lie higher than the start. Then the input geometry stands.
        atoms.set_cell(start_cell, scale_atoms=False)
        atoms.set_positions(start_positions)
    summary.update({
        "steps": int(optimizer.nsteps),
        "converged": converged,
        "initial_energy_eV": initial_energy,
        "initial_volume_A3": initial_volume,
        "final_volume_A3": float(atoms.get_volume()),
        "max_force_eV_per_A": float(np.linalg.norm(forces, axis=1).max()),
    })
    return summary


PULAY_SCALE = 0.01  # ± lattice scaling of the fixed-cutoff pressure's finite difference


def pulay_dedepsilon(atoms: Any, settings: dict[str, Any], workdir: Path) -> float:
    """The Pulay term of the stress at a fixed cutoff, times the volume (eV).

    GPAW's plane-wave stress is the strain derivative at a fixed *set* of plane waves; the
    energies here are at a fixed *cutoff*. The two differ by an isotropic term, about
    (2/3) E_cut (dE/dE_cut) / V (what GPAW's old ``PW(dedecut=...)`` added; its new code
    leaves it out). At quick settings (250 eV) oxygen's and fluorine's energies still fall
    by ~0.15 eV per eV of cutoff: MgO's analytic stress at MP's cell is +213 GPa where the
    fixed-cutoff energy is flat (-0.4 GPa), and an uncorrected relaxation collapses the
    cell while the energy rises by eV. A linear dE/dE_cut estimate misses by 10-15 %
    (tens of GPa), so the term is measured here: the fixed-cutoff pressure from the
    energies of the cell scaled by ±1 % (two single points), minus the analytic one. It is
    held as that constant times 1/V over the relaxation, as GPAW's old code did."""
    calc = atoms.calc
    raw = np.asarray(calc.get_stress(atoms), dtype=float)
    raw_mean = float(np.trace(raw) / 3 if raw.shape == (3, 3) else raw[:3].mean())
    energies, volumes = [], []
    for factor in (1 - PULAY_SCALE, 1 + PULAY_SCALE):
        trial = atoms.copy()
        trial.set_cell(atoms.cell.array * factor, scale_atoms=True)
        trial.calc = make_calculator(settings, workdir / "gpaw-pulay.txt", molecule=False,
                                     spin_polarized=bool(settings["spin_polarized"]))
        energies.append(float(trial.get_potential_energy()))
        volumes.append(float(trial.get_volume()))
    fixed_cutoff_mean = (energies[1] - energies[0]) / (volumes[1] - volumes[0])  # dE/dV
    return (fixed_cutoff_mean - raw_mean) * float(atoms.get_volume())


class PulayCorrected:
    """GPAW's calculator with the fixed-cutoff Pulay stress added (see pulay_dedepsilon);
    everything else is GPAW's own."""

    def __init__(self, calc: Any, dedepsilon_eV: float) -> None:
        self.calc = calc
        self.dedepsilon_eV = dedepsilon_eV

    def get_stress(self, atoms: Any = None) -> Any:
        stress = np.array(self.calc.get_stress(atoms), dtype=float)
        volume = (atoms if atoms is not None else self.calc.atoms).get_volume()
        if stress.shape == (3, 3):
            stress[np.diag_indices(3)] += self.dedepsilon_eV / volume
        else:
            stress[:3] += self.dedepsilon_eV / volume  # Voigt order: xx yy zz yz xz xy
        return stress

    def __getattr__(self, name: str) -> Any:
        return getattr(self.calc, name)


def run_reference(job: dict[str, Any], workdir: Path) -> dict[str, Any]:
    settings = job["settings"]
    symbol = job["element"]
    atoms, kind = reference_atoms(symbol, settings["molecule_box_A"])
    molecule = kind in ("dimer", "atom")
    spin = bool(settings["spin_polarized"]) or symbol in TRIPLET_DIMERS
    if spin:
        atoms.set_initial_magnetic_moments([1.0] * len(atoms))
    if kind == "approximate-fcc":
        per_atom, lattice_constant = fcc_equilibrium(atoms, settings, workdir, spin)
        return {"element": symbol, "reference_kind": "fcc at its fitted equilibrium volume",
                "energy_eV": per_atom * len(atoms), "energy_per_atom_eV": per_atom,
                "num_atoms": len(atoms), "fcc_lattice_constant_A": lattice_constant}
    atoms.calc = make_calculator(settings, workdir / "gpaw.txt", molecule=molecule,
                                 spin_polarized=spin)
    energy = float(atoms.get_potential_energy())
    return {
        "element": symbol,
        "reference_kind": kind,
        "energy_eV": energy,
        "energy_per_atom_eV": energy / len(atoms),
        "num_atoms": len(atoms),
        "cell_A": atoms.cell.array.tolist(),
    }


def main(argv: list[str]) -> int:
    workdir = Path(argv[1])
    job = json.loads((workdir / "job.json").read_text())
    import gpaw

    runner = {"crystal": run_crystal, "reference": run_reference}[job["kind"]]
    result = runner(job, workdir)
    result["gpaw_version"] = gpaw.__version__
    tmp = workdir / "result.json.tmp"
    tmp.write_text(json.dumps(result))
    tmp.replace(workdir / "result.json")  # a half-written result never looks finished
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
