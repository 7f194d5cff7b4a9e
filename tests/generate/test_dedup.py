from __future__ import annotations

import numpy as np
from gen_parents import perovskite, rutile
from hypothesis import given, settings
from hypothesis import strategies as st
from pymatgen.core import Structure
from pymatgen.transformations.standard_transformations import RotationTransformation

from materialabs.crystals import Crystal
from materialabs.generate.dedup import Deduplicator, signature


def copies(crystal: Crystal, axis, angle, shift, supercell, order) -> list[Crystal]:
    structure = crystal.to_structure()
    rotated = RotationTransformation(axis, angle).apply_transformation(structure)
    translated = structure.copy()
    translated.translate_sites(list(range(len(translated))), shift)
    bigger = structure.copy()
    bigger.make_supercell(supercell)
    bigger.translate_sites(list(range(len(bigger))), shift)
    permuted = Structure(structure.lattice, [structure[i].species for i in order],
                         [structure[i].frac_coords for i in order])
    return [Crystal.from_structure(s) for s in (rotated, translated, bigger, permuted)]


SUPERCELLS = [
    [[2, 0, 0], [0, 1, 0], [0, 0, 1]],
    [[1, 1, 0], [0, 1, 1], [1, 0, 1]],
    [[1, 0, 0], [0, 2, 0], [0, 0, 2]],
]


@settings(max_examples=8, deadline=None)
@given(
    axis=st.sampled_from([[1, 0, 0], [1, 2, 3], [0, 1, 1]]),
    angle=st.floats(1, 359),
    shift=st.lists(st.floats(0, 1), min_size=3, max_size=3),
    supercell=st.sampled_from(SUPERCELLS),
    seed=st.integers(0, 1000),
)
def test_rotated_translated_supercell_and_permuted_copies_are_duplicates(
        axis, angle, shift, supercell, seed):
    for original in (perovskite(), rutile()):
        order = np.random.default_rng(seed).permutation(original.num_sites).tolist()
        dedup = Deduplicator()
        assert dedup.add("original", original) is None
        for copy in copies(original, axis, angle, shift, supercell, order):
            assert dedup.add("copy", copy) == "original"
        assert len(dedup) == 1


def test_different_crystals_are_kept():
    dedup = Deduplicator()
    assert dedup.add("SrTiO3", perovskite()) is None
    assert dedup.add("TiSrO3", perovskite("Ti", "Sr", "O")) is None  # A and B swapped
    assert dedup.add("BaTiO3", perovskite("Ba")) is None
    assert dedup.add("rutile", rutile()) is None
    assert len(dedup) == 4


def test_scaled_copy_is_the_same_crystal():
    dedup = Deduplicator()
    dedup.add("small", perovskite(length=3.9))
    assert dedup.add("large", perovskite(length=4.3)) == "small"


def test_known_structures_are_matched_lazily():
    dedup = Deduplicator()
    dedup.add_known([perovskite(), rutile()], ["mp-5229", "mp-2657"])
    assert dedup.stats.known_indexed == 0  # nothing fingerprinted until needed
    shifted = perovskite().to_structure()
    shifted.translate_sites([0, 1, 2, 3, 4], [0.5, 0.5, 0.5])
    assert dedup.find(Crystal.from_structure(shifted)) == "mp-5229"
    assert dedup.stats.known_indexed == 1  # only the SrTiO3 bucket was indexed


def test_fingerprint_only_and_matcher_only_agree():
    crystals = [perovskite(), perovskite("Ba"), perovskite(length=4.2), rutile(),
                perovskite("Ti", "Sr", "O")]
    for use_fingerprint in (True, False):
        dedup = Deduplicator(use_fingerprint=use_fingerprint)
        kept = [i for i, c in enumerate(crystals) if dedup.add(str(i), c) is None]
        assert kept == [0, 1, 3, 4]


def test_signature_is_invariant_and_discriminating():
    assert signature(perovskite()).fingerprint == signature(perovskite(length=4.5)).fingerprint
    assert signature(perovskite()).fingerprint != signature(perovskite("Ba")).fingerprint


def test_composition_buckets_catch_a_distorted_copy_with_another_space_group():
    cubic = perovskite()
    shifted = [list(xyz) for xyz in cubic.frac_coords]
    shifted[1][2] += 0.15 / 3.9  # Ti off-centre by 0.15 Å: P4mm at symprec 0.1
    distorted = Crystal.from_arrays(cubic.lattice, cubic.species, shifted)
    assert signature(distorted).fingerprint.spacegroup != signature(cubic).fingerprint.spacegroup
    loose = Deduplicator(symmetry_buckets=False)
    loose.add("cubic", cubic)
    assert loose.add("distorted", distorted) == "cubic"
