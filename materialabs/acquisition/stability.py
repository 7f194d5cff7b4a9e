"""Thermodynamic stability: energy above the convex hull of the known phases.

Energy scale: **formation energy per atom (eV/atom) relative to the elements**, with every
element's standard state at exactly 0. The hull of a chemical system is built with
pymatgen's ``PhaseDiagram`` from the known phases whose elements lie inside it, plus one
zero-energy entry per element. A candidate's energy above hull is its formation energy
minus the hull's formation energy at its composition (eV/atom; <= 0 means on or below
the hull, i.e. it would be a new stable phase).

One consistent scale matters: formation energies from the Materials Project set (with
MP's corrections) and from this project's GPAW runs (its own elemental references, no
corrections) are *different* scales. :class:`HullReference` carries a ``scale`` label and
refuses to compare candidates labelled with another one.
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from pymatgen.analysis.phase_diagram import PDEntry, PhaseDiagram
from pymatgen.core import Composition, Element

MP_SCALE = "mp-formation-eV/atom"  # materialabs.datasets.load_mp_formation()


@dataclass(frozen=True)
class KnownPhase:
    formula: str
    formation_energy_per_atom_eV: float
    name: str = ""


class HullReference:
    """Convex hulls of known phases, one per chemical system, built lazily and cached."""

    def __init__(self, phases: Iterable[KnownPhase], scale: str = MP_SCALE) -> None:
        self.scale = scale
        self._by_system: dict[frozenset[str], list[PDEntry]] = defaultdict(list)
        for phase in phases:
            if not math.isfinite(phase.formation_energy_per_atom_eV):
                raise ValueError(f"known phase {phase.name or phase.formula}: formation energy "
                                 f"is {phase.formation_energy_per_atom_eV}, expected a number")
            composition = Composition(phase.formula)
            entry = PDEntry(composition,
                            phase.formation_energy_per_atom_eV * composition.num_atoms,
                            name=phase.name or phase.formula)
            self._by_system[_system(composition)].append(entry)
        self._diagrams: dict[frozenset[str], PhaseDiagram] = {}

    @classmethod
    def from_dataframe(cls, frame: Any, *, formula_column: str = "reduced_formula",
                       energy_column: str = "formation_energy_per_atom",
                       name_column: str | None = "material_id",
                       scale: str = MP_SCALE) -> HullReference:
        """Known phases from a table such as ``materialabs.datasets.load_mp_formation()``."""
        columns = getattr(frame, "columns", ())
        for column in (formula_column, energy_column):
            if column not in columns:
                raise KeyError(f"hull reference: column {column!r} missing; have {list(columns)}")
        names = frame[name_column] if name_column else [""] * len(frame)
        phases = (KnownPhase(str(f), float(e), str(n)) for f, e, n in zip(
            frame[formula_column], frame[energy_column], names, strict=True))
        return cls(phases, scale)

    def diagram(self, elements: Iterable[str]) -> PhaseDiagram:
        """The phase diagram of a chemical system (all known phases of its subsystems)."""
        system = frozenset(elements)
        if system not in self._diagrams:
            entries = [PDEntry(Composition(el), 0.0, name=f"{el} (reference)")
                       for el in sorted(system)]
            for size in range(1, len(system) + 1):
                for subset in itertools.combinations(sorted(system), size):
                    entries.extend(self._by_system.get(frozenset(subset), ()))
            self._diagrams[system] = PhaseDiagram(entries, elements=[Element(e)
                                                                     for e in sorted(system)])
        return self._diagrams[system]

    def hull_energy_per_atom(self, formula: str | Composition) -> float:
        """Formation energy (eV/atom) of the hull at this composition."""
        composition = Composition(formula)
        return float(self.diagram(_system(composition)).get_hull_energy_per_atom(composition))

    def e_above_hull(self, formula: str | Composition, formation_energy_per_atom_eV: float,
                     scale: str | None = None) -> float:
        """Energy above the hull (eV/atom); negative = below the known hull (new stable phase).

        ``scale`` names the energy scale of the given formation energy; it must match.
        """
        if scale is not None and scale != self.scale:
            raise ValueError(f"energy above hull: candidate energy is on scale {scale!r} but "
                             f"the known phases are on {self.scale!r}; they cannot share a hull")
        return formation_energy_per_atom_eV - self.hull_energy_per_atom(formula)

    def e_above_hull_many(self, formulas: Sequence[str],
                          formation_energies_per_atom_eV: Sequence[float]) -> np.ndarray:
        return np.array([self.e_above_hull(f, e) for f, e in
                         zip(formulas, formation_energies_per_atom_eV, strict=True)])

    def known_phases_e_above_hull(self) -> dict[str, float]:
        """Every known phase's own energy above hull (0 for hull phases), keyed by name."""
        result: dict[str, float] = {}
        for system, entries in self._by_system.items():
            diagram = self.diagram(system)
            for entry in entries:
                result[entry.name] = float(diagram.get_e_above_hull(entry, allow_negative=True)
                                           or 0.0)
        return result


def _system(composition: Composition) -> frozenset[str]:
    return frozenset(el.symbol for el in composition.elements)
