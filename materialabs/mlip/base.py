"""The one interface every universal interatomic potential sits behind.

A :class:`Potential` gives an ASE calculator and two operations on a
:class:`~materialabs.crystals.Crystal`: a static ``energy`` and a ``relax`` (ASE's FIRE on a
``FrechetCellFilter``: positions and cell together, bounded steps, optionally a time
limit checked between steps). Engines (one file each: ``chgnet.py``, ``sevennet.py``) only
say how to build their calculator; relaxation and conversions are shared here, so every
engine relaxes the same way.

Energies are in eV (total) and eV/atom, on the potential's own scale (for the pretrained
models here, MPtrj's: raw VASP PBE/PBE+U energies). Formation energies on the Materials
Project's scale come from :mod:`materialabs.mlip.references`.

Conversions go Crystal -> pymatgen ``Structure`` (``Crystal.to_structure``) -> ASE
``Atoms`` (pymatgen's ``AseAtomsAdaptor``) and back; no converter of our own.
"""

from __future__ import annotations

import math
import os
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from materialabs.crystals import Crystal

if TYPE_CHECKING:
    from ase import Atoms
    from ase.calculators.calculator import Calculator

DEFAULT_FMAX = 0.05  # eV/Å, Matbench Discovery's and CHGNet's relaxation threshold
DEFAULT_MAX_STEPS = 500
# Torch threads for the potentials, overridable by MATERIALABS_MLIP_THREADS. One: with two
# on a loaded 2-core machine CHGNet's CPU time per call grew more than tenfold (OpenMP
# threads spinning while they wait for a core), and the services run side by side.
DEFAULT_THREADS = 1


@dataclass(frozen=True)
class Relaxation:
    """The outcome of one relaxation.

    ``converged``: the largest force (and stress, through the cell filter) fell below
    ``fmax`` within ``max_steps``. ``timed_out``: the time limit stopped it first. Either
    way ``crystal`` and the energies are those of the last step taken.
    """

    crystal: Crystal
    energy_eV: float
    initial_energy_eV: float
    steps: int
    converged: bool
    max_force_eV_per_A: float
    cpu_time_s: float
    wall_time_s: float
    timed_out: bool = False

    @property
    def energy_per_atom_eV(self) -> float:
        return self.energy_eV / self.crystal.num_sites

    def as_record(self) -> dict[str, Any]:
        return {
            "crystal": self.crystal.as_record(),
            "energy_eV": self.energy_eV,
            "energy_per_atom_eV": self.energy_per_atom_eV,
            "initial_energy_eV": self.initial_energy_eV,
            "steps": self.steps,
            "converged": self.converged,
            "timed_out": self.timed_out,
            "max_force_eV_per_A": self.max_force_eV_per_A,
            "cpu_time_s": self.cpu_time_s,
            "wall_time_s": self.wall_time_s,
        }


@runtime_checkable
class Potential(Protocol):
    """A universal interatomic potential behind ASE's calculator interface."""

    @property
    def name(self) -> str: ...

    def calculator(self) -> Calculator: ...

    def energy(self, crystal: Crystal) -> float: ...

    def relax(self, crystal: Crystal, *, fmax: float = DEFAULT_FMAX,
              max_steps: int = DEFAULT_MAX_STEPS,
              timeout_s: float | None = None) -> Relaxation: ...


def torch_threads() -> int:
    value = os.environ.get("MATERIALABS_MLIP_THREADS", "")
    return int(value) if value.strip().isdigit() and int(value) > 0 else DEFAULT_THREADS


def prepare_torch() -> None:
    """Cap torch's threads (a shared 2-core machine) before a model is loaded."""
    import torch

    threads = torch_threads()
    if torch.get_num_threads() > threads:
        torch.set_num_threads(threads)


def to_atoms(crystal: Crystal) -> Atoms:
    from pymatgen.io.ase import AseAtomsAdaptor

    return AseAtomsAdaptor.get_atoms(crystal.to_structure())


def from_atoms(atoms: Atoms) -> Crystal:
    from pymatgen.io.ase import AseAtomsAdaptor

    return Crystal.from_structure(AseAtomsAdaptor.get_structure(atoms))


class AsePotential:
    """Shared ``energy`` and ``relax`` for any engine that can build an ASE calculator.

    Subclasses set ``name`` and implement ``calculator()`` (cheap after the first call: the
    model is loaded once per process and shared).
    """

    name: str = ""

    def __init__(self) -> None:
        # The calculator (and its model) is shared by every caller in the process, and an
        # ASE calculator holds the state of its last call: one calculation at a time.
        self.lock = threading.Lock()

    def calculator(self) -> Calculator:  # pragma: no cover - every engine overrides it
        raise NotImplementedError

    def energy(self, crystal: Crystal) -> float:
        """Total energy (eV) of ``crystal`` as given (no relaxation)."""
        atoms = to_atoms(crystal)
        with self.lock:
            atoms.calc = self.calculator()
            return float(atoms.get_potential_energy())

    def relax(self, crystal: Crystal, *, fmax: float = DEFAULT_FMAX,
              max_steps: int = DEFAULT_MAX_STEPS,
              timeout_s: float | None = None) -> Relaxation:
        """FIRE on positions and cell (``FrechetCellFilter``) until the largest generalised
        force is below ``fmax`` eV/Å, ``max_steps`` steps are taken, or ``timeout_s``
        seconds have passed (checked after every step, so it overruns by one step at most).
        """
        if max_steps < 0:
            raise ValueError(f"max_steps: expected >= 0, got {max_steps}")
        with self.lock:
            return self._relax(crystal, fmax, max_steps, timeout_s)

    def _relax(self, crystal: Crystal, fmax: float, max_steps: int,
               timeout_s: float | None) -> Relaxation:
        from ase.filters import FrechetCellFilter
        from ase.optimize import FIRE

        started, cpu_started = time.monotonic(), time.process_time()
        atoms = to_atoms(crystal)
        atoms.calc = self.calculator()
        initial = float(atoms.get_potential_energy())
        cell_filter = FrechetCellFilter(atoms)
        optimizer = FIRE(cell_filter, logfile=None)
        steps, converged, timed_out = 0, False, False
        for converged in optimizer.irun(fmax=fmax, steps=max_steps):
            steps = optimizer.nsteps
            if converged:
                break
            if timeout_s is not None and time.monotonic() - started > timeout_s:
                timed_out = True
                break
        forces = cell_filter.get_forces()
        max_force = float(math.sqrt((forces ** 2).sum(axis=1).max()))
        return Relaxation(
            crystal=from_atoms(atoms),
            energy_eV=float(atoms.get_potential_energy()),
            initial_energy_eV=initial,
            steps=steps,
            converged=bool(converged),
            max_force_eV_per_A=max_force,
            cpu_time_s=time.process_time() - cpu_started,
            wall_time_s=time.monotonic() - started,
            timed_out=timed_out,
        )
