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

Hull energies at a composition (what the acquisition service asks for every prediction)
come from :class:`LowerHull`: the lower convex hull of a chemical system's phases, built
the way pymatgen's ``PhaseDiagram`` builds it (per composition the lowest energy, only
phases below the elements' plane, one extra point above to make the hull full-
dimensional, qhull ``Qt i``, facets whose composition simplex is degenerate dropped,
barycentric coordinates with tolerance 1e-9), but from arrays rather than ``Composition``
and ``PDEntry`` objects: a few hundred microseconds per chemical system instead of
milliseconds (pymatgen sorts the entries by comparing ``Composition`` objects). It agrees
with ``PhaseDiagram.get_hull_energy_per_atom`` to float noise (tested on random phase
sets; over 900 Materials Project compositions the largest difference was 2.5e-14
eV/atom). ``diagram`` still gives pymatgen's ``PhaseDiagram`` for everything else.
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
from scipy.spatial import ConvexHull

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
        # The same phases as (atomic fractions, formation energy per atom) for LowerHull.
        self._points: dict[frozenset[str], list[tuple[dict[str, float], float]]] = \
            defaultdict(list)
        for phase in phases:
            if not math.isfinite(phase.formation_energy_per_atom_eV):
                raise ValueError(f"known phase {phase.name or phase.formula}: formation energy "
                                 f"is {phase.formation_energy_per_atom_eV}, expected a number")
            composition = Composition(phase.formula)
            entry = PDEntry(composition,
                            phase.formation_energy_per_atom_eV * composition.num_atoms,
                            name=phase.name or phase.formula)
            self._by_system[_system(composition)].append(entry)
            self._points[_system(composition)].append(
                (_fractions(composition), phase.formation_energy_per_atom_eV))
        self._diagrams: dict[frozenset[str], PhaseDiagram] = {}
        self._hulls: dict[frozenset[str], LowerHull] = {}
        # Per system, made here once (a service builds its HullReference at start).
        self._arrays = {system: self._phase_arrays(system) for system in self._points}
        self._hull_energies: dict[str, float] = {}

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

    def lower_hull(self, elements: Iterable[str]) -> LowerHull:
        """The lower convex hull of a chemical system (all known phases of its subsystems)."""
        system = frozenset(elements)
        if system not in self._hulls:
            elements = tuple(sorted(system))
            column = {el: i for i, el in enumerate(elements)}
            fractions, energies = [], []
            for size in range(1, len(system) + 1):
                for subset in itertools.combinations(elements, size):
                    found = self._arrays.get(frozenset(subset))
                    if found is not None:
                        block = np.zeros((len(found[0]), len(elements)))
                        block[:, [column[el] for el in subset]] = found[0]
                        fractions.append(block)
                        energies.append(found[1])
            self._hulls[system] = LowerHull(elements, fractions, energies)
        return self._hulls[system]

    def _phase_arrays(self, system: frozenset[str]) -> tuple[np.ndarray, np.ndarray]:
        """The known phases of exactly this system: (fractions by sorted element, energies)."""
        elements = sorted(system)
        points = self._points[system]
        return (np.array([[fractions[el] for el in elements] for fractions, _ in points]),
                np.array([energy for _, energy in points]))

    def hull_energy_per_atom(self, formula: str | Composition) -> float:
        """Formation energy (eV/atom) of the hull at this composition (cached per formula)."""
        key = formula if isinstance(formula, str) else None
        if key is not None and key in self._hull_energies:
            return self._hull_energies[key]
        composition = Composition(formula)
        hull = self.lower_hull(_system(composition))
        energy = hull.energy_at(_fractions(composition))
        if key is not None:
            self._hull_energies[key] = energy
        return energy

    def e_above_hull(self, formula: str | Composition, formation_energy_per_atom_eV: float,
                     scale: str | None = None) -> float:
        """Energy above the hull (eV/atom); negative = below the known hull (new stable phase).

        ``scale`` names the energy scale of the given formation energy; it must match.
        """
        if scale is not None and scale != self.scale:
            raise ValueError(f"energy above hull: candidate energy is on scale {scale!r} but "
                             f"the known phases are on {self.scale!r}; they cannot share a hull")
        return formation_energy_per_atom_eV - self.hull_energy_per_atom(formula)

    def e_above_hull_of(self, formula: str | Composition, result: Any) -> float:
        """Energy above hull of a DFT result (``formation_energy_per_atom_eV`` and
        ``energy_scale``, as ``materialabs.dft.DftResult``): refused, naming both scales,
        unless the result states this hull's scale (a result that states none is refused)."""
        energy = getattr(result, "formation_energy_per_atom_eV", None)
        scale = getattr(result, "energy_scale", "")
        if energy is None:
            raise ValueError(f"energy above hull of {formula}: the result has no formation "
                             "energy")
        if not scale:
            raise ValueError(f"energy above hull of {formula}: the result states no energy "
                             f"scale; the known phases are on {self.scale!r}")
        return self.e_above_hull(formula, float(energy), scale=scale)

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


def _fractions(composition: Composition) -> dict[str, float]:
    return {el.symbol: composition.get_atomic_fraction(el) for el in composition.elements}


# pymatgen's PhaseDiagram tolerances, so the same phases make the same facets.
_FORMATION_TOL = 1e-11  # PhaseDiagram.formation_energy_tol
_IN_SIMPLEX_TOL = 1e-9  # PhaseDiagram.numerical_tol / 10
_DEGENERATE_DET = 1e-14


class LowerHull:
    """Lower convex hull of (composition, formation energy per atom) over ``elements``.

    Each element has a zero-energy reference point; ``fractions`` (blocks of rows over
    ``elements``) and ``energies`` (per atom) are the known phases whose elements lie
    inside ``elements``.
    The construction follows pymatgen's ``PhaseDiagram`` (see the module doc).
    """

    def __init__(self, elements: tuple[str, ...], fractions: Sequence[np.ndarray] = (),
                 energies: Sequence[np.ndarray] = ()) -> None:
        self.elements = elements
        dim = len(elements)
        data = np.concatenate([np.eye(dim), *fractions])  # the elements' references first
        energy = np.concatenate([np.zeros(dim), *energies])
        # One point per composition, the lowest, in the order of the rounded fractions.
        keys = np.round(data, 12) + 0.0
        order = np.lexsort((energy, *keys.T[::-1]))
        keys, data, energy = keys[order], data[order], energy[order]
        first = np.ones(len(keys), dtype=bool)
        first[1:] = (keys[1:] != keys[:-1]).any(axis=1)
        data = np.column_stack([data[first], energy[first]])
        corners = data[:, :dim].max(axis=1) > 1.0 - 1e-12
        refs = np.zeros(dim)
        for row in data[corners]:
            refs[int(np.argmax(row[:dim]))] = row[dim]
        formation = data[:, dim] - data[:, :dim] @ refs
        keep = (formation < -_FORMATION_TOL) | corners
        hull_data = data[keep][:, 1:]  # the first element's fraction is implied
        self._refs = refs
        if dim == 1:
            self._inverses = np.ones((1, 1, 1))
            self._energies = refs.reshape(1, 1)
            return
        extra = np.full(dim, 1.0 / dim)
        extra[-1] = hull_data.max() + 1.0  # above everything: in every upper facet
        qhull_data = np.vstack([hull_data, extra])
        facets = ConvexHull(qhull_data, qhull_options="Qt i").simplices
        facets = facets[facets.max(axis=1) != len(qhull_data) - 1]
        augmented = qhull_data[facets]  # F x dim x dim
        augmented[:, :, -1] = 1.0
        regular = np.abs(np.linalg.det(augmented)) > _DEGENERATE_DET
        self._inverses = np.linalg.inv(augmented[regular])
        self._energies = qhull_data[facets[regular], -1]

    def energy_at(self, fractions: dict[str, float]) -> float:
        """The hull's energy per atom at a composition given as atomic fractions."""
        if len(self.elements) == 1:
            return float(self._refs[0])
        point = np.array([*(fractions.get(el, 0.0) for el in self.elements[1:]), 1.0])
        bary = np.einsum("j,fjk->fk", point, self._inverses)
        inside = (bary >= -_IN_SIMPLEX_TOL).all(axis=1)
        if not inside.any():
            raise RuntimeError(f"hull of {'-'.join(self.elements)}: no facet holds {fractions}")
        facet = int(np.argmax(inside))
        return float(bary[facet] @ self._energies[facet])
