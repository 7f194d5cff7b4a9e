"""Validation of lab records, shared by `materialabs upload` (before anything is sent) and
the ingest service (again, on what arrived): the lab's client is not trusted.

A record is one crystal plus property values whose units are part of their names
(``band_gap_eV``, ``formation_energy_per_atom_eV``, ``bulk_modulus_GPa``). Every problem
is a :class:`Problem` naming the file, the record and the field, and saying what was
expected, so a lab can fix a whole upload in one pass instead of one error at a time.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from materialabs.crystals import Crystal

# Closer than this, two atoms overlap: the shortest real bond (H-H in H2) is 0.74 Å.
MIN_DISTANCE_ANGSTROM = 0.5
MAX_SITES = 2000
MAX_CELL_EDGE_ANGSTROM = 1000.0
MIN_VOLUME_PER_ATOM = 1.0  # Å^3; denser than anything known at ambient pressure (~4 Å^3)

_ELEMENT_SYMBOLS = """
H He Li Be B C N O F Ne Na Mg Al Si P S Cl Ar K Ca Sc Ti V Cr Mn Fe Co Ni Cu Zn Ga Ge As
Se Br Kr Rb Sr Y Zr Nb Mo Tc Ru Rh Pd Ag Cd In Sn Sb Te I Xe Cs Ba La Ce Pr Nd Pm Sm Eu Gd
Tb Dy Ho Er Tm Yb Lu Hf Ta W Re Os Ir Pt Au Hg Tl Pb Bi Po At Rn Fr Ra Ac Th Pa U Np Pu Am
Cm Bk Cf Es Fm Md No Lr Rf Db Sg Bh Hs Mt Ds Rg Cn Nh Fl Mc Lv Ts Og
"""
ELEMENTS = frozenset(_ELEMENT_SYMBOLS.split())


@dataclass(frozen=True)
class Problem:
    """One reason a record (or a whole file) is refused."""

    file: str
    record: str | None
    field: str | None
    message: str

    def __str__(self) -> str:
        where = [self.file]
        if self.record:
            where.append(f"record {self.record}")
        if self.field:
            where.append(f"field {self.field}")
        return f"{': '.join(where)}: {self.message}"

    def as_json(self) -> dict[str, Any]:
        return {"file": self.file, "record": self.record, "field": self.field,
                "message": self.message}


# --- properties and units -----------------------------------------------------------------


@dataclass(frozen=True)
class PropertySpec:
    """A property labs may upload: its unit and the range a real value can fall in."""

    name: str
    unit: str           # canonical unit, e.g. "eV/atom"
    suffix: str         # unit as written in field names, e.g. "eV" (formation_energy_per_atom_eV)
    low: float
    high: float
    spellings: tuple[str, ...]  # header unit spellings that mean ``unit``

    @property
    def key(self) -> str:
        """The field name records carry: name plus unit suffix."""
        return f"{self.name}_{self.suffix}"


_EV_PER_ATOM = ("eV", "eV/atom", "eV_atom", "eV_per_atom", "eVatom")
PROPERTIES: dict[str, PropertySpec] = {spec.name: spec for spec in (
    PropertySpec("formation_energy_per_atom", "eV/atom", "eV", -10.0, 5.0, _EV_PER_ATOM),
    PropertySpec("band_gap", "eV", "eV", 0.0, 30.0, ("eV",)),
    PropertySpec("e_above_hull", "eV/atom", "eV", 0.0, 10.0, _EV_PER_ATOM),
    PropertySpec("energy_per_atom", "eV/atom", "eV", -100.0, 10.0, _EV_PER_ATOM),
    PropertySpec("total_energy", "eV", "eV", -1e6, 1e4, ("eV",)),
    PropertySpec("efermi", "eV", "eV", -30.0, 30.0, ("eV",)),
    PropertySpec("bulk_modulus", "GPa", "GPa", 0.0, 1000.0, ("GPa",)),
    PropertySpec("shear_modulus", "GPa", "GPa", 0.0, 1000.0, ("GPa",)),
    PropertySpec("total_magnetization", "muB", "muB", 0.0, 1000.0, ("muB", "uB", "μB")),
    PropertySpec("critical_temperature", "K", "K", 0.0, 500.0, ("K",)),
    PropertySpec("density", "g/cm3", "g_cm3", 0.01, 30.0, ("g_cm3", "g/cm3", "g/cc")),
)}

# Units we recognise but refuse, with the conversion the lab should apply.
WRONG_UNITS: dict[str, str] = {
    "meV": "divide by 1000 to get eV",
    "MeV": "MeV is not a materials energy; expected eV",
    "meV/atom": "divide by 1000 to get eV/atom",
    "meV_atom": "divide by 1000 to get eV/atom",
    "J": "divide by 1.602176634e-19 to get eV",
    "kJ": "kJ is not a per-atom energy; expected eV",
    "kJ_mol": "divide by 96.485 to get eV (per atom or formula unit)",
    "kJ/mol": "divide by 96.485 to get eV (per atom or formula unit)",
    "kcal_mol": "divide by 23.061 to get eV",
    "kcal/mol": "divide by 23.061 to get eV",
    "Ry": "multiply by 13.6057 to get eV",
    "Ha": "multiply by 27.2114 to get eV",
    "hartree": "multiply by 27.2114 to get eV",
    "Hartree": "multiply by 27.2114 to get eV",
    "eV_cell": "divide by the number of atoms to get eV/atom",
    "eV/cell": "divide by the number of atoms to get eV/atom",
    "MPa": "divide by 1000 to get GPa",
    "Pa": "divide by 1e9 to get GPa",
    "kbar": "divide by 10 to get GPa",
    "bar": "divide by 10000 to get GPa",
    "C": "add 273.15 to get K",
    "degC": "add 273.15 to get K",
    "F": "convert to K",
    "kg_m3": "divide by 1000 to get g/cm3",
}

# Units a further (unknown) property may carry; it is checked for finiteness only.
GENERIC_UNITS = frozenset({"eV", "eV_atom", "GPa", "K", "muB", "g_cm3", "A", "A3", "e", "D",
                           "1"})

# Columns that describe a record rather than measure it (no unit needed).
DESCRIPTIVE_COLUMNS = frozenset({
    "id", "material_id", "name", "formula", "reduced_formula", "pretty_formula", "comment",
    "comments", "reference", "doi", "source", "spacegroup", "spacegroup_number",
    "spacegroup_symbol", "nsites", "cif", "cif_file", "cif_path", "structure", "poscar",
})

_UNIT_SEPARATOR = "_"
_HEADER_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_/μ]*$")


@dataclass(frozen=True)
class ColumnUnit:
    """How a header was understood: the record field it fills and the spec (if known)."""

    header: str
    key: str
    unit: str
    spec: PropertySpec | None


def parse_property_header(header: str, declared: Mapping[str, str] | None = None
                          ) -> ColumnUnit | str:
    """Read a property column name with its unit; return the column or why it is refused.

    ``declared`` maps bare names to units (``--units band_gap=eV``) for headers that
    state none.
    """
    header = header.strip()
    declared = declared or {}
    if not _HEADER_RE.match(header):
        return f"column name {header!r}: expected letters, digits and '_' like band_gap_eV"
    if header in declared:
        name, unit = header, declared[header].strip()
    else:
        name, unit = _split_unit(header)
    spec = PROPERTIES.get(name)
    if spec is None:
        return _generic_column(header, name, unit)
    if not unit:
        return (f"column {header!r} states no unit; expected {spec.key} ({spec.unit}) "
                f"or declare it with --units {name}={spec.unit}")
    if unit in WRONG_UNITS:
        return f"{name} must be in {spec.unit}, got {unit}: {WRONG_UNITS[unit]}"
    if unit not in spec.spellings:
        return f"{name} must be in {spec.unit}, got unit {unit!r}"
    return ColumnUnit(header, spec.key, spec.unit, spec)


def _split_unit(header: str) -> tuple[str, str]:
    """Split ``band_gap_eV`` into (band_gap, eV), preferring the longest known name."""
    for name in sorted(PROPERTIES, key=len, reverse=True):
        if header == name:
            return name, ""
        if header.startswith(name + _UNIT_SEPARATOR):
            return name, header[len(name) + 1:]
    name, _, unit = header.rpartition(_UNIT_SEPARATOR)
    return (name, unit) if name else (header, "")


def _generic_column(header: str, name: str, unit: str) -> ColumnUnit | str:
    if unit in WRONG_UNITS:
        return f"column {header!r}: unit {unit} is not accepted ({WRONG_UNITS[unit]})"
    if unit in GENERIC_UNITS:
        return ColumnUnit(header, f"{name}_{unit}", unit, None)
    known = ", ".join(spec.key for spec in PROPERTIES.values())
    return (f"column {header!r}: not a known property with a unit (known: {known}); "
            f"name the unit at the end (e.g. {header}_eV) or declare it with "
            f"--units {header}=UNIT")


def parse_units_option(text: str | None) -> dict[str, str]:
    """``band_gap=eV,formation_energy_per_atom=eV/atom`` -> mapping; raise ValueError."""
    declared: dict[str, str] = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        name, sep, unit = part.partition("=")
        if not sep or not name.strip() or not unit.strip():
            raise ValueError(f"--units: expected NAME=UNIT pairs separated by commas, got {part!r}")
        declared[name.strip()] = unit.strip()
    return declared


# --- values -------------------------------------------------------------------------------


def check_value(key: str, value: Any) -> str | None:
    """Why a property value is unusable, or None. ``key`` is a record field (band_gap_eV)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        try:
            value = float(str(value).strip())
        except ValueError:
            return f"expected a number, got {str(value)[:40]!r}"
    number = float(value)
    if not math.isfinite(number):
        return f"expected a finite number, got {number}"
    spec = spec_for_key(key)
    if spec is not None and not spec.low <= number <= spec.high:
        return (f"{number:g} {spec.unit} is outside the plausible range "
                f"[{spec.low:g}, {spec.high:g}] {spec.unit} for {spec.name}")
    return None


def spec_for_key(key: str) -> PropertySpec | None:
    return next((spec for spec in PROPERTIES.values() if spec.key == key), None)


def check_property_key(key: str) -> str | None:
    """A field name a stored record may carry (ingest re-checks what clients wrote)."""
    parsed = parse_property_header(key)
    if isinstance(parsed, str):
        return parsed
    if parsed.key != key:
        return f"expected the canonical field name {parsed.key!r}"
    return None


# --- structures ---------------------------------------------------------------------------


def check_crystal(crystal: Crystal, min_distance: float = MIN_DISTANCE_ANGSTROM,
                  max_sites: int = MAX_SITES) -> list[tuple[str, str]]:
    """(field, message) for everything wrong with a structure; empty when it is usable."""
    problems: list[tuple[str, str]] = []
    unknown = sorted({s for s in crystal.species if s not in ELEMENTS})
    if unknown:
        problems.append(("species", f"unknown element symbol(s) {', '.join(map(repr, unknown))}; "
                                    "expected symbols like 'O', 'Sr', 'Ti'"))
    if crystal.num_sites > max_sites:
        problems.append(("species", f"{crystal.num_sites} sites; at most {max_sites} per record"))
    if crystal.num_sites > max_sites:
        return problems  # too big to be worth a neighbour search
    lattice, frac = crystal.lattice_array, crystal.frac_array
    finite = True
    if not np.all(np.isfinite(lattice)):
        problems.append(("lattice_angstrom", "holds NaN or infinite numbers"))
        finite = False
    if not np.all(np.isfinite(frac)):
        problems.append(("frac_coords", "holds NaN or infinite numbers"))
        finite = False
    if not finite:
        return problems
    with np.errstate(over="ignore"):  # 1e300 Å edges overflow to inf, which is refused
        lengths = np.linalg.norm(lattice, axis=1)
    if lengths.max() > MAX_CELL_EDGE_ANGSTROM:
        return [*problems, ("lattice_angstrom",
                            f"cell edge of {lengths.max():.4g} Å; expected at most "
                            f"{MAX_CELL_EDGE_ANGSTROM:g} Å (is the cell in Å?)")]
    volume = abs(float(np.linalg.det(lattice)))
    if volume < 1e-6:
        return [*problems, ("lattice_angstrom", "cell vectors are coplanar (zero volume)")]
    if volume / crystal.num_sites < MIN_VOLUME_PER_ATOM:
        problems.append(("lattice_angstrom",
                         f"{volume / crystal.num_sites:.3g} Å^3 per atom; expected at least "
                         f"{MIN_VOLUME_PER_ATOM} (is the cell in Å, not nm or bohr?)"))
        return problems
    overlap = closest_pair(crystal, min_distance)
    if overlap is not None:
        i, j, distance = overlap
        problems.append(("frac_coords",
                         f"atoms {i} ({crystal.species[i]}) and {j} ({crystal.species[j]}) are "
                         f"{distance:.3f} Å apart; atoms closer than {min_distance} Å overlap"))
    return problems


def closest_pair(crystal: Crystal, cutoff: float) -> tuple[int, int, float] | None:
    """The closest pair of sites (periodic images included) nearer than ``cutoff``, if any."""
    from pymatgen.core import Lattice, Structure

    # Species do not matter for distances; a dummy element avoids pymatgen's own checks.
    structure = Structure(Lattice(crystal.lattice_array), ["H"] * crystal.num_sites,
                          crystal.frac_array, validate_proximity=False)
    centers, neighbours, _images, distances = structure.get_neighbor_list(cutoff)
    if len(distances) == 0:
        return None
    k = int(np.argmin(distances))
    i, j = sorted((int(centers[k]), int(neighbours[k])))
    return i, j, float(distances[k])


# --- records ------------------------------------------------------------------------------


@dataclass
class LabRecord:
    """One record of an upload: where it came from, its crystal and its property values."""

    file: str
    record: str
    crystal: Crystal
    properties: dict[str, float] = field(default_factory=dict)
    material_id: str | None = None  # the lab's own id when it gave one

    def as_json(self) -> dict[str, Any]:
        """The dataset line (canonical JSON in the stored dataset)."""
        return {
            "file": self.file,
            "record": self.record,
            "material_id": self.material_id or self.crystal.content_key(),
            "crystal": self.crystal.as_record(),
            "properties": dict(sorted(self.properties.items())),
        }


def validate_record(record: LabRecord) -> list[Problem]:
    """Every problem with one record's structure and values."""
    problems = [Problem(record.file, record.record, f, m) for f, m in check_crystal(record.crystal)]
    for key, value in record.properties.items():
        reason = check_property_key(key) or check_value(key, value)
        if reason:
            problems.append(Problem(record.file, record.record, key, reason))
    return problems


def validate_records(records: Iterable[LabRecord]) -> list[Problem]:
    return [problem for record in records for problem in validate_record(record)]


def record_from_json(item: Any, origin: str, line: int) -> LabRecord | list[Problem]:
    """Rebuild a record from its dataset line (what ingest reads back from the store)."""
    where = f"line {line}"
    if not isinstance(item, dict):
        return [Problem(origin, where, None, f"expected a JSON object, got {type(item).__name__}")]
    missing = [name for name in ("file", "record", "crystal", "properties") if name not in item]
    if missing:
        return [Problem(origin, where, name, "is missing") for name in missing]
    file, record = str(item["file"]), str(item["record"])
    crystal = item["crystal"]
    try:
        if not isinstance(crystal, dict):
            raise ValueError(f"expected an object, got {type(crystal).__name__}")
        lattice = np.asarray(crystal["lattice_angstrom"], dtype=float)
        frac = np.asarray(crystal["frac_coords"], dtype=float)
        species = crystal["species"]
        if lattice.shape != (9,) or frac.ndim != 1 or len(frac) != 3 * len(species):
            raise ValueError("expected 9 lattice numbers and 3 coordinates per species")
        if not all(isinstance(s, str) for s in species):
            raise ValueError("species must be strings")
        parsed = Crystal.from_record(crystal)
    except (KeyError, TypeError, ValueError) as error:
        return [Problem(file, record, "crystal", f"not a valid crystal record ({error})")]
    properties = item["properties"]
    if not isinstance(properties, dict):
        return [Problem(file, record, "properties", "expected an object of numbers")]
    material_id = item.get("material_id")
    return LabRecord(file, record, parsed, dict(properties),
                     str(material_id) if material_id is not None else None)
