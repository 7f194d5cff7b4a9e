"""Validation of lab records, shared by `materialabs upload` (before anything is sent) and
the ingest service (again, on what arrived): the lab's client is not trusted.

A record is one crystal plus property values whose units are part of their names
(``band_gap_eV``, ``formation_energy_per_atom_eV``, ``bulk_modulus_GPa``). Every problem
is a :class:`Problem` naming the file, the record and the field, and saying what was
expected, so a lab can fix a whole upload in one pass instead of one error at a time.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from materialabs.crystal_io import (
    MAX_RECORDS_PER_FILE,
    FieldError,
    NumberError,
    crystal_from_record,
    parse_number,
)
from materialabs.crystal_io import Problem as Problem  # re-exported: records name problems
from materialabs.crystals import ELEMENTS as ELEMENTS
from materialabs.crystals import MAX_CELL_EDGE_ANGSTROM as MAX_CELL_EDGE_ANGSTROM
from materialabs.crystals import MAX_SITES as MAX_SITES
from materialabs.crystals import MIN_DISTANCE_ANGSTROM as MIN_DISTANCE_ANGSTROM
from materialabs.crystals import MIN_VOLUME_PER_ATOM as MIN_VOLUME_PER_ATOM
from materialabs.crystals import Crystal, check_crystal
from materialabs.crystals import closest_pair as closest_pair

# --- limits of one upload (the per-structure ones are in crystals.py) ---------------------

MAX_RECORDS = MAX_RECORDS_PER_FILE  # records per upload, all files together
MAX_UPLOAD_BYTES = 1024 * 1024 * 1024  # bytes read per upload, all files together
MAX_DATASET_BYTES = 1024 * 1024 * 1024  # the stored dataset (what ingest fetches)
MAX_DATASET_LINE_BYTES = 1024 * 1024  # one record of it (a 2000-site crystal is ~150 KB)
# A property without a known range must still be a sane number: no material property in
# the accepted units (eV, GPa, K, Å, Å^3, ...) comes near 1e9.
MAX_ABS_OTHER_VALUE = 1e9

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
    return _parse_header(header, tuple(sorted((declared or {}).items())))


@lru_cache(maxsize=4096)  # a file repeats its few headers on every row
def _parse_header(header: str, declared_pairs: tuple[tuple[str, str], ...]) -> ColumnUnit | str:
    header = header.strip()
    declared = dict(declared_pairs)
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


# Names labs use for the known properties; a column by one of them is refused with the
# name to use (it would otherwise pass as an unknown property and never be trained on).
SYNONYMS: dict[str, tuple[str, ...]] = {
    "energy_above_hull": ("e_above_hull",), "ehull": ("e_above_hull",),
    "e_hull": ("e_above_hull",), "hull_distance": ("e_above_hull",),
    "formation_enthalpy": ("formation_energy_per_atom",),
    "enthalpy_of_formation": ("formation_energy_per_atom",),
    "heat_of_formation": ("formation_energy_per_atom",), "e_form": ("formation_energy_per_atom",),
    "gap": ("band_gap",), "bandgap": ("band_gap",), "eg": ("band_gap",),
    "fermi_energy": ("efermi",), "e_fermi": ("efermi",), "fermi_level": ("efermi",),
    "magnetization": ("total_magnetization",), "magnetic_moment": ("total_magnetization",),
    "tc": ("critical_temperature",), "bulk": ("bulk_modulus",), "shear": ("shear_modulus",),
}


def _squeeze(name: str) -> str:
    return name.lower().replace("_", "").replace("-", "")


def resembles_known(name: str) -> tuple[str, ...]:
    """Known properties a column name is a misspelling, truncation or synonym of."""
    if name in PROPERTIES:
        return ()
    lowered, squeezed = name.lower(), _squeeze(name)
    found = list(SYNONYMS.get(lowered, ()))
    for known in PROPERTIES:
        if (squeezed == _squeeze(known) or known.startswith(lowered + "_")
                or known.endswith("_" + lowered)
                or difflib.SequenceMatcher(None, squeezed, _squeeze(known)).ratio() >= 0.85):
            found.append(known)
    return tuple(dict.fromkeys(found))


def _generic_column(header: str, name: str, unit: str) -> ColumnUnit | str:
    if unit in WRONG_UNITS:
        return f"column {header!r}: unit {unit} is not accepted ({WRONG_UNITS[unit]})"
    near = resembles_known(name)
    if near:
        options = " or ".join(f"{PROPERTIES[k].key} ({PROPERTIES[k].unit})" for k in near)
        what = "is ambiguous" if len(near) > 1 else "looks like a misspelling"
        return (f"column {header!r} {what}: expected {options}; a different property needs a "
                "name that is not a near-copy of a known one")
    if unit in GENERIC_UNITS:
        return ColumnUnit(header, f"{name}_{unit}", unit, None)
    known = ", ".join(spec.key for spec in PROPERTIES.values())
    return (f"column {header!r}: not a known property with a unit (known: {known}); "
            f"name the unit at the end (e.g. {header}_eV) or declare it with "
            f"--units {header}=UNIT")


def column_conflicts(headers: Iterable[str], declared: Mapping[str, str] | None = None
                     ) -> list[tuple[str, str]]:
    """(header, why) for columns that repeat or that fill the same field as another."""
    problems: list[tuple[str, str]] = []
    seen: dict[str, str] = {}
    filled: dict[str, str] = {}
    for header in headers:
        lowered = header.strip().lower()
        if not lowered:
            continue
        if lowered in seen:
            problems.append((header, f"column given twice ({seen[lowered]!r} and {header!r}); "
                                     "which one holds the values is ambiguous"))
            continue
        seen[lowered] = header
        if lowered in DESCRIPTIVE_COLUMNS:
            continue
        column = parse_property_header(header, declared)
        if isinstance(column, str):
            continue
        if column.key in filled:
            problems.append((header, f"columns {filled[column.key]!r} and {header!r} both give "
                                     f"{column.key}; keep one"))
        else:
            filled[column.key] = header
    return problems


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
    """Why a property value is unusable, or None. ``key`` is a record field (band_gap_eV).

    Text is read with the strict number grammar (crystal_io.parse_number: no '1_5', no
    'infinity'); a property without a known range must lie within ±MAX_ABS_OTHER_VALUE.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        try:
            number = parse_number(str(value))
        except NumberError as error:
            return str(error)
    else:
        try:
            number = float(value)
        except OverflowError:
            return "number beyond the range of a 64-bit float; expected a finite number"
    if not math.isfinite(number):
        return f"expected a finite number, got {number}"
    spec = spec_for_key(key)
    if spec is not None and not spec.low <= number <= spec.high:
        return (f"{number:g} {spec.unit} is outside the plausible range "
                f"[{spec.low:g}, {spec.high:g}] {spec.unit} for {spec.name}")
    if spec is None and abs(number) > MAX_ABS_OTHER_VALUE:
        return (f"{number:g} is not a plausible value of a material property; expected at "
                f"most {MAX_ABS_OTHER_VALUE:g} in magnitude")
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
    try:
        parsed = crystal_from_record(item["crystal"], "crystal")
    except FieldError as error:
        return [Problem(file, record, error.field, f"not a valid crystal record: {error.message}")]
    properties = item["properties"]
    if not isinstance(properties, dict):
        return [Problem(file, record, "properties", "expected an object of numbers")]
    material_id = item.get("material_id")
    return LabRecord(file, record, parsed, dict(properties),
                     str(material_id) if material_id is not None else None)
