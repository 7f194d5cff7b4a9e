"""``mlip``: a universal interatomic potential standing in for DFT (relax, then energy).

Relaxes the candidate with the potential (FIRE, positions and cell, bounded steps) and
reports its total energy and its formation energy per atom **on the Materials Project's
scale** (``energy_scale``, the same label as the known phases' hull), using the method
docs/mlip.md chose by measurement (:mod:`materialabs.mlip.references`). No band gap: the
potentials predict none.

Runs in the caller's process, so the model is loaded once and reused by every job (a
subprocess per job would pay ~5 s of torch import and model load each time). The time
limit is checked after every optimiser step: a job stops within one step of its limit
(milliseconds to a fraction of a second for cells of tens of atoms) and is reported
``timeout``. The stored output is a JSON of the relaxed structure, the energies and the
relaxation's trace.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from materialabs.acquisition.stability import MP_SCALE
from materialabs.crystals import Crystal, structure_problems
from materialabs.dft.base import DftResult, DftStatus, failed
from materialabs.mlip import DEFAULT_POTENTIAL

if TYPE_CHECKING:
    from materialabs.mlip import Potential

DEFAULT_MAX_STEPS = 300


@dataclass(frozen=True)
class MlipSettings:
    potential: str = DEFAULT_POTENTIAL
    fmax_eV_per_A: float = 0.05
    max_steps: int = DEFAULT_MAX_STEPS
    reference_method: str = "fitted"  # docs/mlip.md: agrees better with MP's labels


class MlipBackend:
    """``DftBackend`` relaxing with a pretrained potential; formation energies on MP's
    scale."""

    name = "mlip"
    energy_scale = MP_SCALE

    def __init__(self, settings: MlipSettings | None = None) -> None:
        from materialabs.mlip import KNOWN_POTENTIALS
        from materialabs.mlip.references import METHODS

        self.settings = settings or MlipSettings()
        if self.settings.potential not in KNOWN_POTENTIALS:
            raise ValueError(f"mlip backend: potential {self.settings.potential!r}; expected "
                             f"one of {', '.join(KNOWN_POTENTIALS)}")
        if self.settings.reference_method not in METHODS:
            raise ValueError(f"mlip backend: reference method "
                             f"{self.settings.reference_method!r}; expected one of "
                             f"{', '.join(METHODS)}")

    @property
    def potential(self) -> Potential:
        """Loaded at the first job (seconds), not when a runner lists its backends."""
        from materialabs.mlip import load_potential

        return load_potential(self.settings.potential)

    def run(self, crystal: Crystal, timeout_s: float | None = None) -> DftResult:
        started = time.monotonic()
        try:
            return self._run(crystal, timeout_s, started)
        except Exception as error:  # noqa: BLE001 - a backend reports, never raises
            return failed(self.name, f"{self.settings.potential}: {type(error).__name__}: "
                          f"{error}", time.monotonic() - started)

    def _run(self, crystal: Crystal, timeout_s: float | None, started: float) -> DftResult:
        from materialabs.mlip.references import load_table

        problems = structure_problems(crystal)
        if problems:
            return failed(self.name, "; ".join(f"{f}: {m}" for f, m in problems))
        table = load_table(self.settings.potential)
        remaining = None if timeout_s is None else timeout_s - (time.monotonic() - started)
        if remaining is not None and remaining <= 0:
            return failed(self.name, f"time limit of {timeout_s:g} s reached before the "
                          "relaxation started", time.monotonic() - started, DftStatus.TIMEOUT)
        relaxed = self.potential.relax(crystal, fmax=self.settings.fmax_eV_per_A,
                                       max_steps=self.settings.max_steps, timeout_s=remaining)
        wall = time.monotonic() - started
        if relaxed.timed_out:
            return failed(self.name, f"stopped at its time limit of {timeout_s:g} s after "
                          f"{relaxed.steps} relaxation steps", wall, DftStatus.TIMEOUT,
                          output=self._output(crystal, relaxed.as_record(), None))
        formation = table.formation_energy_per_atom(relaxed.crystal, relaxed.energy_eV,
                                                    self.settings.reference_method)
        state = ("converged" if relaxed.converged else
                 f"not converged (max force {relaxed.max_force_eV_per_A:.3f} eV/Å)")
        return DftResult(
            status=DftStatus.OK,
            backend=self.name,
            total_energy_eV=relaxed.energy_eV,
            formation_energy_per_atom_eV=formation,
            band_gap_eV=None,
            wall_time_s=wall,
            output=self._output(crystal, relaxed.as_record(), formation),
            message=f"{self.settings.potential}, {relaxed.steps} FIRE steps, {state}; "
                    f"E_f on {self.energy_scale} ({self.settings.reference_method} "
                    "references)",
            num_atoms=crystal.num_sites,
            energy_scale=self.energy_scale,
        )

    def _output(self, crystal: Crystal, relaxation: dict[str, Any],
                formation: float | None) -> bytes:
        document = {
            "backend": self.name,
            "potential": self.settings.potential,
            "settings": {"fmax_eV_per_A": self.settings.fmax_eV_per_A,
                         "max_steps": self.settings.max_steps,
                         "reference_method": self.settings.reference_method},
            "energy_scale": self.energy_scale,
            "input_crystal": crystal.as_record(),
            "relaxed_crystal": relaxation.pop("crystal"),
            "relaxation": relaxation,
            "total_energy_eV": relaxation["energy_eV"],
            "formation_energy_per_atom_eV": formation,
        }
        return json.dumps(document, sort_keys=True).encode()
