"""AIRSS-style random structure search: random symmetric crystals for a composition.

Each attempt ``i`` draws, from its own generator seeded with ``(seed, i)``, a number of
formula units and a space group compatible with that stoichiometry, and asks PyXtal for
a random crystal with that symmetry (PyXtal keeps atoms apart with its tolerance
matrix). The cell is then scaled to a volume estimate from ionic radii (atomic radii
for metals; ``chem.estimate_volume``) times a random factor in ``volume_jitter`` -- or,
where that would push atoms closer than the filters allow, to the smallest volume that
does not -- and handed to an optional relaxation hook. Attempts are independent, so they run in
parallel and the result is the same for any number of workers.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol

import numpy as np
from ase.data import atomic_numbers

from materialabs.crystals import Crystal
from materialabs.generate import chem, dedup, filters
from materialabs.generate.candidate import Candidate
from materialabs.generate.filters import BatchReport, FilterConfig
from materialabs.generate.parallel import WorkerPool

METHOD = "airss"


class Relaxer(Protocol):
    """Relaxation hook: a universal potential or DFT later; none by default."""

    name: str

    def relax(self, crystal: Crystal) -> Crystal:
        """Return the relaxed crystal (same species, any cell and positions)."""


@dataclass(frozen=True)
class AirssConfig:
    formula_units: tuple[int, ...] = (1, 2)  # per conventional cell
    space_groups: tuple[int, ...] | None = None  # None: every compatible group 2-230
    volume_jitter: tuple[float, float] = (0.9, 1.15)
    max_attempts_per_candidate: int = 6  # gives up after n * this many attempts
    pyxtal_max_count: int = 3  # PyXtal's own retries per attempt


def parse_composition(formula: str) -> tuple[tuple[str, ...], tuple[int, ...]]:
    """('Sr', 'Ti', 'O'), (1, 1, 3) for 'SrTiO3'; raises ValueError naming the formula."""
    from pymatgen.core import Composition

    try:
        amounts = Composition(formula).get_el_amt_dict()
    except Exception as error:  # pymatgen raises several types for bad formulas
        raise ValueError(f"composition {formula!r}: not a chemical formula ({error})") from None
    unknown = [el for el in amounts if el not in atomic_numbers]
    if unknown:
        raise ValueError(f"composition {formula!r}: not a chemical formula "
                         f"({unknown[0]!r} is not an element)")
    if not amounts or not all(float(v).is_integer() for v in amounts.values()):
        raise ValueError(f"composition {formula!r}: expected whole numbers of atoms")
    species = tuple(amounts)
    counts = tuple(int(amounts[s]) for s in species)
    key = chem.formula_key(s for s, n in zip(species, counts, strict=True) for _ in range(n))
    return tuple(el for el, _ in key), tuple(n for _, n in key)


@lru_cache(maxsize=256)
def compatible_space_groups(counts: tuple[int, ...]) -> tuple[int, ...]:
    """Space groups (2-230) whose Wyckoff positions can hold exactly these atom counts."""
    from pyxtal.symmetry import Group

    groups = []
    for number in range(2, 231):
        compatible, _ = Group(number).check_compatible(list(counts))
        if compatible:
            groups.append(number)
    return tuple(groups)


@dataclass(frozen=True)
class _Job:
    species: tuple[str, ...]
    counts: tuple[int, ...]
    config: AirssConfig
    seed: int
    relaxer: Relaxer | None


def _choices(job: _Job) -> list[tuple[int, tuple[int, ...], tuple[int, ...]]]:
    """(formula units, atom counts, groups) for each allowed number of formula units."""
    options = []
    for units in job.config.formula_units:
        counts = tuple(n * units for n in job.counts)
        groups = compatible_space_groups(counts)
        if job.config.space_groups is not None:
            groups = tuple(g for g in groups if g in job.config.space_groups)
        if groups:
            options.append((units, counts, groups))
    return options


def _scale_to(crystal: Crystal, volume: float, filter_config: FilterConfig) -> Crystal:
    """Scale to ``volume``, or to the smallest larger volume at which no atoms clash."""
    scale = (volume / crystal.volume_angstrom3) ** (1.0 / 3.0)
    limits = filters.distance_limits(crystal.species, filter_config)
    clash_free = float((limits / filters.pair_distances(crystal)).max()) * 1.02
    return Crystal.from_arrays(crystal.lattice_array * max(scale, clash_free), crystal.species,
                               crystal.frac_array)


@lru_cache(maxsize=1)
def _speed_up_pyxtal() -> None:
    """Share one default tolerance matrix inside PyXtal's image check.

    ``pyxtal.operations.check_images`` builds a fresh ``Tol_matrix()`` (a 100x100
    Python loop, ~7 ms) on every call although it only reads it, and it is called
    hundreds of times per crystal: over half of AIRSS's time. The shared matrix is
    only read, so handing out one instance per (prototype, factor) is safe.
    """
    from pyxtal import operations
    from pyxtal.tolerance import Tol_matrix

    @lru_cache(maxsize=16)
    def shared(*tuples: Any, prototype: str = "atomic", factor: float = 1.0) -> Tol_matrix:
        return Tol_matrix(*tuples, prototype=prototype, factor=factor)

    operations.Tol_matrix = shared


@lru_cache(maxsize=1)
def _default_tolerance() -> Any:
    from pyxtal.tolerance import Tol_matrix

    return Tol_matrix(prototype="atomic")


def random_crystal(
    job: _Job, attempt: int, filter_config: FilterConfig | None = None
) -> tuple[Crystal, dict[str, Any]] | None:
    """Attempt ``attempt`` of the batch: a random symmetric crystal, or None if PyXtal fails."""
    from pyxtal import pyxtal

    _speed_up_pyxtal()
    filter_config = filter_config or FilterConfig()
    rng = np.random.default_rng([job.seed, attempt])
    options = _choices(job)
    units, counts, groups = options[int(rng.integers(len(options)))]
    group = int(groups[int(rng.integers(len(groups)))])
    species = [s for s, n in zip(job.species, counts, strict=True) for _ in range(n)]
    target_volume = chem.estimate_volume(species) * float(rng.uniform(*job.config.volume_jitter))
    generator = pyxtal()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            generator.from_random(3, group, list(job.species), list(counts), factor=1.0,
                                  random_state=rng, max_count=job.config.pyxtal_max_count,
                                  tm=_default_tolerance())
            structure = generator.to_pymatgen()
    except Exception:  # PyXtal signals "could not place atoms" with several exception types
        return None
    crystal = _scale_to(Crystal.from_structure(structure),
                        target_volume * len(structure) / len(species), filter_config)
    params: dict[str, Any] = {
        "composition": chem.reduced_formula(chem.formula_key(species)),
        "formula_units": units,
        "space_group_drawn": group,
        "volume_angstrom3": crystal.volume_angstrom3,
        "attempt": attempt,
    }
    if job.relaxer is not None:
        crystal = job.relaxer.relax(crystal)
        params["relaxer"] = job.relaxer.name
    return crystal, params


def _attempt(args: tuple[_Job, int, FilterConfig]) -> tuple[
        int, Crystal | None, dict[str, Any], str | None, dedup.Signature | None]:
    job, attempt, filter_config = args
    made = random_crystal(job, attempt, filter_config)
    if made is None:
        return attempt, None, {}, "generator_failed", None
    crystal, params = made
    reason = filters.rejection_reason(crystal, filter_config)
    signature = dedup.signature(crystal) if reason is None else None
    return attempt, crystal, params, reason, signature


def generate(
    composition: str,
    n: int,
    seed: int = 0,
    config: AirssConfig | None = None,
    filter_config: FilterConfig | None = None,
    deduplicator: dedup.Deduplicator | None = None,
    relaxer: Relaxer | None = None,
    workers: int = 1,
    progress: bool = False,
    pool: WorkerPool | None = None,
) -> tuple[list[Candidate], BatchReport]:
    """Up to ``n`` valid, unique random crystals of ``composition`` (e.g. 'SrTiO3').

    Attempts are computed in rounds (in parallel with ``workers`` processes, or on a
    ``pool`` shared between calls) and taken in attempt order until ``n`` are found,
    so the result does not depend on the number of workers.
    """
    config = config or AirssConfig()
    filter_config = filter_config or FilterConfig()
    if deduplicator is None:
        deduplicator = dedup.Deduplicator(symmetry_buckets=False)
    species, counts = parse_composition(composition)
    job = _Job(species, counts, config, seed, relaxer)
    if not _choices(job):
        raise ValueError(f"composition {composition!r}: no space group 2-230 fits "
                         f"{config.formula_units} formula units")
    flat = [s for s, k in zip(species, counts, strict=True) for _ in range(k)]
    if filter_config.require_charge_balance and not chem.is_charge_balanced(flat):
        raise ValueError(f"composition {composition!r}: not charge balanced with common "
                         "oxidation states (set require_charge_balance=False for intermetallics)")
    if pool is None:
        with WorkerPool(workers) as own_pool:
            return _search(job, n, filter_config, deduplicator, own_pool, progress)
    return _search(job, n, filter_config, deduplicator, pool, progress)


def _search(job: _Job, n: int, filter_config: FilterConfig, deduplicator: dedup.Deduplicator,
            pool: WorkerPool, progress: bool) -> tuple[list[Candidate], BatchReport]:
    report = BatchReport()
    out: list[Candidate] = []
    limit = n * job.config.max_attempts_per_candidate
    bar = _bar(n, progress)
    attempt = 0
    while len(out) < n and attempt < limit:
        # Most attempts succeed, so ask for what is missing plus one per worker.
        size = min(limit - attempt, n - len(out) + max(pool.workers, 1))
        tasks = [(job, i, filter_config) for i in range(attempt, attempt + size)]
        attempt += size
        for _, crystal, params, reason, signature in pool.map(_attempt, tasks):
            if crystal is None:
                report.generator_failed += 1
                continue
            report.generated += 1
            if reason is not None:
                report.count(reason)
                continue
            candidate = Candidate(crystal, METHOD, (), params, job.seed)
            if deduplicator.add(candidate.candidate_id, crystal, signature):
                report.duplicate += 1
                continue
            report.valid += 1
            out.append(candidate)
            if bar is not None:
                bar.update(1)
            if len(out) >= n:
                break
    if bar is not None:
        bar.close()
    return out, report


def generate_many(compositions: Sequence[str], n_each: int, seed: int = 0,
                  workers: int = 1, **kwargs: Any
                  ) -> Iterator[tuple[str, list[Candidate], BatchReport]]:
    """``generate`` for several compositions: one shared deduplicator and process pool."""
    deduplicator = kwargs.pop("deduplicator", None)
    if deduplicator is None:
        deduplicator = dedup.Deduplicator(symmetry_buckets=False)
    with WorkerPool(workers) as pool:
        for composition in compositions:
            found, report = generate(composition, n_each, seed, deduplicator=deduplicator,
                                     pool=pool, **kwargs)
            yield composition, found, report


def _bar(total: int, enabled: bool) -> Any:
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="crystal", desc="airss")
