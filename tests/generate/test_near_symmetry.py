"""Outcomes of one parent: the near-symmetry test skips only matcher calls that say no."""

from __future__ import annotations

import numpy as np
import pytest
from gen_parents import perovskite, rutile
from pymatgen.core import Lattice, Structure

from materialabs.crystals import Crystal
from materialabs.generate import saps
from materialabs.generate.dedup import Deduplicator


def off_centre_perovskite() -> Crystal:
    # One O 0.12 Å off its site: the three O are no longer equivalent at symprec 0.1,
    # but StructureMatcher (stol 0.3) still equates putting N on either of two of them.
    cubic = perovskite("Ca", "Ti", "O", 3.84)
    frac = np.array(cubic.frac_coords)
    frac[2] += [0.0, 0.0, 0.031]
    return Crystal.from_arrays(cubic.lattice, cubic.species, frac)


def layered_perovskite() -> Crystal:
    """Sr2TiO4 (K2NiF4 type, I4/mmm): two O orbits, Sr on a 4e site."""
    structure = Structure.from_spacegroup(
        139, Lattice.tetragonal(3.88, 12.6), ["Sr", "Ti", "O", "O"],
        [[0, 0, 0.355], [0, 0, 0], [0, 0.5, 0], [0, 0, 0.16]])
    return Crystal.from_structure(structure.get_primitive_structure())


def bif3_type() -> Crystal:
    """BiF3 (Fm-3m): F on 4b and on 8c, whose substitutions share every fingerprint."""
    structure = Structure.from_spacegroup(
        225, Lattice.cubic(5.86), ["Bi", "F", "F"],
        [[0, 0, 0], [0.5, 0.5, 0.5], [0.25, 0.25, 0.25]])
    return Crystal.from_structure(structure.get_primitive_structure())


def strained_rutile() -> Crystal:
    return Crystal.from_arrays(np.diag([4.59, 4.75, 2.96]), rutile().species,
                               rutile().frac_coords)


PARENTS = [perovskite(), rutile(), layered_perovskite(), off_centre_perovskite(), strained_rutile(),
           perovskite("Ba", "Zr", "O", 4.19), bif3_type()]
CONFIG = saps.SapsConfig(threshold=0.002, max_per_parent=120)


def _unique(proposals, origin_test):
    local = Deduplicator(origin_test=origin_test)
    kept = [p.candidate.candidate_id for p in proposals
            if local.add(p.candidate.candidate_id, p.candidate.crystal, p.signature) is None]
    return kept, local.stats


@pytest.mark.parametrize("parent", PARENTS, ids=lambda c: "".join(sorted(set(c.species))))
def test_same_unique_outcomes_as_the_matcher_alone(parent):
    proposals, _ = saps.substitute_parent(parent, "parent", CONFIG)
    assert len(proposals) > 10
    with_test, stats = _unique(proposals, saps._NearSymmetryTest())
    matcher_only, plain = _unique(proposals, None)
    assert with_test == matcher_only
    assert stats.matcher_calls + stats.near_skips == plain.matcher_calls


def test_the_test_skips_calls_and_keeps_the_near_symmetric_ones():
    skipped = 0
    for parent in PARENTS:
        proposals, _ = saps.substitute_parent(parent, "parent", CONFIG)
        skipped += _unique(proposals, saps._NearSymmetryTest())[1].near_skips
    assert skipped > 0
    # Off-centre O: outcomes that differ only in which near-equivalent O got N are one
    # crystal to the matcher, and the test must let the matcher say so.
    proposals, _ = saps.substitute_parent(off_centre_perovskite(), "parent", CONFIG)
    _, stats = _unique(proposals, saps._NearSymmetryTest())
    assert stats.matcher_hits > 0
