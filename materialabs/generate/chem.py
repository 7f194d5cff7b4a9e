"""Small cached chemistry look-ups shared by the generators and filters.

pymatgen's look-ups (oxidation-state guesses, Shannon radii) are slow enough to
dominate a generator's inner loop, and the same few compositions and ions come back
over and over, so every look-up here is memoised on a hashable key.
"""

from __future__ import annotations

import math
import warnings
from collections import Counter
from collections.abc import Iterable, Mapping
from functools import lru_cache

import numpy as np
from ase.data import atomic_masses, atomic_numbers, covalent_radii

from materialabs.crystals import FormulaKey, formula_key, formula_of_key

# Fraction of the cell filled by ion spheres in typical inorganic solids; fitted so the
# estimate lands on the DFT volumes of cubic perovskites and MP oxides (see docs/generate.md).
PACKING_FRACTION = 0.62
_AVOGADRO = 6.02214076e23


def reduced_formula(key: FormulaKey) -> str:
    """pymatgen's reduced formula (e.g. 'SrTiO3'): the one implementation, in crystals.py."""
    return formula_of_key(key)


# pymatgen's guesser enumerates every combination of per-element sums, which blows up
# for large formulas (Tl8Pb4Sb21As19S68 runs for minutes); above this size we only
# answer "balanced or not" with the dynamic programme below.
_MAX_ATOMS_FOR_GUESS = 24


@lru_cache(maxsize=65536)
def oxidation_guess(key: FormulaKey) -> tuple[tuple[str, float], ...] | None:
    """Most likely charge-balanced oxidation states (pymatgen's ICSD-based guess), or None.

    None also for formulas with more than 24 atoms per formula unit (see above).
    """
    from pymatgen.core import Composition

    if sum(n for _, n in key) > _MAX_ATOMS_FOR_GUESS:
        return None
    guesses = Composition(dict(key)).oxi_state_guesses()
    if not guesses:
        return None
    return tuple(sorted(guesses[0].items()))


@lru_cache(maxsize=512)
def common_oxidation_states(symbol: str) -> tuple[int, ...]:
    """The states pymatgen's guesser tries: ICSD-observed, else common ones."""
    from pymatgen.core import Element

    element = Element(symbol)
    return tuple(element.icsd_oxidation_states or element.common_oxidation_states)


@lru_cache(maxsize=65536)
def _balanced(key: FormulaKey) -> bool:
    # Same question pymatgen's oxi_state_guesses answers (each atom takes one of its
    # element's common states; do they sum to zero?), as a subset-sum over reachable totals.
    reachable = {0}
    for symbol, count in key:
        states = common_oxidation_states(symbol)
        if not states:
            return False
        element_sums = {0}
        for _ in range(count):
            element_sums = {total + state for total in element_sums for state in states}
        reachable = {a + b for a in reachable for b in element_sums}
    return 0 in reachable


def is_charge_balanced(species: Iterable[str]) -> bool:
    """True when some common-oxidation-state assignment makes the composition neutral."""
    key = formula_key(species)
    if len(key) == 1:  # an element is neutral by definition
        return True
    return _balanced(key)


@lru_cache(maxsize=4096)
def ion_radius(symbol: str, oxidation: float) -> float:
    """Shannon ionic radius in Å (averaged over coordinations), atomic radius as fallback."""
    from pymatgen.core import Element, Species

    radius = None
    if oxidation and float(oxidation).is_integer():
        with warnings.catch_warnings():  # "no ionic radius for X": we fall back below
            warnings.simplefilter("ignore")
            try:
                radius = Species(symbol, int(oxidation)).ionic_radius
            except (ValueError, KeyError):
                radius = None
    if radius is None:
        element = Element(symbol)
        radius = element.atomic_radius or element.atomic_radius_calculated or 1.5
    return float(radius)


def estimate_volume(species: Iterable[str]) -> float:
    """Expected cell volume in Å³ from ionic (or, for metals, atomic) radii."""
    species = list(species)
    guess = oxidation_guess(formula_key(species)) if len(set(species)) > 1 else None
    states: Mapping[str, float] = dict(guess) if guess else {}
    sphere = 0.0
    for symbol, count in Counter(species).items():
        radius = ion_radius(symbol, states.get(symbol, 0.0))
        sphere += count * 4.0 / 3.0 * math.pi * radius**3
    return sphere / PACKING_FRACTION


def covalent_radius_array(species: Iterable[str]) -> np.ndarray:
    return np.array([covalent_radii[atomic_numbers[s]] for s in species], dtype=float)


def mass_amu(species: Iterable[str]) -> float:
    return float(sum(atomic_masses[atomic_numbers[s]] for s in species))


def density_g_cm3(species: Iterable[str], volume_angstrom3: float) -> float:
    return mass_amu(species) / _AVOGADRO / (volume_angstrom3 * 1e-24)
