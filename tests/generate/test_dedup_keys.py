"""exact_key: order of sites and the sign of zero do not matter; species and geometry do."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from materialabs.crystals import Crystal
from materialabs.generate import dedup

LATTICE = np.array([[4.0, 0.0, 0.0], [0.0, 4.0, 0.0], [0.0, 0.0, 5.0]])
FRAC = np.array([[0.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, 0.5, 0.0], [0.25, 0.75, 0.1]])
NUMBERS = [38, 22, 8, 8]


@settings(max_examples=30, deadline=None)
@given(st.permutations(range(4)))
def test_key_ignores_site_order(order):
    order = list(order)
    assert dedup.exact_key(LATTICE, FRAC[order], [NUMBERS[i] for i in order]) == \
        dedup.exact_key(LATTICE, FRAC, NUMBERS)


def test_key_ignores_the_sign_of_zero_and_whole_cell_shifts():
    negative_zero = np.where(FRAC == 0.0, -0.0, FRAC)
    assert dedup.exact_key(LATTICE, negative_zero, NUMBERS) == dedup.exact_key(LATTICE, FRAC,
                                                                                NUMBERS)
    assert dedup.exact_key(LATTICE, FRAC + 1.0, NUMBERS) == dedup.exact_key(LATTICE, FRAC,
                                                                             NUMBERS)


def test_key_tells_species_and_geometry_apart():
    base = dedup.exact_key(LATTICE, FRAC, NUMBERS)
    assert dedup.exact_key(LATTICE, FRAC, [56, 22, 8, 8]) != base
    moved = FRAC.copy()
    moved[3, 2] = 0.2
    assert dedup.exact_key(LATTICE, moved, NUMBERS) != base


def test_primitive_cell_is_made_only_when_the_matcher_needs_it():
    rocksalt = Crystal.from_arrays(np.eye(3) * 5.6, ["Na"] * 4 + ["Cl"] * 4,
                                   [[0, 0, 0], [0, .5, .5], [.5, 0, .5], [.5, .5, 0],
                                    [.5, .5, .5], [.5, 0, 0], [0, .5, 0], [0, 0, .5]])
    signature = dedup.signature(rocksalt)
    assert signature.fingerprint.spacegroup == 225
    assert signature.primitive is not None
    assert not signature.primitive.standard.computed
    assert signature.primitive.cell() is not None
    assert signature.primitive.standard.computed
    lattice, positions, species = signature.primitive.cell()
    assert len(species) == 2 and sorted(species) == ["Cl", "Na"]
    assert abs(abs(np.linalg.det(lattice)) - 5.6 ** 3 / 4) < 1e-6
