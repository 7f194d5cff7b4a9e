"""Universal interatomic potentials behind one interface (ASE's calculator idea).

    from materialabs.mlip import load_potential
    potential = load_potential("chgnet")
    relaxed = potential.relax(crystal, fmax=0.05, max_steps=200)
    relaxed.crystal, relaxed.energy_eV, relaxed.converged

Known names: ``chgnet`` (CHGNet 0.3.0), ``sevennet-0`` and ``sevennet-l3i5``. Weights ship
in the ``chgnet`` and ``sevenn`` wheels; nothing is downloaded. Each model is loaded once
per process. docs/mlip.md says which is the default and why (measured by
``benchmarks/mlip.py``).
"""

from __future__ import annotations

from functools import cache

from materialabs.mlip.base import DEFAULT_FMAX, DEFAULT_MAX_STEPS, Potential, Relaxation

__all__ = ["DEFAULT_FMAX", "DEFAULT_MAX_STEPS", "DEFAULT_POTENTIAL", "KNOWN_POTENTIALS",
           "Potential", "Relaxation", "load_potential"]

KNOWN_POTENTIALS = ("chgnet", "sevennet-0", "sevennet-l3i5")
DEFAULT_POTENTIAL = "chgnet"  # docs/mlip.md: the measurement behind the choice


@cache
def load_potential(name: str = DEFAULT_POTENTIAL) -> Potential:
    """The potential called ``name`` (one instance per process); ValueError naming the
    known names for any other."""
    if name == "chgnet":
        from materialabs.mlip.chgnet import ChgnetPotential

        return ChgnetPotential()
    if name in ("sevennet-0", "sevennet-l3i5"):
        from materialabs.mlip.sevennet import SevenNetPotential

        return SevenNetPotential(name)
    raise ValueError(f"interatomic potential {name!r}: expected one of "
                     f"{', '.join(KNOWN_POTENTIALS)}")
