"""A partition's symmetry from the parent's operations is spglib's, or is left to spglib."""

from __future__ import annotations

import numpy as np
import pytest
from gen_parents import perovskite, rutile, spinel

from materialabs.crystals import Crystal
from materialabs.generate import dedup, partitions, saps


def pseudo_tetragonal() -> Crystal:
    # Orthorhombic, a = 2.98 and b = 3.14 Å, every atom on the 4-fold axes: swapping a
    # and b moves no atom but stretches the lattice by 0.16 Å, which spglib accepts at
    # twice symprec 0.1 and refuses at symprec itself.
    return Crystal.from_arrays(np.diag([2.98, 3.14, 5.30]), ["Cu", "Pt", "O", "O"],
                               [[0, 0, 0], [0.5, 0.5, 0.5], [0, 0, 0.3], [0, 0, 0.7]])


def layered() -> Crystal:
    # SrCaO2 in a tetragonal cell with c/a = 1.4134 (almost sqrt 2): Sr -> Ca makes
    # rocksalt CaO, Fm-3m in its own primitive cell, I4/mmm by this cell's operations.
    return Crystal.from_arrays(np.diag([3.5661, 3.5661, 5.0403]), ["Sr", "Ca", "O", "O"],
                               [[0.5, 0.5, 0], [0, 0, 0.5], [0, 0, 0], [0.5, 0.5, 0.5]])


def distorted_perovskite() -> Crystal:
    cubic = perovskite("Ca", "Ti", "O", 3.84)
    frac = np.array(cubic.frac_coords)
    frac[2] += [0.0, 0.0, 0.012]  # one O off its site by 0.05 Å: near the tolerance
    return Crystal.from_arrays(np.diag([3.84, 3.86, 3.9]), cubic.species, frac)


PARENTS = [perovskite(), rutile(), spinel(), pseudo_tetragonal(), layered(),
           distorted_perovskite()]
NEAR_TOLERANCE = PARENTS[3], PARENTS[5]  # every partition may be ambiguous


def _groups(representatives) -> list[list[int]]:
    reps = np.asarray(representatives)
    return sorted(np.flatnonzero(reps == r).tolist() for r in set(reps.tolist()))


def _partitions(parent: Crystal) -> list[np.ndarray]:
    """The primitive cell, then partitions of its sites as SAPS makes them (an orbit, or
    one or two of its sites, relabelled) and random ones."""
    cell = saps.primitive_cell(parent, dedup.SYMPREC)
    symmetry = saps.parent_symmetry(cell, dedup.SYMPREC)
    base = dedup.species_labels(list(cell.species))
    found = {}
    changes = [orbit.tolist() for orbit in symmetry.orbits]
    changes += [[int(site)] for orbit in symmetry.orbits for site in orbit]
    changes += [[int(a), int(b)] for orbit in symmetry.orbits for a in orbit for b in orbit
                if a < b][:60]
    for first in changes:
        for second in [[], *changes[:12]]:
            labels = base.copy()
            labels[first] = base.max() + 1
            labels[second] = base.max() + 2
            labels = dedup.species_labels(labels.tolist())
            found.setdefault(labels.tobytes(), labels)
    rng = np.random.default_rng(0)
    for _ in range(40):
        labels = dedup.species_labels(rng.integers(0, 3, cell.num_sites).tolist())
        found.setdefault(labels.tobytes(), labels)
    return [cell, *found.values()]


@pytest.mark.parametrize("parent", PARENTS, ids=lambda c: "".join(sorted(set(c.species))))
def test_derived_partition_symmetry_is_spglibs(parent):
    cell, *patterns = _partitions(parent)
    lattice, frac = cell.lattice_array, cell.frac_array
    ops = partitions.candidate_ops(lattice, frac, dedup.SYMPREC)
    derived = 0
    for labels in patterns:
        info = ops.partition_info(labels)
        if info is None:
            continue
        derived += 1
        spglib_says = dedup.symmetry_info(lattice, frac, labels)
        assert (info.spacegroup, info.primitive_sites, _groups(info.orbit_representatives)) \
            == (spglib_says.spacegroup, spglib_says.primitive_sites,
                _groups(spglib_says.orbit_representatives)), labels
    assert derived > 0 or parent in NEAR_TOLERANCE


def test_ambiguous_partitions_are_left_to_spglib():
    # Without the lattice-stretch check the a/b swap would count: P4/mmm-like answers.
    cell = pseudo_tetragonal()
    ops = partitions.candidate_ops(cell.lattice_array, cell.frac_array, dedup.SYMPREC)
    assert ops.partition_info(dedup.species_labels(list(cell.species))) is None
    # A pattern that repeats inside the cell: its own cell has more operations.
    cell = layered()
    labels = dedup.species_labels(["Ca", "Ca", "O", "O"])
    ops = partitions.candidate_ops(cell.lattice_array, cell.frac_array, dedup.SYMPREC)
    assert dedup.symmetry_info(cell.lattice_array, cell.frac_array, labels).spacegroup == 225
    assert ops.partition_info(labels) is None


def test_saps_gives_the_same_candidates_as_with_spglib_for_every_partition(monkeypatch):
    parents = [(f"p{i}", c) for i, c in enumerate(PARENTS)]
    derived, report = saps.generate(parents, seed=3)
    monkeypatch.setattr(partitions.CandidateOps, "partition_info", lambda self, labels: None)
    spglib_only, spglib_report = saps.generate(parents, seed=3)
    assert [c.candidate_id for c in derived] == [c.candidate_id for c in spglib_only]
    assert [c.params for c in derived] == [c.params for c in spglib_only]
    assert report.as_dict() == spglib_report.as_dict()
    assert len(derived) > 100
