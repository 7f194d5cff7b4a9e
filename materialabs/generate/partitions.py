"""The symmetry of a parent's site partitions, from the parent's operations, without spglib.

A SAPS outcome keeps its parent's geometry and changes which sites share a species, so
its symmetry operations are those operations of the parent's bare site set (species
ignored) that keep every site's label: a subgroup, found by comparing label vectors.
Its space-group type comes from ``spglib.get_spacegroup_type_from_symmetry`` (no search
over atoms), its crystallographic orbits and primitive size from the subgroup's site
permutations. That costs a tenth of ``get_symmetry_dataset`` per partition.

spglib at a tolerance is not a plain subgroup rule, though: an operation that moves
sites or distorts the lattice by about ``symprec`` may be kept for one labelling and
dropped for another (measured on Materials Project parents: a pseudo-tetragonal
orthorhombic cell, an a/b swap between 2.98 and 3.14 Å, a mirror that moves an atom by
0.093 Å). So the operations come from spglib's search on the bare set at *twice*
``symprec``, each with its displacement (the largest distance an atom is moved from the
site it lands on, or by which a short lattice vector changes length), and

* operations displaced by at most ``symprec / 2`` are certain, and make the subgroup;
* a partition that one operation displaced by more keeps (an ambiguous one) is handed
  back to spglib, and so is every partition of a parent whose own species pattern does
  not come out as spglib says, and every partition that repeats inside the parent's
  cell (a pure translation keeps it): its primitive cell may have operations that are
  not operations of this cell.

Checked against ``get_symmetry_dataset`` on 18,784 partitions of 404 Materials Project
parents: space group, orbits and primitive size agree on every one, 1.1 % went to spglib.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import spglib

from materialabs.generate import dedup

CERTAIN = 0.5  # x symprec: operations displaced by at most this are kept by spglib
SEARCH = 2.0  # x symprec: the tolerance of the bare-set search for candidate operations
BAND = 3.0  # x symprec: operations displaced by more are not operations at all
# Short lattice vectors whose length an operation must keep: the axes and face diagonals.
_VECTORS = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [1, -1, 0], [1, 0, 1],
                     [1, 0, -1], [0, 1, 1], [0, 1, -1]], dtype=float)
_IDENTITY = np.eye(3, dtype=np.int64)


@dataclass(frozen=True)
class CandidateOps:
    """Operations of a bare site set, with where each sends every site and how far off."""

    lattice: np.ndarray
    frac: np.ndarray
    rotations: np.ndarray  # K x 3 x 3 (fractional)
    translations: np.ndarray  # K x 3
    permutations: np.ndarray  # K x N
    displacement: np.ndarray  # K, Å
    symprec: float
    # (space group, orbit representatives) or None, by the set of operations that keep
    # the labels: partitions with the same stabiliser share the answer.
    _by_stabiliser: dict[bytes, tuple[int, tuple[int, ...]] | None] = field(
        default_factory=dict, compare=False, repr=False)

    def keeping(self, labels: np.ndarray) -> tuple[np.ndarray, bool]:
        """(the certain operations that keep every label, whether an uncertain one does)."""
        keeps = (labels[self.permutations] == labels[None, :]).all(axis=1)
        certain = self.displacement <= CERTAIN * self.symprec
        return keeps & certain, bool((keeps & ~certain).any())

    def partition_info(self, labels: np.ndarray) -> dedup.SymmetryInfo | None:
        """spglib's answer for sites labelled ``labels``, or None where it is ambiguous."""
        stabiliser = (labels[self.permutations] == labels[None, :]).all(axis=1)
        key = stabiliser.tobytes()
        if key not in self._by_stabiliser:
            self._by_stabiliser[key] = self._subgroup(labels)
        found = self._by_stabiliser[key]
        if found is None:
            return None
        number, representatives = found
        return dedup.SymmetryInfo(
            spacegroup=number, orbit_representatives=representatives,
            primitive_sites=len(labels),
            standard=dedup.StandardCell(self.lattice, self.frac, labels, self.symprec),
        )

    def _subgroup(self, labels: np.ndarray) -> tuple[int, tuple[int, ...]] | None:
        keeps, ambiguous = self.keeping(labels)
        if ambiguous or not keeps.any():
            return None
        if int((self.rotations[keeps] == _IDENTITY).all(axis=(1, 2)).sum()) > 1:
            # The pattern repeats inside the cell: its primitive cell can have operations
            # that do not keep this cell's lattice (rocksalt CaO in a cell of SrCaO2 is
            # Fm-3m, this cell's operations make I4/mmm), which spglib counts.
            return None
        number = spglib.get_spacegroup_type_from_symmetry(
            self.rotations[keeps], self.translations[keeps], self.lattice, self.symprec)
        if number is None:
            return None
        permutations = self.permutations[keeps]
        representatives = np.arange(len(labels))
        while True:  # each site's orbit, named by its smallest member
            smaller = np.minimum(representatives, representatives[permutations].min(axis=0))
            if (smaller == representatives).all():
                break
            representatives = smaller
        return int(number.number), tuple(representatives.tolist())


def candidate_ops(lattice: np.ndarray, frac: np.ndarray, symprec: float) -> CandidateOps:
    """The bare set's operations at ``SEARCH x symprec``, with their displacements."""
    found = spglib.get_symmetry(dedup.spglib_cell(lattice, frac, [1] * len(frac)),
                                symprec=SEARCH * symprec)
    rotations, translations, permutations, displacement = [], [], [], []
    for rotation, shift in zip(found["rotations"] if found else (),
                               found["translations"] if found else (), strict=True):
        delta = (frac @ rotation.T + shift)[:, None, :] - frac[None, :, :]
        delta -= np.round(delta)
        distance = np.linalg.norm(delta @ lattice, axis=2)
        target = distance.argmin(axis=1)
        if len(set(target.tolist())) != len(frac):
            continue  # not one-to-one: not an operation of this set
        moved = distance[np.arange(len(frac)), target].max()
        stretched = np.abs(np.linalg.norm(_VECTORS @ rotation.T @ lattice, axis=1)
                           - np.linalg.norm(_VECTORS @ lattice, axis=1)).max()
        if max(moved, stretched) > BAND * symprec:
            continue
        rotations.append(rotation)
        translations.append(shift)
        permutations.append(target)
        displacement.append(max(moved, stretched))
    n = len(frac)
    return CandidateOps(
        lattice, frac, np.array(rotations, dtype=np.intc).reshape(-1, 3, 3),
        np.array(translations, dtype=float).reshape(-1, 3),
        np.array(permutations, dtype=np.int64).reshape(-1, n),
        np.array(displacement, dtype=float), symprec)


def agrees_with(ops: CandidateOps, labels: np.ndarray, spacegroup: int,
                operations: int) -> bool:
    """Do the certain operations keeping ``labels`` make spglib's group (type and order)?"""
    keeps, _ = ops.keeping(labels)
    if int(keeps.sum()) != operations:
        return False
    found = spglib.get_spacegroup_type_from_symmetry(ops.rotations[keeps],
                                                     ops.translations[keeps], ops.lattice,
                                                     ops.symprec)
    return found is not None and int(found.number) == spacegroup


# -- near-symmetries for the matcher ---------------------------------------------------

# Slack over the matcher's own tolerances (ltol 0.2, angle_tol 5°, stol 0.3). Outcomes
# reach the matcher as spglib's idealised cells of their patterns, not as the parent's
# cell: their atoms may sit up to ~symprec off the parent's sites and their lattices are
# symmetrised, so every tolerance here is wider than the matcher's.
LATTICE_SLACK = 1.5
SITE_SLACK = 0.15  # in units of (V/N)^(1/3), on top of twice stol (see near_operations)


@dataclass(frozen=True)
class NearOperations:
    """Where a lattice mapping within the matcher's tolerances may send each site.

    ``allowed[k, i, j]``: under candidate map k, site i of one outcome may land on site j
    of the other. StructureMatcher equates two outcomes of the parent only through such a
    map with a species-respecting one-to-one assignment, so where none exists for a pair,
    the matcher would say "different" and need not be asked.
    """

    allowed: np.ndarray  # K x N x N bool

    def may_match(self, first: list[str] | tuple[str, ...],
                  second: list[str] | tuple[str, ...]) -> bool:
        """False when no candidate map carries ``first``'s species onto ``second``'s."""
        from scipy.optimize import linear_sum_assignment

        a, b = np.asarray(first), np.asarray(second)
        for same in (a[:, None] == b[None, :], b[:, None] == a[None, :]):
            possible = self.allowed & same[None, :, :]
            covered = possible.any(axis=2).all(axis=1) & possible.any(axis=1).all(axis=1)
            for k in np.flatnonzero(covered):
                rows, cols = linear_sum_assignment(~possible[k])
                if possible[k][rows, cols].all():
                    return True
        return False


def near_operations(lattice: np.ndarray, frac: np.ndarray, stol: float = 0.3,
                    ltol: float = 0.2, angle_tol: float = 5.0) -> NearOperations:
    """Candidate maps of the bare site set onto itself, as the matcher would try them.

    The matcher maps one cell's lattice onto the other's (``Lattice.find_all_mappings``
    within ltol and angle_tol), shifts one site of one crystal onto a same-species site of
    the other, and accepts when every site then lies within stol (x (V/N)^(1/3)) of a
    site of its species after centring the residual shift. Here: the same lattice
    search on the parent's Niggli cell (it maps onto itself) with wider tolerances, each
    site in turn shifted onto site 0's image, and a site allowed to land on another
    within 2 x stol + SITE_SLACK (centring the shift moves each residual by at most
    stol once one residual is zero).
    """
    from pymatgen.core import Lattice

    niggli = Lattice(lattice).get_niggli_reduced_lattice()
    sites = frac @ lattice @ np.linalg.inv(niggli.matrix)
    sites -= np.floor(sites)
    n = len(sites)
    reach = (2 * stol + SITE_SLACK) * (niggli.volume / n) ** (1.0 / 3.0)
    images = np.array(np.meshgrid(*[[-1, 0, 1]] * 3, indexing="ij")).reshape(3, -1).T
    found = []
    for _, _, scale_matrix in niggli.find_all_mappings(
            niggli, ltol * LATTICE_SLACK, angle_tol * LATTICE_SLACK, skip_rotation_matrix=True):
        if abs(round(abs(np.linalg.det(scale_matrix)))) != 1:
            continue
        moved = sites @ np.linalg.inv(scale_matrix)
        # Every choice of the site that site 0 lands on at once: T x N x N x 3.
        delta = (moved[None, :, None, :] + (sites - moved[0])[:, None, None, :]
                 - sites[None, None, :, :])
        delta -= np.round(delta)
        vectors = (delta[..., None, :] + images) @ niggli.matrix  # T x N x N x 27 x 3
        near = np.einsum("...i,...i->...", vectors, vectors).min(axis=-1) <= reach ** 2
        complete = near.any(axis=2).all(axis=1) & near.any(axis=1).all(axis=1)
        found.extend(near[complete])
    allowed = np.unique(np.array(found, dtype=bool).reshape(-1, n, n), axis=0)
    return NearOperations(allowed)
