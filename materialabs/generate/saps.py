"""SAPS: symmetry-aware partial substitution.

From a parent crystal we find its symmetry-equivalent orbits (Wyckoff sets) with spglib,
and replace the species on a whole orbit, or on a symmetry-distinct part of one, with
ions that pymatgen's ionic substitution model (Hautier et al., Inorg. Chem. 2011) rates
likely. Up to ``max_moves`` orbits change at once, which is what lets an aliovalent
pair balance charge (SrTiO3 -> LaTiO2N: Sr2+ -> La3+ on 1a, one O2- -> N3- on 3c).

Everything symmetric is done on site permutations, computed once per parent:

* distinct subsets of an orbit are the subsets' orbits under the parent's group;
* two outcomes that a symmetry of the bare site set (species ignored; it contains the
  parent's group) maps onto each other are one outcome (canonical form: the
  lexicographically smallest permuted species vector);
* an outcome's symmetry depends only on which sites share a species: its operations
  are those of the parent's bare site set that keep the partition, so its space group,
  orbits and primitive size come from the parent's operations (``partitions.py``), with
  spglib only for the few partitions where its tolerance makes that ambiguous, and once
  per distinct partition at most.

Parents are reduced to their primitive cell first (site indices in a candidate's
``params`` refer to it): a supercell's own operations miss part of the crystal's symmetry.

Volume: the parent cell is scaled isotropically by (sum r_new^3 / sum r_old^3)^(1/3)
with Shannon ionic radii of the ions swapped, so a big ion on a small site does not
start out crushed; scaling keeps every symmetry.
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any

import numpy as np
import spglib
from ase.data import atomic_numbers, chemical_symbols

from materialabs.crystals import Crystal
from materialabs.generate import chem, dedup, filters, parallel, partitions
from materialabs.generate.candidate import Candidate
from materialabs.generate.filters import BatchReport, FilterConfig
from materialabs.generate.parallel import ordered_map

METHOD = "saps"


@dataclass(frozen=True)
class SapsConfig:
    """Knobs of the substitution search (defaults are what the benchmark uses)."""

    threshold: float = 0.005  # min P(substitute | original ion) from the substitution model
    max_substitutes: int = 8  # most likely substitutes kept per parent ion
    max_moves: int = 2  # orbits (whole or part) changed at once
    partial: bool = True  # also substitute symmetry-distinct parts of orbits
    max_partial_orbit: int = 8  # partial substitution only on orbits this small
    max_per_parent: int | None = 200  # most likely outcomes kept per parent
    max_parent_sites: int = 40
    scale_volume: bool = True
    symprec: float = dedup.SYMPREC
    use_symmetry: bool = True  # False: naive baseline (every subset, no symmetry merging)
    # Allowed elements (a campaign's chemical space), or None for any. An outcome with
    # another element is skipped before it is built, but still counts towards
    # ``max_per_parent``, so the outcomes kept are the same as filtering afterwards.
    elements: frozenset[str] | None = None


# -- the substitution model -------------------------------------------------------


@lru_cache(maxsize=1)
def substitution_model() -> Any:
    """pymatgen's SubstitutionProbability (takes seconds to load, so loaded once)."""
    from pymatgen.analysis.structure_prediction.substitution_probability import (
        SubstitutionProbability,
    )

    return SubstitutionProbability()


@lru_cache(maxsize=1)
def _substitution_table() -> tuple[tuple[tuple[str, int], ...], dict[tuple[str, int], float],
                                   dict[frozenset[tuple[str, int]], float], float]:
    """The model as plain data: its ions, P(x) per ion, lambda per ion pair, alpha.

    ``cond_prob`` on pymatgen ``Species`` objects costs ~25 µs a call (hashing and
    comparing them), and a parent ion is scored against every ion of the model.
    """
    model = substitution_model()
    ions = tuple(sorted((s.symbol, int(s.oxi_state)) for s in model.species))
    px = {(s.symbol, int(s.oxi_state)): float(model.get_px(s)) for s in model.species}
    lambdas = {frozenset((s.symbol, int(s.oxi_state)) for s in pair): float(value)
               for pair, value in model.as_dict()["init_args"]["lambda_table"].items()}
    return ions, px, lambdas, float(model.alpha)


@lru_cache(maxsize=4096)
def substitutes(element: str, charge: int, threshold: float,
                limit: int) -> tuple[tuple[str, int, float], ...]:
    """Likely (element, charge, P(sub | original)) replacing ``element``+``charge``, best first."""
    ions, px, lambdas, alpha = _substitution_table()
    original = (element, charge)
    if original not in px:
        return ()
    scored = []
    for other in ions:
        if other[0] == element:
            continue
        # pymatgen's cond_prob: exp(lambda(other, original)) / P(original). pymatgen sums
        # P over a set, in an order that depends on the process's hash seed: the last
        # bits differ between processes. Rounded, the value (and the candidates' params
        # and ranking) is the same in every service process.
        lam = lambdas.get(frozenset((other, original)), alpha)
        probability = float(f"{math.exp(lam) / px[original]:.12g}")
        if probability >= threshold:
            scored.append((other[0], other[1], probability))
    scored.sort(key=lambda item: (-item[2], item[0], item[1]))
    return tuple(scored[:limit])


# -- parent symmetry ---------------------------------------------------------------


@dataclass
class ParentSymmetry:
    """A parent's symmetry as permutations of its sites."""

    spacegroup: int
    permutations: np.ndarray  # G x N: op g moves site i onto site permutations[g, i]
    # The same for the bare site set (species ignored): often a bigger group. Outcomes
    # it maps onto each other are congruent, hence one crystal.
    site_permutations: np.ndarray
    orbits: list[np.ndarray]  # site indices of each orbit, in order of first site
    wyckoffs: list[str]  # e.g. '3c' per orbit
    # What the symmetry of a partition of the sites is derived from, or None where the
    # derivation does not give spglib's answer for the parent itself (then spglib runs).
    partition_ops: partitions.CandidateOps | None = None


def site_permutations(crystal: Crystal, rotations: np.ndarray, translations: np.ndarray,
                      symprec: float, labels: Sequence[Any]) -> np.ndarray:
    """G x N: where each operation sends each site (ops that misplace a site are dropped)."""
    frac = crystal.frac_array
    lattice = crystal.lattice_array
    perms = []
    tolerance = 3 * symprec
    for rotation, shift in zip(rotations, translations, strict=True):
        moved = frac @ rotation.T + shift
        delta = moved[:, None, :] - frac[None, :, :]
        delta -= np.round(delta)
        dist = np.linalg.norm(delta @ lattice, axis=2)
        target = dist.argmin(axis=1)
        same_label = all(labels[j] == labels[i] for i, j in enumerate(target))
        if dist[np.arange(len(frac)), target].max() > tolerance or not same_label:
            continue  # spglib's tolerant op does not map sites one-to-one here: drop it
        if len(set(target.tolist())) != len(frac):
            continue
        perms.append(target)
    return np.array(perms, dtype=np.int64).reshape(-1, len(frac))


def parent_symmetry(crystal: Crystal, symprec: float,
                    dataset: Any = None) -> ParentSymmetry | None:
    """``dataset``: spglib's symmetry dataset of ``crystal`` at ``symprec``, if known."""
    numbers = [atomic_numbers[s] for s in crystal.species]
    cell = dedup.spglib_cell(crystal.lattice_array, crystal.frac_array, numbers)
    data = dataset if dataset is not None else spglib.get_symmetry_dataset(cell,
                                                                          symprec=symprec)
    bare = spglib.get_symmetry(dedup.spglib_cell(crystal.lattice_array, crystal.frac_array,
                                                 [1] * crystal.num_sites), symprec=symprec)
    if data is None or bare is None:
        return None
    perms = site_permutations(crystal, data.rotations, data.translations, symprec, numbers)
    site_perms = site_permutations(crystal, bare["rotations"], bare["translations"], symprec,
                                   [1] * crystal.num_sites)
    equivalent = data.equivalent_atoms.tolist()
    representatives = list(dict.fromkeys(equivalent))
    orbits = [np.array([i for i, e in enumerate(equivalent) if e == rep])
              for rep in representatives]
    wyckoffs = [f"{len(orbit)}{data.wyckoffs[orbit[0]]}" for orbit in orbits]
    ops = partitions.candidate_ops(crystal.lattice_array, crystal.frac_array, symprec)
    if not partitions.agrees_with(ops, dedup.species_labels(crystal.species), int(data.number),
                                  len(data.rotations)):
        ops = None
    return ParentSymmetry(int(data.number), perms, site_perms, orbits, wyckoffs, ops)


def distinct_subsets(orbit: np.ndarray, permutations: np.ndarray,
                     size: int) -> list[tuple[int, ...]]:
    """One representative per symmetry class of ``size``-subsets of ``orbit``."""
    seen: set[tuple[int, ...]] = set()
    result = []
    for subset in itertools.combinations(orbit.tolist(), size):
        images = permutations[:, list(subset)]
        canonical = min(tuple(sorted(row)) for row in images.tolist())
        if canonical not in seen:
            seen.add(canonical)
            result.append(canonical)
    return result


# -- moves and outcomes ------------------------------------------------------------


@dataclass(frozen=True)
class Move:
    orbit: int
    sites: tuple[int, ...]
    element: str
    charge: int
    probability: float
    charge_change: int  # total charge added to the cell by this move


@dataclass
class _Parent:
    crystal: Crystal
    parent_id: str
    symmetry: ParentSymmetry
    charges: list[int]
    distances: np.ndarray
    partition_cache: dict[bytes, dedup.SymmetryInfo] = field(default_factory=dict)

    @property
    def volume(self) -> float:
        if self._volume is None:
            self._volume = self.crystal.volume_angstrom3
        return self._volume

    _volume: float | None = None


def _orbit_moves(parent: _Parent, config: SapsConfig) -> list[Move]:
    moves = []
    symmetry = parent.symmetry
    for index, orbit in enumerate(symmetry.orbits):
        element = parent.crystal.species[orbit[0]]
        charge = parent.charges[orbit[0]]
        options = substitutes(element, charge, config.threshold, config.max_substitutes)
        subsets: list[tuple[int, ...]] = [tuple(orbit.tolist())]
        if config.partial and 2 <= len(orbit) <= config.max_partial_orbit:
            for size in range(1, len(orbit)):
                if config.use_symmetry:
                    subsets += distinct_subsets(orbit, symmetry.permutations, size)
                else:
                    subsets += list(itertools.combinations(orbit.tolist(), size))
        for new_element, new_charge, probability in options:
            for sites in subsets:
                moves.append(Move(index, sites, new_element, new_charge, probability,
                                  (new_charge - charge) * len(sites)))
    return moves


def _balanced_combinations(moves: Sequence[Move], max_moves: int) -> Iterator[tuple[Move, ...]]:
    """Sets of moves on distinct orbits whose charge changes cancel.

    Pairs are matched through a charge-change index rather than by trying every pair
    (a 20-site parent can have thousands of moves).
    """
    yield from ((m,) for m in moves if m.charge_change == 0)
    if max_moves < 2:
        return
    by_change: dict[int, list[tuple[int, Move]]] = defaultdict(list)
    for index, move in enumerate(moves):
        by_change[move.charge_change].append((index, move))
    for change in sorted(by_change):
        if change < 0:
            continue
        for i, first in by_change[change]:
            for j, second in by_change.get(-change, ()):
                if (change == 0 and j <= i) or first.orbit == second.orbit:
                    continue
                yield (first, second) if i < j else (second, first)
    for count in range(3, max_moves + 1):  # rarely wanted: the plain search
        for combo in itertools.combinations(moves, count):
            if sum(m.charge_change for m in combo) == 0 and \
                    len({m.orbit for m in combo}) == count:
                yield combo


def _score(combo: tuple[Move, ...]) -> float:
    return math.prod(m.probability for m in combo)


def _canonical(codes: np.ndarray, permutations: np.ndarray) -> bytes:
    images = codes[permutations]  # G x N species codes after each op
    order = np.lexsort(images.T[::-1])
    return images[order[0]].tobytes()


def _volume_scale(parent: _Parent, combo: tuple[Move, ...]) -> float:
    states = dict(zip(parent.crystal.species, parent.charges, strict=True))
    old = sum(chem.ion_radius(s, states[s]) ** 3 for s in parent.crystal.species)
    new = old
    for move in combo:
        before = parent.crystal.species[move.sites[0]]
        r_before = chem.ion_radius(before, states[before]) ** 3
        r_after = chem.ion_radius(move.element, move.charge) ** 3
        new += len(move.sites) * (r_after - r_before)
    return (new / old) ** (1.0 / 3.0)


def _signature(parent: _Parent, species: list[str], crystal: Crystal,
               symprec: float) -> dedup.Signature:
    """Dedup signature without a spglib call per candidate.

    A crystal's symmetry depends only on its geometry and on which sites share a
    species, not on which species they are; outcomes of one parent share the geometry
    (up to scale), so the symmetry is found once per distinct site partition (from the
    parent's operations, or by spglib where that is ambiguous) and reused for every
    outcome with that partition.
    """
    labels = dedup.species_labels(species)
    key = labels.tobytes()
    info = parent.partition_cache.get(key)
    if info is None:
        ops = parent.symmetry.partition_ops
        info = ops.partition_info(labels) if ops is not None else None
        if info is None:
            info = dedup.symmetry_info(parent.crystal.lattice_array,
                                       parent.crystal.frac_array, labels, symprec)
        parent.partition_cache[key] = info
    # Scaling the cell does not change the scale-free profile: use the parent's distances.
    profile = dedup.nn_profile(species, parent.distances, parent.volume)
    return dedup.build_signature(species, labels, info, profile)


def primitive_cell(crystal: Crystal, symprec: float) -> Crystal:
    """The primitive cell (a supercell's own operations miss some of the crystal's)."""
    numbers = [atomic_numbers[s] for s in crystal.species]
    found = spglib.standardize_cell(
        dedup.spglib_cell(crystal.lattice_array, crystal.frac_array, numbers),
        to_primitive=True, no_idealize=True, symprec=symprec)
    if found is None or len(found[2]) >= crystal.num_sites:
        return crystal
    lattice, positions, types = found
    return Crystal.from_arrays(lattice, [chemical_symbols[z] for z in types], positions)


def _prepare_parent(crystal: Crystal, parent_id: str, config: SapsConfig) -> _Parent | str:
    """The parent ready for substitution, or the reason it cannot be used."""
    if crystal.num_sites > config.max_parent_sites:
        return "too_many_sites"
    guess = chem.oxidation_guess(chem.formula_key(crystal.species))
    if guess is None:
        return "no_oxidation_states"
    states = dict(guess)
    if not all(float(q).is_integer() for q in states.values()):
        return "mixed_valence"
    # Most parents (Materials Project cells) are primitive already: the dataset that says
    # so is the one parent_symmetry needs, and the standardisation is skipped.
    dataset = spglib.get_symmetry_dataset(
        dedup.spglib_cell(crystal.lattice_array, crystal.frac_array,
                          [atomic_numbers[s] for s in crystal.species]), symprec=config.symprec)
    if dataset is None or len(set(dataset.mapping_to_primitive.tolist())) < crystal.num_sites:
        crystal, dataset = primitive_cell(crystal, config.symprec), None
    symmetry = parent_symmetry(crystal, config.symprec, dataset)
    if symmetry is None or len(symmetry.permutations) == 0:
        return "no_symmetry"
    if not config.use_symmetry:
        n = crystal.num_sites
        symmetry = replace(symmetry, permutations=np.arange(n)[None, :],
                           site_permutations=np.arange(n)[None, :], partition_ops=None)
    return _Parent(crystal, parent_id, symmetry, [int(states[s]) for s in crystal.species],
                   filters.pair_distances(crystal))


@dataclass
class Proposal:
    """A candidate that passed the validity filters, with its dedup signature."""

    candidate: Candidate
    signature: dedup.Signature


def substitute_parent(
    crystal: Crystal,
    parent_id: str,
    config: SapsConfig | None = None,
    filter_config: FilterConfig | None = None,
    seed: int = 0,
) -> tuple[list[Proposal], BatchReport]:
    """The valid SAPS outcomes of one parent, most likely first, with dedup signatures.

    Not deduplicated (``generate`` does that); the report counts ``generated`` and the
    filter rejections only. Parents without integer oxidation states, or larger than
    ``max_parent_sites``, give nothing.
    """
    config = config or SapsConfig()
    filter_config = filter_config or FilterConfig()
    report = BatchReport()
    prepared = _prepare_parent(crystal, parent_id, config)
    if isinstance(prepared, str):
        return [], report
    parent = prepared
    moves = _orbit_moves(parent, config)
    combos = sorted(_balanced_combinations(moves, config.max_moves), key=_score, reverse=True)
    element_codes: dict[str, int] = {}
    parent_key = parent.crystal.content_key()  # ids may repeat; geometry is what counts
    seen: set[bytes] = set()
    proposals: list[Proposal] = []
    for combo in combos:
        if config.max_per_parent is not None and len(seen) >= config.max_per_parent:
            break
        species = list(parent.crystal.species)
        for move in combo:
            for site in move.sites:
                species[site] = move.element
        codes = np.array([element_codes.setdefault(s, len(element_codes)) for s in species])
        canonical = _canonical(codes, parent.symmetry.site_permutations)
        if canonical in seen:
            continue  # a symmetry of the site set maps it onto an outcome we already have
        seen.add(canonical)
        if config.elements is not None and not all(m.element in config.elements
                                                    for m in combo):
            report.outside_elements += 1
            continue
        report.generated += 1
        scale = _volume_scale(parent, combo) if config.scale_volume else 1.0
        # The parent's coordinates as they are (Crystal.from_arrays would rebuild the
        # same tuples of floats from arrays, per candidate).
        candidate_crystal = Crystal(
            tuple(map(tuple, (parent.crystal.lattice_array * scale).tolist())),  # type: ignore[arg-type]
            tuple(species), parent.crystal.frac_coords)
        reason = _rejection(candidate_crystal, parent.distances * scale, filter_config)
        if reason is not None:
            report.count(reason)
            continue
        params = {
            "substitutions": [
                {
                    "wyckoff": parent.symmetry.wyckoffs[m.orbit],
                    "from": _ion(parent.crystal.species[m.sites[0]], parent.charges[m.sites[0]]),
                    "to": _ion(m.element, m.charge),
                    "sites": list(m.sites),
                    "whole_orbit": len(m.sites) == len(parent.symmetry.orbits[m.orbit]),
                }
                for m in combo
            ],
            "probability": _score(combo),
            "volume_scale": scale,
            "parent_spacegroup": parent.symmetry.spacegroup,
        }
        candidate = Candidate(candidate_crystal, METHOD, (parent_id,), params, seed)
        signature = replace(_signature(parent, species, candidate_crystal, config.symprec),
                            origin=(parent_key, canonical))
        proposals.append(Proposal(candidate, signature))
    return proposals, report


def _ion(element: str, charge: int) -> str:
    sign = "+" if charge > 0 else "-"
    return f"{element}{abs(charge) if abs(charge) != 1 else ''}{sign if charge else ''}"


def _rejection(crystal: Crystal, distances: np.ndarray, config: FilterConfig) -> str | None:
    # Same checks as filters.rejection_reason, reusing the parent's (scaled) distances.
    if config.require_charge_balance and not chem.is_charge_balanced(crystal.species):
        return "not_charge_balanced"
    if filters.too_close_from_distances(crystal.species, distances, config):
        return "too_close"
    if filters.bad_density(crystal, config):
        return "bad_density"
    return None


# -- batches over many parents -----------------------------------------------------


MATCHER_FIRST = 3  # pairs of a parent that go to the matcher before the near test is made


class _NearSymmetryTest:
    """``Deduplicator.origin_test`` for the outcomes of one parent (all in its geometry).

    The parent's near-symmetries are found on first use: most parents never need them.
    """

    def __init__(self) -> None:
        self._near: partitions.NearOperations | None = None
        self._calls = 0

    def __call__(self, crystal: Crystal, sig: dedup.Signature, other: Crystal) -> bool:
        if sig.fingerprint.primitive_sites != crystal.num_sites:
            return True  # the matcher compares smaller cells than the parent's: ask it
        self._calls += 1
        if self._calls <= MATCHER_FIRST:
            return True  # a few matcher calls cost less than finding the near-symmetries
        if self._near is None:
            self._near = partitions.near_operations(crystal.lattice_array, crystal.frac_array)
        return self._near.may_match(crystal.species, other.species)


def _work(args: tuple[str, Crystal, SapsConfig, FilterConfig, int, bool]) -> tuple[
        list[Proposal], BatchReport]:
    parent_id, crystal, config, filter_config, seed, use_fingerprint = args
    proposals, report = substitute_parent(crystal, parent_id, config, filter_config, seed)
    if config.use_symmetry:
        # Match a parent's outcomes against each other here, in the worker: the main
        # process then only compares them with other parents' and known crystals.
        local = dedup.Deduplicator(symprec=config.symprec, use_fingerprint=use_fingerprint,
                                   origin_test=_NearSymmetryTest() if use_fingerprint else None)
        unique = []
        for proposal in proposals:
            if local.add(proposal.candidate.candidate_id, proposal.candidate.crystal,
                         proposal.signature):
                report.duplicate += 1
            else:
                unique.append(proposal)
        proposals = unique
    return proposals, report


def generate(
    parents: Iterable[tuple[str, Crystal]],
    n: int | None = None,
    seed: int = 0,
    config: SapsConfig | None = None,
    filter_config: FilterConfig | None = None,
    deduplicator: dedup.Deduplicator | None = None,
    workers: int = 1,
    progress: bool = False,
) -> tuple[list[Candidate], BatchReport]:
    """Valid, unique SAPS candidates from ``parents`` (in the given order) until ``n``.

    Parents are substituted in parallel when ``workers > 1``; deduplication runs here in
    parent order, so the result does not depend on ``workers``.
    """
    report = BatchReport()
    out = list(iter_generate(parents, n, seed, config, filter_config, deduplicator, workers,
                             progress, report))
    return out, report


def iter_generate(
    parents: Iterable[tuple[str, Crystal]],
    n: int | None = None,
    seed: int = 0,
    config: SapsConfig | None = None,
    filter_config: FilterConfig | None = None,
    deduplicator: dedup.Deduplicator | None = None,
    workers: int = 1,
    progress: bool = False,
    report: BatchReport | None = None,
) -> Iterator[Candidate]:
    """:func:`generate`, yielding each candidate as soon as it is known to be unique.

    A consumer (the generator service) can pass candidates on while later parents are
    still being substituted. Counts accumulate in ``report`` as the iteration goes.
    """
    config = config or SapsConfig()
    filter_config = filter_config or FilterConfig()
    report = report if report is not None else BatchReport()
    if deduplicator is None:
        deduplicator = dedup.Deduplicator(use_fingerprint=config.use_symmetry)
    _substitution_table()  # load before forking so workers share it
    jobs = ((pid, c, config, filter_config, seed, deduplicator.use_fingerprint)
            for pid, c in parents)
    found = 0
    with ordered_map(workers, chunksize=4) as mapper:
        results = mapper(_work, jobs)
        for proposals, parent_report in parallel.progress(results, progress, unit="parent",
                                                          desc="saps"):
            report.merge(parent_report)
            for index, proposal in enumerate(proposals):
                candidate = proposal.candidate
                if deduplicator.add(candidate.candidate_id, candidate.crystal,
                                    proposal.signature if config.use_symmetry else None,
                                    origin_checked=config.use_symmetry):
                    report.duplicate += 1
                    continue
                report.valid += 1
                found += 1
                yield candidate
                if n is not None and found >= n:
                    report.generated -= len(proposals) - index - 1  # never looked at
                    return
