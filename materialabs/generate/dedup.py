"""Deduplication of crystals: a cheap fingerprint to bucket, StructureMatcher to confirm.

Two crystals are "the same" when pymatgen's StructureMatcher (ltol 0.2, stol 0.3,
angle_tol 5°, primitive cells, volumes scaled to each other) maps one onto the other,
so a structure and its rotated, translated, permuted or supercell copy, or the same
prototype at another volume, count as one. Matching is slow (milliseconds), so:

1. ``fingerprint``: reduced formula, spglib space group (symprec 0.1, as the datasets
   use), atoms in the primitive cell and the multiset of (element, orbit size per
   primitive cell). All are invariant under rotation, translation and supercells, so
   equal crystals always share a bucket; only crystals in the same bucket are matched.
2. ``nn_profile`` (see below) proves many pairs in a bucket different without the
   matcher.
3. ``exact_key``: spglib's standardised (conventional) cell scaled to 1 Å³/atom and
   rounded. Equal keys mean equal crystals, so the matcher is skipped; unequal keys
   prove nothing (origin choice, rounding) and fall through to the matcher. A key that
   needs a spglib call of its own (a SAPS outcome, whose symmetry comes without one:
   ``partitions.py``) is made only when a pair would otherwise go to the matcher.

Known structures (datasets) are indexed by composition only. When a candidate of that
composition first shows up, they get their site-environment profile (distances only, no
spglib); a known crystal is fingerprinted (spglib) only once a candidate's profile does
not prove it different, the one case in which the two would ever be compared. Indexing
40k known crystals costs milliseconds, and most are never fingerprinted.
"""

from __future__ import annotations

import hashlib
import math
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import spglib
from ase.data import atomic_numbers

from materialabs.crystals import Crystal
from materialabs.generate import chem
from materialabs.generate.filters import pair_distances

if TYPE_CHECKING:
    from pymatgen.core import Structure

SYMPREC = 0.1


@dataclass(frozen=True)
class Fingerprint:
    formula: chem.FormulaKey
    spacegroup: int
    primitive_sites: int
    orbits: tuple[tuple[str, int], ...]  # (element, orbit size in the primitive cell), sorted


class StandardCell:
    """spglib's standardised cells of a labelled site pattern, made on first use.

    ``conventional()`` is the standardised conventional cell (for ``exact_key``),
    ``get()`` the standardised primitive cell (it saves the matcher its own slow
    reduction). Most patterns never need either, so the spglib calls are deferred and
    then made once. Labels as in :func:`symmetry_info`.
    """

    def __init__(self, lattice: np.ndarray, frac: np.ndarray, labels: np.ndarray,
                 symprec: float, known: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
                 conventional: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
                 ) -> None:
        self._input = (lattice, frac, labels, symprec)
        self._cell = known
        self._done = known is not None
        self._conventional = conventional
        self._conventional_done = conventional is not None
        self._niggli: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self._niggli_done = False

    @property
    def computed(self) -> bool:
        return self._done

    @property
    def conventional_computed(self) -> bool:
        return self._conventional_done

    def get(self) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """(lattice, positions, labels) of the primitive cell, or None where spglib gives up."""
        if not self._done:
            lattice, frac, labels, symprec = self._input
            std = spglib.standardize_cell(spglib_cell(lattice, frac, labels + 1),
                                          to_primitive=True, no_idealize=False,
                                          symprec=symprec)
            if std is not None:
                self._cell = (np.asarray(std[0]), np.asarray(std[1]),
                              np.asarray(std[2], dtype=np.int64) - 1)
            self._done = True
        return self._cell

    def niggli(self) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """:meth:`get`'s cell Niggli-reduced (lattice, positions, labels), made once.

        The reduction depends on the lattice only, so outcomes sharing a pattern share it.
        """
        if not self._niggli_done:
            found = self.get()
            if found is not None:
                from pymatgen.core import Lattice, Structure

                lattice, positions, labels = found
                cell = Structure(Lattice(lattice), ["H"] * len(labels), positions)
                reduced = cell.get_reduced_structure("niggli")
                self._niggli = (reduced.lattice.matrix.copy(), reduced.frac_coords.copy(),
                                labels)
            self._niggli_done = True
        return self._niggli

    def conventional(self) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """(lattice, positions, labels) of the conventional cell, or None (spglib gave up)."""
        if not self._conventional_done:
            lattice, frac, labels, symprec = self._input
            dataset = spglib.get_symmetry_dataset(spglib_cell(lattice, frac, labels + 1),
                                                  symprec=symprec)
            if dataset is not None:
                self._conventional = (np.asarray(dataset.std_lattice),
                                      np.asarray(dataset.std_positions),
                                      np.asarray(dataset.std_types, dtype=np.int64) - 1)
            self._conventional_done = True
        return self._conventional


class PrimitiveCell:
    """A crystal's standardised cells: its pattern's cells plus the species of each label.

    Also its ``exact_key`` (empty where spglib gives up), made once, on first use unless
    the conventional cell was known when the signature was made.
    """

    def __init__(self, standard: StandardCell, label_species: tuple[str, ...]) -> None:
        self.standard = standard
        self.label_species = label_species  # species of label 0, 1, ...
        self._key: str | None = None
        if standard.conventional_computed:
            self.exact_key()

    def cell(self, niggli: bool = False) -> tuple[np.ndarray, np.ndarray, list[str]] | None:
        """The standardised primitive cell with species (Niggli-reduced if asked)."""
        found = self.standard.niggli() if niggli else self.standard.get()
        if found is None:
            return None
        lattice, positions, labels = found
        return lattice, positions, [self.label_species[int(label)] for label in labels]

    @property
    def key_known(self) -> bool:
        return self._key is not None

    def exact_key(self) -> str:
        if self._key is None:
            found = self.standard.conventional()
            if found is None:
                self._key = ""
            else:
                lattice, positions, labels = found
                numbers = [atomic_numbers[self.label_species[int(label)]]
                           for label in labels.tolist()]
                self._key = exact_key(lattice, positions, numbers)
        return self._key


@dataclass(frozen=True)
class Signature:
    """What the deduplicator needs to know about a crystal; cheap to pickle."""

    fingerprint: Fingerprint
    nn_profile: tuple[tuple[str, str, tuple[float, ...]], ...] = ()  # see nn_profile()
    primitive: PrimitiveCell | None = None
    # (parent content key, canonical species pattern) from a generator that keeps its
    # parent's geometry: equal origins are congruent, hence the same crystal.
    origin: tuple[str, bytes] | None = None

    @property
    def exact_key(self) -> str:
        """See :func:`exact_key` ("" when unknown: the matcher then decides); may call spglib."""
        return self.primitive.exact_key() if self.primitive is not None else ""


# Two crystals whose site environments differ by more than this fraction are not sent
# to the matcher: for unrelaxed candidates, a 20% change in a nearest-neighbour distance
# is a different structure. The profile is, for each element pair (A, B), the sorted
# list over A sites of the distance to the nearest B, divided by (V/N)^(1/3). It is
# invariant under rotation, translation, scaling and supercells, and it separates
# e.g. perovskites with A and B swapped, or a dopant on 4a rather than 4b, which share
# every fingerprint field and cost the matcher 5-15 ms each to reject.
NN_PROFILE_TOLERANCE = 0.2

Profile = tuple[tuple[str, str, tuple[float, ...]], ...]


def nn_profile(species: Iterable[str], distances: np.ndarray, volume: float) -> Profile:
    """Per element pair: sorted site-wise nearest distances over (V/N)^(1/3)."""
    species = list(species)
    scale = (volume / len(species)) ** (1.0 / 3.0)
    elements = sorted(set(species))
    index = {element: i for i, element in enumerate(elements)}
    labels = np.array([index[s] for s in species])
    order = np.argsort(labels, kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(labels[order]) != 0])
    nearest = np.minimum.reduceat(distances[:, order], starts, axis=1)  # site x element
    profile = []
    for i, first in enumerate(elements):
        block = np.sort(nearest[labels == i], axis=0) / scale
        for j, second in enumerate(elements):
            profile.append((first, second, tuple(block[:, j].tolist())))
    return tuple(profile)


def profiles_differ(a: Profile, b: Profile) -> bool:
    """True when the two crystals are certainly different (see NN_PROFILE_TOLERANCE)."""
    if not a or not b or len(a) != len(b):
        return False  # unknown: let the matcher decide
    for (a1, a2, x), (b1, b2, y) in zip(a, b, strict=True):
        if (a1, a2) != (b1, b2):
            return True
        left, right = np.asarray(x), np.asarray(y)
        if len(left) != len(right):  # supercell: each value repeats, so stretch both
            size = math.lcm(len(left), len(right))
            left = np.repeat(left, size // len(left))
            right = np.repeat(right, size // len(right))
        if (np.abs(left - right) > NN_PROFILE_TOLERANCE * np.maximum(left, right)).any():
            return True
    return False


@dataclass(frozen=True)
class SymmetryInfo:
    """What spglib says about a pattern of labelled sites (labels: any ints >= 0).

    It depends only on the geometry and on which sites share a label, so a generator
    that keeps a parent's geometry can reuse it for every species pattern with the same
    partition of sites (see saps.py).
    """

    spacegroup: int
    orbit_representatives: tuple[int, ...]  # per input site (crystallographic orbits)
    primitive_sites: int
    standard: StandardCell  # the standardised conventional and primitive cells


def spglib_cell(lattice: Any, frac: Any, numbers: Any) -> Any:
    """spglib's (lattice, positions, types) cell; typed Any because spglib's stubs ask
    for nested sequences where it happily takes (and prefers) numpy arrays."""
    return (lattice, frac, numbers)


def symmetry_info(lattice: np.ndarray, frac: np.ndarray, labels: Any,
                  symprec: float = SYMPREC) -> SymmetryInfo:
    labels = np.asarray(labels, dtype=np.int64)
    dataset = spglib.get_symmetry_dataset(spglib_cell(lattice, frac, labels + 1),  # types > 0
                                          symprec=symprec)
    if dataset is None:  # spglib gives up on a few pathological cells: P1
        n = len(labels)
        lattice, frac = np.asarray(lattice), np.asarray(frac)
        return SymmetryInfo(1, tuple(range(n)), n,
                            StandardCell(lattice, frac, labels, symprec,
                                         known=(lattice, frac, labels),
                                         conventional=(lattice, frac, labels)))
    # crystallographic_orbits, not equivalent_atoms: the latter only uses the operations
    # that keep the input cell (a 2x1x1 supercell of a cubic crystal loses some).
    return SymmetryInfo(
        spacegroup=int(dataset.number),
        orbit_representatives=tuple(dataset.crystallographic_orbits.tolist()),
        primitive_sites=len(set(dataset.mapping_to_primitive.tolist())),
        standard=StandardCell(np.asarray(lattice), np.asarray(frac), labels, symprec,
                              conventional=(np.asarray(dataset.std_lattice),
                                            np.asarray(dataset.std_positions),
                                            np.asarray(dataset.std_types, dtype=np.int64) - 1)),
    )


def build_signature(species: list[str] | tuple[str, ...], labels: Any, info: SymmetryInfo,
                    profile: Profile) -> Signature:
    """Signature of ``species`` given the symmetry of its site pattern ``labels``."""
    label_species: dict[int, str] = {}
    for label, symbol in zip(np.asarray(labels).tolist(), species, strict=True):
        label_species.setdefault(label, symbol)
    per_primitive = len(species) // info.primitive_sites
    orbit_sizes: dict[int, int] = defaultdict(int)
    for representative in info.orbit_representatives:
        orbit_sizes[representative] += 1
    orbits = tuple(sorted(
        (species[rep], size // per_primitive) for rep, size in orbit_sizes.items()
    ))
    fingerprint = Fingerprint(chem.formula_key(species), info.spacegroup,
                              info.primitive_sites, orbits)
    by_label = tuple(label_species.get(label, "") for label in range(max(label_species) + 1))
    return Signature(fingerprint, profile, PrimitiveCell(info.standard, by_label))


def species_labels(species: list[str] | tuple[str, ...]) -> np.ndarray:
    """Sites labelled by species, numbered in order of first appearance."""
    first: dict[str, int] = {}
    return np.array([first.setdefault(s, len(first)) for s in species], dtype=np.int64)


def signature(crystal: Crystal, symprec: float = SYMPREC,
              profile: Profile | None = None) -> Signature:
    """Fingerprint, exact key, profile and (on demand) primitive cell of ``crystal``."""
    labels = species_labels(crystal.species)
    info = symmetry_info(crystal.lattice_array, crystal.frac_array, labels, symprec)
    if profile is None:
        profile = crystal_profile(crystal)
    return build_signature(crystal.species, labels, info, profile)


def crystal_profile(crystal: Crystal) -> Profile:
    """:func:`nn_profile` of a crystal (its periodic distances computed here)."""
    return nn_profile(crystal.species, pair_distances(crystal), crystal.volume_angstrom3)


def exact_key(lattice: np.ndarray, frac: np.ndarray, numbers: Any) -> str:
    """Hash of the cell at 1 Å³/atom, rounded: lengths, angle cosines, sorted sites."""
    lattice = np.asarray(lattice, dtype=float)
    numbers = np.asarray(numbers, dtype=np.int64)
    scale = (abs(np.linalg.det(lattice)) / len(numbers)) ** (1.0 / 3.0)
    norms = np.linalg.norm(lattice, axis=1)
    gram = lattice @ lattice.T
    cosines = np.array([gram[1, 2] / (norms[1] * norms[2]), gram[0, 2] / (norms[0] * norms[2]),
                        gram[0, 1] / (norms[0] * norms[1])])
    wrapped = np.round(np.mod(frac, 1.0), 2) % 1.0
    order = np.lexsort((wrapped[:, 2], wrapped[:, 1], wrapped[:, 0], numbers))
    digest = hashlib.blake2b(numbers[order].tobytes(), digest_size=16)
    # + 0.0 turns -0.0 into 0.0, which would otherwise hash differently.
    for part in (np.round(norms / scale, 2), np.round(cosines, 2), wrapped[order]):
        digest.update((np.ascontiguousarray(part, dtype=float) + 0.0).tobytes())
    return digest.hexdigest()


@dataclass
class _Entry:
    entry_id: str
    crystal: Crystal
    profile: tuple[tuple[str, str, tuple[float, ...]], ...] = ()
    primitive: PrimitiveCell | None = None
    origin: tuple[str, bytes] | None = None
    _reduced: Structure | None = None

    def reduced(self) -> Structure:
        # Primitive + Niggli reduction once per entry, not once per comparison; from
        # spglib's primitive cell when we have it (pymatgen's own search is ~10x slower).
        if self._reduced is None:
            from pymatgen.analysis.structure_matcher import StructureMatcher
            from pymatgen.core import Lattice, Structure

            found = self.primitive.cell(niggli=True) if self.primitive is not None else None
            if found is not None:
                lattice, positions, species = found
                self._reduced = Structure(Lattice(lattice), species, positions)
            else:
                self._reduced = StructureMatcher._get_reduced_structure(
                    self.crystal.to_structure(), primitive_cell=True, niggli=True
                )
        return self._reduced


def _known_key(primitive: PrimitiveCell | None) -> str:
    """The exact key if it is made already ("" otherwise: making it may call spglib)."""
    return primitive.exact_key() if primitive is not None and primitive.key_known else ""


@dataclass
class DedupStats:
    exact_hits: int = 0
    matcher_calls: int = 0
    matcher_hits: int = 0
    prefilter_skips: int = 0
    origin_skips: int = 0
    near_skips: int = 0  # same-origin pairs that ``origin_test`` proved different
    known_indexed: int = 0


@dataclass
class Deduplicator:
    """Remembers crystals and says whether a new one is a duplicate of any of them.

    ``use_fingerprint=False`` turns the buckets off (every crystal of a composition is
    matched against every other): the baseline the benchmark compares against.
    """

    symprec: float = SYMPREC
    use_fingerprint: bool = True
    # Bucket on (formula, atoms per primitive cell) only, not on space group and orbits:
    # more matcher calls, but a distorted copy whose space group differs at symprec 0.1
    # (which the matcher's stol 0.3 still calls equal) meets its original. AIRSS uses it.
    symmetry_buckets: bool = True
    # For two crystals of the same origin that no exact symmetry relates, called as
    # (crystal, its signature, other crystal): False when the matcher could not equate
    # them (then it is not asked). SAPS passes the parent's near-symmetries.
    origin_test: Callable[[Crystal, Signature, Crystal], bool] | None = None
    stats: DedupStats = field(default_factory=DedupStats)

    def __post_init__(self) -> None:
        from pymatgen.analysis.structure_matcher import ElementComparator, StructureMatcher

        self._matcher = StructureMatcher(
            ltol=0.2, stol=0.3, angle_tol=5, primitive_cell=True, scale=True,
            attempt_supercell=False, comparator=ElementComparator(),
        )
        self._exact: dict[str, str] = {}
        self._buckets: dict[Any, list[_Entry]] = defaultdict(list)
        self._pending_known: dict[chem.FormulaKey, list[tuple[str, Crystal]]] = defaultdict(list)
        # Known crystals of compositions seen, with their profiles, not fingerprinted yet.
        self._profiled_known: dict[chem.FormulaKey, list[tuple[str, Crystal, Profile]]] = {}

    def __len__(self) -> int:
        return sum(len(b) for b in self._buckets.values())

    # -- known structures ---------------------------------------------------------
    def add_known(self, crystals: Iterable[Crystal], ids: Iterable[str] | None = None) -> int:
        """Index known crystals (e.g. a dataset) so candidates equal to them are dropped."""
        count = 0
        id_iter = iter(ids) if ids is not None else None
        for crystal in crystals:
            entry_id = str(next(id_iter)) if id_iter is not None else f"known-{count}"
            self._pending_known[chem.formula_key(crystal.species)].append((entry_id, crystal))
            count += 1
        return count

    def _index_known(self, sig: Signature) -> None:
        """Fingerprint and index the known crystals of ``sig``'s composition that a
        crystal with this signature could equal (those its profile does not rule out)."""
        formula = sig.fingerprint.formula
        pending = self._pending_known.pop(formula, None)
        if pending is not None:
            self._profiled_known[formula] = [(entry_id, crystal, crystal_profile(crystal))
                                             for entry_id, crystal in pending]
        waiting = self._profiled_known.get(formula)
        if not waiting:
            return
        still = []
        for entry_id, crystal, profile in waiting:
            if self.use_fingerprint and profiles_differ(sig.nn_profile, profile):
                still.append((entry_id, crystal, profile))
                continue
            self._insert(entry_id, crystal, signature(crystal, self.symprec, profile))
            self.stats.known_indexed += 1
        self._profiled_known[formula] = still

    # -- queries ------------------------------------------------------------------
    def _bucket_key(self, sig: Signature) -> Any:
        if not self.use_fingerprint:
            return sig.fingerprint.formula
        if not self.symmetry_buckets:
            return sig.fingerprint.formula, sig.fingerprint.primitive_sites
        return sig.fingerprint

    def find(self, crystal: Crystal, sig: Signature | None = None,
             origin_checked: bool = False) -> str | None:
        """The id of a remembered crystal equal to ``crystal``, or None.

        ``origin_checked``: the caller has already matched ``crystal`` against every
        earlier crystal of the same origin (``Signature.origin[0]``, a parent), so
        those pairs are skipped here. ``saps.generate`` does that matching inside the
        worker processes, where it runs in parallel.
        """
        sig = sig or signature(crystal, self.symprec)
        self._index_known(sig)
        known_key = _known_key(sig.primitive)
        if self.use_fingerprint and known_key and known_key in self._exact:
            self.stats.exact_hits += 1
            return self._exact[known_key]
        bucket = self._buckets.get(self._bucket_key(sig))
        if not bucket:
            return None
        probe = _Entry("probe", crystal, sig.nn_profile, sig.primitive)
        for entry in bucket:
            if self.use_fingerprint and profiles_differ(sig.nn_profile, entry.profile):
                self.stats.prefilter_skips += 1
                continue
            if self.use_fingerprint and sig.origin is not None and entry.origin is not None \
                    and sig.origin[0] == entry.origin[0]:
                if sig.origin == entry.origin:
                    return entry.entry_id  # same parent, congruent species pattern
                if origin_checked:
                    self.stats.origin_skips += 1
                    continue
                # Outcomes of one parent that no symmetry relates: exact keys (a spglib
                # call each) would not tell them apart, the matcher decides, unless no
                # near-symmetry of the parent could make them one.
                if self.origin_test is not None and not self.origin_test(crystal, sig,
                                                                         entry.crystal):
                    self.stats.near_skips += 1
                    continue
            elif self.use_fingerprint and self._same_exact_key(sig, entry):
                self.stats.exact_hits += 1
                return entry.entry_id
            self.stats.matcher_calls += 1
            if self._matcher.fit(probe.reduced(), entry.reduced(),
                                 skip_structure_reduction=True):
                self.stats.matcher_hits += 1
                return entry.entry_id
        return None

    def add(self, entry_id: str, crystal: Crystal, sig: Signature | None = None,
            origin_checked: bool = False) -> str | None:
        """Remember ``crystal`` unless it is a duplicate; return the id it duplicates, or None."""
        sig = sig or signature(crystal, self.symprec)
        duplicate_of = self.find(crystal, sig, origin_checked)
        if duplicate_of is None:
            self._insert(entry_id, crystal, sig)
        return duplicate_of

    def _same_exact_key(self, sig: Signature, entry: _Entry) -> bool:
        """Equal exact keys (each made now if it was not yet, and then indexed)."""
        if sig.primitive is None or entry.primitive is None:
            return False
        if not entry.primitive.key_known:
            entry_key = entry.primitive.exact_key()
            if entry_key:
                self._exact.setdefault(entry_key, entry.entry_id)
        key = sig.primitive.exact_key()
        return bool(key) and key == entry.primitive.exact_key()

    def _insert(self, entry_id: str, crystal: Crystal, sig: Signature) -> None:
        key = _known_key(sig.primitive)
        if self.use_fingerprint and key:
            self._exact.setdefault(key, entry_id)
        self._buckets[self._bucket_key(sig)].append(
            _Entry(entry_id, crystal, sig.nn_profile, sig.primitive, sig.origin))
