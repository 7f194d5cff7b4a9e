"""The crystal as it travels between services: lattice (Å), species, fractional coordinates.

pymatgen's ``Structure`` is the in-memory working object; ``Crystal`` is the small,
immutable, hashable record that goes into events, tables and content keys (no CIF text
on the hot path). Conversions live here and nowhere else, and so do the crystal's derived
labels (reduced formula, space group) and the limits every crystal from outside must meet.

Limits. A crystal from a lab's file or an event is checked by :func:`structure_problems`
(cheap, linear in the number of sites) before anything costly runs on it, and the periodic
neighbour search (:func:`periodic_pairs`) refuses on its own any input whose search would
not fit in memory. docs/labs.md lists the limits.
"""

from __future__ import annotations

import hashlib
import json
import math
import warnings
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from pymatgen.core import Structure

# Rounding used only for the content key: enough to separate real structures,
# coarse enough that a float round-trip through Avro/JSON gives the same key.
_KEY_DECIMALS = 5

# --- limits -------------------------------------------------------------------------------

MAX_SITES = 2000
MAX_CELL_EDGE_ANGSTROM = 1000.0
# Real cells have lattice planes >= ~1 Å apart; flatter ones are degenerate (and would
# make a periodic search enumerate millions of images).
MIN_PLANE_SPACING_ANGSTROM = 0.5
MIN_VOLUME_PER_ATOM = 1.0  # Å^3; denser than anything known at ambient pressure (~4 Å^3)
# One atom in a 21.5 Å box; real crystals stay under ~150 Å^3 (MP's largest is 134),
# slabs and molecule-in-a-box references under a few thousand.
MAX_VOLUME_PER_ATOM = 10_000.0
# Fractional coordinates may lie a few cells out (unwrapped MD frames); 1e6 is an error,
# and wrapping it into [0, 1) would only hide it (and lose all its digits).
MAX_ABS_FRACTIONAL = 100.0
# Closer than this, two atoms overlap: the shortest real bond (H-H in H2) is 0.74 Å.
MIN_DISTANCE_ANGSTROM = 0.5
# Periodic images of atoms one neighbour search may enumerate (~40 bytes each).
MAX_SEARCH_POINTS = 4_000_000
# pymatgen's cell-list search allocates one bin per radius-sized cube of the cell.
_MAX_SEARCH_BINS = 1_000_000

_ELEMENT_SYMBOLS = """
H He Li Be B C N O F Ne Na Mg Al Si P S Cl Ar K Ca Sc Ti V Cr Mn Fe Co Ni Cu Zn Ga Ge As
Se Br Kr Rb Sr Y Zr Nb Mo Tc Ru Rh Pd Ag Cd In Sn Sb Te I Xe Cs Ba La Ce Pr Nd Pm Sm Eu Gd
Tb Dy Ho Er Tm Yb Lu Hf Ta W Re Os Ir Pt Au Hg Tl Pb Bi Po At Rn Fr Ra Ac Th Pa U Np Pu Am
Cm Bk Cf Es Fm Md No Lr Rf Db Sg Bh Hs Mt Ds Rg Cn Nh Fl Mc Lv Ts Og
"""
ELEMENTS = frozenset(_ELEMENT_SYMBOLS.split())


class SearchTooLarge(ValueError):
    """A neighbour search that would enumerate more periodic images than memory allows."""


@dataclass(frozen=True)
class Crystal:
    """A periodic crystal: ``lattice`` rows are the cell vectors in Å."""

    lattice: tuple[tuple[float, float, float], ...]
    species: tuple[str, ...]
    frac_coords: tuple[tuple[float, float, float], ...]

    def __post_init__(self) -> None:
        if len(self.lattice) != 3 or any(len(row) != 3 for row in self.lattice):
            raise ValueError(f"lattice: expected 3x3 Å matrix, got {self.lattice!r}")
        if len(self.species) != len(self.frac_coords):
            raise ValueError(
                f"species/frac_coords: expected equal lengths, got "
                f"{len(self.species)} species and {len(self.frac_coords)} coordinates"
            )
        if not self.species:
            raise ValueError("species: expected at least one site, got none")

    # -- construction -------------------------------------------------------------
    @classmethod
    def from_arrays(cls, lattice: Any, species: Any, frac_coords: Any) -> Crystal:
        lat = np.asarray(lattice, dtype=float).reshape(3, 3)
        frac = np.asarray(frac_coords, dtype=float).reshape(-1, 3)
        # tolist() gives the same Python floats as float() of each element, made in C
        # (the predictor rebuilds a crystal from every event).
        return cls(
            lattice=tuple(map(tuple, lat.tolist())),  # type: ignore[arg-type]
            species=tuple(map(str, species)),
            frac_coords=tuple(map(tuple, frac.tolist())),  # type: ignore[arg-type]
        )

    @classmethod
    def from_structure(cls, structure: Structure) -> Crystal:
        species = [site.specie.symbol if hasattr(site.specie, "symbol") else str(site.specie)
                   for site in structure]
        return cls.from_arrays(structure.lattice.matrix, species, structure.frac_coords)

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Crystal:
        """Inverse of :meth:`as_record` (the Avro ``Crystal`` record).

        For records from outside use crystal_io.crystal_from_record, which checks types
        and sizes before building anything.
        """
        return cls.from_arrays(
            np.asarray(record["lattice_angstrom"], dtype=float).reshape(3, 3),
            record["species"],
            np.asarray(record["frac_coords"], dtype=float).reshape(-1, 3),
        )

    # -- views --------------------------------------------------------------------
    def as_record(self) -> dict[str, Any]:
        """Flat record for events: row-major 3x3 lattice (Å), species, flat fractional coords."""
        return {
            "lattice_angstrom": [x for row in self.lattice for x in row],
            "species": list(self.species),
            "frac_coords": [x for row in self.frac_coords for x in row],
        }

    def to_structure(self) -> Structure:
        from pymatgen.core import Lattice, Structure

        return Structure(Lattice(self.lattice), list(self.species), list(self.frac_coords))

    @property
    def lattice_array(self) -> np.ndarray:
        return np.asarray(self.lattice, dtype=float)

    @property
    def frac_array(self) -> np.ndarray:
        return np.asarray(self.frac_coords, dtype=float)

    @property
    def num_sites(self) -> int:
        return len(self.species)

    @property
    def volume_angstrom3(self) -> float:
        return float(abs(np.linalg.det(self.lattice_array)))

    @property
    def elements(self) -> tuple[str, ...]:
        return tuple(sorted(set(self.species)))

    @property
    def chemical_system(self) -> str:
        """Elements joined by '-' in alphabetical order, as pymatgen writes it (e.g. 'O-Sr-Ti')."""
        return "-".join(self.elements)

    @property
    def reduced_formula(self) -> str:
        """pymatgen's reduced formula (e.g. 'SrTiO3'), as the datasets' column spells it."""
        return reduced_formula(self.species)

    def spacegroup_number(self, symprec: float = 0.1) -> int | None:
        """International space-group number found by spglib (None where spglib gives up).

        symprec 0.1 Å and an angle tolerance of 5°, pymatgen's SpacegroupAnalyzer settings
        with the tolerance the Materials Project labels its data with.
        """
        import spglib

        numbers = {s: i for i, s in enumerate(self.elements, start=1)}
        cell: Any = (self.lattice_array, self.frac_array,  # spglib's stubs want lists
                     [numbers[s] for s in self.species])
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # spglib's deprecation and error-mode notices
                dataset = spglib.get_symmetry_dataset(cell, symprec=symprec, angle_tolerance=5.0)
        except Exception:  # noqa: BLE001 - spglib raises on some degenerate cells
            return None
        return int(dataset.number) if dataset is not None else None

    def content_key(self) -> str:
        """A stable hex key for this exact record (Kafka message key, table key).

        Sites are sorted and coordinates wrapped into [0, 1) and rounded, so the same
        record serialised twice gets the same key. It does not recognise symmetry-equivalent
        settings: that is the generators' deduplication (fingerprint + StructureMatcher).
        """
        frac = np.round(np.mod(self.frac_array, 1.0), _KEY_DECIMALS) % 1.0
        sites = sorted(zip(self.species, map(tuple, frac.tolist()), strict=True))
        payload = {
            "lattice": np.round(self.lattice_array, _KEY_DECIMALS).tolist(),
            "sites": sites,
        }
        blob = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:32]


# --- composition --------------------------------------------------------------------------

FormulaKey = tuple[tuple[str, int], ...]


def formula_key(species: Iterable[str]) -> FormulaKey:
    """Reduced, sorted (element, count) pairs: a cheap hashable composition key."""
    counts = Counter(species)
    divisor = math.gcd(*counts.values())
    if divisor == 1:  # the usual case: skip the division
        return tuple(sorted(counts.items()))
    return tuple(sorted((el, n // divisor) for el, n in counts.items()))


@lru_cache(maxsize=65536)
def formula_of_key(key: FormulaKey) -> str:
    """pymatgen's reduced formula of a composition key (cached: the same few recur)."""
    from pymatgen.core import Composition

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. "no Pauling electronegativity for He"
        return Composition(dict(key)).reduced_formula


def reduced_formula(species: Iterable[str]) -> str:
    """pymatgen's reduced formula of a site list (e.g. 'SrTiO3')."""
    return formula_of_key(formula_key(species))


# OPTIMADE's spellings of the composition (the gateway serves them; the catalog stores them).


def descriptive_formula(species: Sequence[str]) -> str:
    """The site counts in order of first appearance, e.g. 'Sr1Ti1O3' -> 'SrTiO3'."""
    counts = Counter(species)
    return "".join(f"{el}{n if n > 1 else ''}" for el, n in counts.items())


def optimade_reduced_formula(species: Sequence[str]) -> str:
    """OPTIMADE's chemical_formula_reduced: elements alphabetical, counts divided by their
    gcd, 1 omitted ('O3SrTi'); pymatgen's reduced_formula ('SrTiO3') orders by
    electronegativity."""
    counts = Counter(species)
    divisor = math.gcd(*counts.values())
    return "".join(f"{el}{n // divisor if n // divisor > 1 else ''}"
                   for el, n in sorted(counts.items()))


def anonymous_formula(species: Sequence[str]) -> str:
    """OPTIMADE's chemical_formula_anonymous: reduced counts, largest first, named A, B, ..."""
    counts = Counter(species)
    divisor = math.gcd(*counts.values())
    numbers = sorted((n // divisor for n in counts.values()), reverse=True)
    return "".join(f"{_anonymous_name(i)}{n if n > 1 else ''}" for i, n in enumerate(numbers))


def _anonymous_name(index: int) -> str:
    """A, B, ..., Z, Aa, Ba, ..., Za, Ab, ... (the OPTIMADE spelling)."""
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    if index < 26:
        return letters[index]
    return letters[index % 26] + letters[index // 26 - 1].lower()


# --- checks -------------------------------------------------------------------------------


def plane_spacings(lattice: np.ndarray) -> np.ndarray:
    """Distances (Å) between neighbouring lattice planes parallel to each pair of cell
    vectors; (..., 3) for lattices (..., 3, 3)."""
    lattice = np.asarray(lattice, dtype=float)
    volumes = np.abs(np.linalg.det(lattice))
    normals = np.cross(lattice[..., [1, 2, 0], :], lattice[..., [2, 0, 1], :])
    with np.errstate(divide="ignore", invalid="ignore"):
        return volumes[..., None] / np.linalg.norm(normals, axis=-1)


def structure_problems(crystal: Crystal, max_sites: int = MAX_SITES) -> list[tuple[str, str]]:
    """(field, message) for every bound a structure breaks; empty when it is in bounds.

    Cheap (no neighbour search): run it before anything that scales with the cell.
    """
    return _species_problems(crystal) + _geometry_problems(crystal, max_sites)


def _species_problems(crystal: Crystal) -> list[tuple[str, str]]:
    unknown = sorted({s for s in crystal.species if s not in ELEMENTS})
    if not unknown:
        return []
    shown = ", ".join(repr(s[:12]) for s in unknown[:8]) + (" ..." if len(unknown) > 8 else "")
    return [("species", f"unknown element symbol(s) {shown}; expected symbols like 'O', 'Sr', "
                        "'Ti'")]


def _geometry_problems(crystal: Crystal, max_sites: int) -> list[tuple[str, str]]:
    """Sites, cell and coordinates out of bounds: any of them makes a neighbour search
    unsafe or meaningless."""
    problems: list[tuple[str, str]] = []
    if crystal.num_sites > max_sites:
        return [("species", f"{crystal.num_sites} sites; at most {max_sites} per record")]
    lattice, frac = crystal.lattice_array, crystal.frac_array
    not_finite = [(name, "holds NaN or infinite numbers")
                  for name, values in (("lattice_angstrom", lattice), ("frac_coords", frac))
                  if not np.all(np.isfinite(values))]
    if not_finite:
        return problems + not_finite
    with np.errstate(over="ignore"):  # 1e300 Å edges overflow to inf, which is refused
        lengths = np.linalg.norm(lattice, axis=1)
    if not lengths.max() <= MAX_CELL_EDGE_ANGSTROM:
        return [*problems, ("lattice_angstrom",
                            f"cell edge of {lengths.max():.4g} Å; expected at most "
                            f"{MAX_CELL_EDGE_ANGSTROM:g} Å (is the cell in Å?)")]
    largest = float(np.abs(frac).max())
    if largest > MAX_ABS_FRACTIONAL:
        worst = int(np.argmax(np.abs(frac).max(axis=1)))
        problems.append(("frac_coords",
                         f"site {worst} ({crystal.species[worst][:12]}) has a fractional "
                         f"coordinate of {frac[worst][np.argmax(np.abs(frac[worst]))]:.4g}; "
                         f"expected within ±{MAX_ABS_FRACTIONAL:g} (a position a few cells out "
                         "at most; are these Cartesian coordinates?)"))
    volume = abs(float(np.linalg.det(lattice)))
    if volume < 1e-6:
        return [*problems, ("lattice_angstrom", "cell vectors are coplanar (zero volume)")]
    per_atom = volume / crystal.num_sites
    if per_atom < MIN_VOLUME_PER_ATOM:
        return [*problems, ("lattice_angstrom",
                            f"{per_atom:.3g} Å^3 per atom; expected at least "
                            f"{MIN_VOLUME_PER_ATOM:g} (is the cell in Å, not nm or bohr?)")]
    if per_atom > MAX_VOLUME_PER_ATOM:
        return [*problems, ("lattice_angstrom",
                            f"{per_atom:.4g} Å^3 per atom; expected at most "
                            f"{MAX_VOLUME_PER_ATOM:g} (one atom in a 21.5 Å box)")]
    spacing = float(plane_spacings(lattice).min())
    if spacing < MIN_PLANE_SPACING_ANGSTROM:
        problems.append(("lattice_angstrom",
                         f"lattice planes {spacing:.3g} Å apart; expected at least "
                         f"{MIN_PLANE_SPACING_ANGSTROM:g} Å (the cell is nearly flat: a "
                         "degenerate or near-singular lattice)"))
    return problems


def check_crystal(crystal: Crystal, min_distance: float = MIN_DISTANCE_ANGSTROM,
                  max_sites: int = MAX_SITES) -> list[tuple[str, str]]:
    """(field, message) for everything wrong with a structure; empty when it is usable."""
    geometry = _geometry_problems(crystal, max_sites)
    problems = _species_problems(crystal) + geometry
    if geometry:
        return problems  # out of bounds: not worth (or not safe for) a neighbour search
    try:
        overlap = closest_pair(crystal, min_distance)
    except SearchTooLarge as error:
        return [*problems, ("lattice_angstrom", str(error))]
    if overlap is not None:
        i, j, distance = overlap
        problems.append(("frac_coords",
                         f"atoms {i} ({crystal.species[i]}) and {j} ({crystal.species[j]}) are "
                         f"{distance:.3f} Å apart; atoms closer than {min_distance} Å overlap"))
    return problems


def wrapped_frac(crystal: Crystal) -> np.ndarray:
    """Fractional coordinates in [0, 1); ValueError unless finite and within the bound."""
    frac = crystal.frac_array
    if not np.all(np.isfinite(frac)) or np.abs(frac).max() > MAX_ABS_FRACTIONAL:
        raise ValueError(f"frac_coords: expected finite numbers within ±{MAX_ABS_FRACTIONAL:g}")
    return np.mod(frac, 1.0)


def closest_pair(crystal: Crystal, cutoff: float) -> tuple[int, int, float] | None:
    """The closest pair of sites (periodic images included) nearer than ``cutoff``, if any."""
    frac = wrapped_frac(crystal)
    lattice = crystal.lattice_array
    centres, neighbours, images, distances = periodic_pairs(lattice, frac @ lattice, cutoff)
    other = (centres != neighbours) | np.any(np.rint(images) != 0, axis=1)
    centres, neighbours, distances = centres[other], neighbours[other], distances[other]
    if len(distances) == 0:
        return None
    k = int(np.argmin(distances))
    i, j = sorted((int(centres[k]), int(neighbours[k])))
    return i, j, float(distances[k])


def periodic_pairs(lattice: np.ndarray, cart: np.ndarray, radius: float,
                   spacings: np.ndarray | None = None
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every (centre, neighbour, image, distance) within ``radius`` Å, periodic in 3D.

    ``cart`` are the Cartesian positions of atoms wrapped into the cell. pymatgen's
    compiled cell-list search, with its two costs bounded: the bins it allocates (one per
    radius-sized cube of the cell; a 270 Å cell at 0.5 Å needs 5 GB) are capped by
    searching a larger radius and filtering, and the periodic images it enumerates are
    counted first; too many raise SearchTooLarge instead of exhausting memory. Each atom
    is listed as its own neighbour at distance 0 (zero image), as pymatgen does.
    ``spacings``: the cell's :func:`plane_spacings`, where the caller has them already (a
    graph batch computes all its cells' at once; per cell they cost a tenth of a ms).
    """
    from pymatgen.optimization.neighbors import find_points_in_spheres

    lattice = np.ascontiguousarray(lattice, dtype=np.float64)
    cart = np.ascontiguousarray(cart, dtype=np.float64).reshape(-1, 3)
    if not (np.all(np.isfinite(lattice)) and np.all(np.isfinite(cart))) or not radius > 0:
        raise ValueError("neighbour search: expected a finite cell, positions and radius > 0")
    spacings = plane_spacings(lattice) if spacings is None else spacings
    extent = cart.max(axis=0) - cart.min(axis=0)
    search = float(radius)
    while np.prod(np.ceil((extent + 2 * search) / max(search, 0.1))) > _MAX_SEARCH_BINS:
        search *= 1.5
    with np.errstate(divide="ignore", invalid="ignore"):  # a flat cell: inf images
        points = len(cart) * float(np.prod(np.ceil(2 * search / spacings) + 3))
    if not points <= MAX_SEARCH_POINTS:  # also NaN, from a degenerate cell
        raise SearchTooLarge(f"a {radius:g} Å neighbour search of {len(cart)} atoms in this "
                             f"cell would enumerate {points:.3g} periodic images; at most "
                             f"{MAX_SEARCH_POINTS:.3g}")
    found = find_points_in_spheres(cart, cart, search, np.ones(3, dtype=np.int64), lattice,
                                   tol=1e-8)
    centres, neighbours, images, distances = found
    if search > radius:
        near = distances <= radius
        centres, neighbours, images, distances = (centres[near], neighbours[near],
                                                  images[near], distances[near])
    return centres, neighbours, images, distances
