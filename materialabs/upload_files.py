"""Reading a lab's files into records: CIF folders, POSCAR, extxyz, pymatgen JSON, CSV.

Nothing here raises on bad input: every file yields the records it could read and a
:class:`~materialabs.records.Problem` for everything it could not, so `materialabs upload`
can list every reason at once. Validation of the records themselves is in records.py.
"""

from __future__ import annotations

import csv
import io
import json
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from materialabs.crystal_io import CrystalParseError, parse_p1_cif, read_crystals
from materialabs.crystals import Crystal
from materialabs.records import (
    DESCRIPTIVE_COLUMNS,
    ColumnUnit,
    LabRecord,
    Problem,
    parse_property_header,
)

MAX_FILE_BYTES = 64 * 1024 * 1024
MAX_RECORDS = 200_000
STRUCTURE_SUFFIXES = (".cif", ".json", ".xyz", ".extxyz", ".vasp", ".csv")
_ID_KEYS = ("material_id", "id", "name")


@dataclass
class ReadResult:
    records: list[LabRecord] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    units: dict[str, str] = field(default_factory=dict)  # record field -> unit

    def extend(self, other: ReadResult) -> None:
        self.records.extend(other.records)
        self.problems.extend(other.problems)
        self.files.extend(other.files)
        self.units.update(other.units)


def expand_paths(paths: list[Path]) -> tuple[list[Path], list[Problem]]:
    """Files named, plus the structure files inside named folders (sorted, recursive)."""
    files: list[Path] = []
    problems: list[Problem] = []
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and _is_structure_file(p))
            if not found:
                problems.append(Problem(str(path), None, None,
                                        "folder holds no .cif, .json, .xyz, .csv or POSCAR files"))
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            problems.append(Problem(str(path), None, None, "no such file or folder"))
    return files, problems


def _is_structure_file(path: Path) -> bool:
    name = path.name.lower()
    return name.endswith(STRUCTURE_SUFFIXES) or name.startswith(("poscar", "contcar"))


def read_lab_files(paths: list[Path], declared_units: Mapping[str, str] | None = None,
                   max_file_bytes: int = MAX_FILE_BYTES) -> ReadResult:
    """Read every file; never raises for bad content."""
    files, problems = expand_paths([Path(p) for p in paths])
    result = ReadResult(problems=problems)
    for path in files:
        result.extend(read_lab_file(path, declared_units or {}, max_file_bytes))
    if len(result.records) > MAX_RECORDS:
        result.problems.append(Problem(", ".join(result.files[:3]), None, None,
                                       f"{len(result.records)} records; at most {MAX_RECORDS} per "
                                       "upload (split it into several uploads)"))
    return result


def read_lab_file(path: Path, declared: Mapping[str, str],
                  max_file_bytes: int = MAX_FILE_BYTES) -> ReadResult:
    name = str(path)
    result = ReadResult(files=[name])
    try:
        size = path.stat().st_size
    except OSError as error:
        result.problems.append(Problem(name, None, None, f"cannot read: {error.strerror}"))
        return result
    if size > max_file_bytes:
        result.problems.append(Problem(name, None, None,
                                       f"{size / 2**20:.1f} MiB is over the limit of "
                                       f"{max_file_bytes / 2**20:.0f} MiB per file; split it"))
        return result
    data = path.read_bytes()
    if not data.strip():
        result.problems.append(Problem(name, None, None, "file is empty"))
        return result
    if b"\x00" in data[:4096]:
        result.problems.append(Problem(name, None, None, "binary file; expected text"))
        return result
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pymatgen/ASE warn on odd input; we report instead
        try:
            _dispatch(path, data.decode("utf-8", errors="replace"), declared, result)
        except CrystalParseError as error:
            result.problems.append(Problem(name, None, None, _without_prefix(error, name)))
        except Exception as error:  # a reader bug on hostile input must not crash the upload
            result.problems.append(Problem(name, None, None,
                                           f"not readable ({type(error).__name__}: {error})"))
    if not result.records and not result.problems:
        # e.g. an extxyz file of control characters: the reader finds no frame and no error
        result.problems.append(Problem(name, None, None,
                                       "no structure found; expected at least one record"))
    return result


def _without_prefix(error: Exception, prefix: str) -> str:
    """The message without the file name the parser put first (Problem names it already)."""
    text = str(error)
    return text[len(prefix) + 2:] if text.startswith(prefix + ": ") else text


def _dispatch(path: Path, text: str, declared: Mapping[str, str], result: ReadResult) -> None:
    lower = path.name.lower()
    if lower.endswith(".csv"):
        _read_csv(path, text, declared, result)
    elif lower.endswith(".json"):
        _read_json(path, text, declared, result)
    elif lower.endswith((".xyz", ".extxyz")):
        _read_extxyz(path, declared, result)
    elif lower.endswith(".cif"):
        for record, crystal in _cif_blocks(text, str(path)):
            result.records.append(LabRecord(str(path), record, crystal))
    else:
        for record, crystal in read_crystals(path):
            result.records.append(LabRecord(str(path), record, crystal))


def _cif_blocks(text: str, source: str) -> Iterator[tuple[str, Crystal]]:
    blocks = [line for line in text.splitlines() if line.strip().startswith("data_")]
    if not blocks:
        raise CrystalParseError(f"{source}: not a CIF (no data_ block)")
    if len(blocks) == 1:
        try:
            yield Path(source).stem, parse_p1_cif(text, source)
        except (ValueError, IndexError) as error:
            if isinstance(error, CrystalParseError):
                raise
            raise CrystalParseError(f"{source}: not a readable CIF ({error})") from error
        return
    from pymatgen.io.cif import CifParser

    parser = CifParser(io.StringIO(text))
    for index, structure in enumerate(parser.parse_structures(primitive=False)):
        yield f"{Path(source).stem}#{index}", Crystal.from_structure(structure)


# --- properties from key/value pairs ------------------------------------------------------


def _properties(pairs: Mapping[str, Any], declared: Mapping[str, str], file: str, record: str,
                result: ReadResult, header_problems: set[str]) -> tuple[dict[str, Any], str | None]:
    """Property values (unit-checked names) and the lab's id from one record's pairs."""
    values: dict[str, Any] = {}
    material_id = next((str(pairs[k]) for k in _ID_KEYS if pairs.get(k) not in (None, "")), None)
    for key, raw in pairs.items():
        # An empty header is a spreadsheet's row index column.
        if not key or key.lower() in DESCRIPTIVE_COLUMNS or raw is None or raw == "":
            continue
        column = parse_property_header(key, declared)
        if isinstance(column, str):
            if key not in header_problems:  # once per file, not once per row
                header_problems.add(key)
                result.problems.append(Problem(file, None, key, column))
            continue
        values[column.key] = _number(raw)
        result.units[column.key] = column.unit
    return values, material_id


def _number(raw: Any) -> Any:
    """A float when the text is a number (NaN and inf included, to be refused by name)."""
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, int | float):
        return float(raw)
    try:
        return float(str(raw).strip())
    except ValueError:
        return raw


# --- CSV ----------------------------------------------------------------------------------


def _read_csv(path: Path, text: str, declared: Mapping[str, str], result: ReadResult) -> None:
    name = str(path)
    csv.field_size_limit(MAX_FILE_BYTES)
    reader = csv.DictReader(io.StringIO(text))
    headers = [h.strip() for h in (reader.fieldnames or []) if h is not None]
    lowered = {h.lower(): h for h in headers}
    cif_text, cif_file = lowered.get("cif"), lowered.get("cif_file") or lowered.get("cif_path")
    if cif_text is None and cif_file is None:
        result.problems.append(Problem(name, None, None,
                                       f"no CIF column among {headers[:12]}; expected a column "
                                       "'cif' (CIF text) or 'cif_file' (path to a .cif)"))
        return
    header_problems: set[str] = set()
    for header in headers:  # report bad property headers even when no row fills them
        if header and header.lower() not in DESCRIPTIVE_COLUMNS:
            column = parse_property_header(header, declared)
            if isinstance(column, str):
                header_problems.add(header)
                result.problems.append(Problem(name, None, header, column))
    for index, row in enumerate(reader, start=1):
        if None in row:  # more cells than headers
            result.problems.append(Problem(name, f"row {index}", None,
                                           f"{len(row[None]) if row[None] else 0} cells more "
                                           "than the header has columns"))
            continue
        pairs = {k.strip(): v for k, v in row.items() if k is not None}
        properties, material_id = _properties(
            {k: v for k, v in pairs.items() if k.lower() not in ("cif", "cif_file", "cif_path")},
            declared, name, f"row {index}", result, header_problems)
        record = f"row {index}" + (f" ({material_id})" if material_id else "")
        crystal = _csv_crystal(path, pairs, cif_text, cif_file, record, result)
        if crystal is not None:
            result.records.append(LabRecord(name, record, crystal, properties, material_id))
    if not result.records and not result.problems:
        result.problems.append(Problem(name, None, None, "CSV has a header but no rows"))


def _csv_crystal(path: Path, pairs: Mapping[str, str | None], cif_text: str | None,
                 cif_file: str | None, record: str, result: ReadResult) -> Crystal | None:
    name = str(path)
    try:
        if cif_text is not None and (pairs.get(cif_text) or "").strip():
            return parse_p1_cif(pairs[cif_text] or "", f"{name} {record}")
        if cif_file is not None and (pairs.get(cif_file) or "").strip():
            target = (path.parent / (pairs[cif_file] or "").strip()).resolve()
            return parse_p1_cif(target.read_text(errors="replace"), str(target))
    except CrystalParseError as error:
        result.problems.append(Problem(name, record, "cif",
                                       _short(_without_prefix(error, f"{name} {record}"))))
        return None
    except OSError as error:
        result.problems.append(Problem(name, record, "cif_file",
                                       f"cannot read {error.filename}: {error.strerror}"))
        return None
    except (ValueError, IndexError) as error:
        result.problems.append(Problem(name, record, "cif",
                                       f"not a readable CIF ({_short(error)})"))
        return None
    result.problems.append(Problem(name, record, "cif", "empty: every row needs a structure"))
    return None


def _short(error: Exception | str, limit: int = 300) -> str:
    text = str(error).replace("\n", " ")
    return text if len(text) <= limit else text[:limit] + "..."


# --- JSON ---------------------------------------------------------------------------------


def _read_json(path: Path, text: str, declared: Mapping[str, str], result: ReadResult) -> None:
    name = str(path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        result.problems.append(Problem(name, None, None, f"invalid JSON ({error})"))
        return
    items = data if isinstance(data, list) else [data]
    if not items:
        result.problems.append(Problem(name, None, None, "JSON list is empty"))
    header_problems: set[str] = set()
    for index, item in enumerate(items):
        record = f"#{index}"
        if not isinstance(item, dict):
            result.problems.append(Problem(name, record, None,
                                           f"expected an object, got {type(item).__name__}"))
            continue
        try:
            crystal, pairs = _json_crystal(item)
        except Exception as error:  # pymatgen's from_dict raises many kinds
            result.problems.append(Problem(name, record, "structure",
                                           "expected a pymatgen Structure dict or a Crystal "
                                           f"record ({_short(error)})"))
            continue
        properties, material_id = _properties(pairs, declared, name, record, result,
                                              header_problems)
        if material_id:
            record = f"#{index} ({material_id})"
        result.records.append(LabRecord(name, record, crystal, properties, material_id))


def _json_crystal(item: dict[str, Any]) -> tuple[Crystal, dict[str, Any]]:
    """The crystal and the remaining key/value pairs (properties and ids) of one item."""
    from pymatgen.core import Structure

    if "structure" in item:
        pairs = {k: v for k, v in item.items() if k != "structure"}
        return Crystal.from_structure(Structure.from_dict(item["structure"])), _flat(pairs)
    if "lattice_angstrom" in item:
        rest = {k: v for k, v in item.items()
                if k not in ("lattice_angstrom", "species", "frac_coords")}
        return Crystal.from_record(item), _flat(rest)
    structure = Structure.from_dict(item)
    return Crystal.from_structure(structure), _flat(dict(item.get("properties") or {}))


def _flat(pairs: dict[str, Any]) -> dict[str, Any]:
    """Lift a nested 'properties' object to the top level (pymatgen keeps them there)."""
    nested = pairs.pop("properties", None)
    if isinstance(nested, dict):
        pairs.update(nested)
    for key in ("@module", "@class", "@version", "charge", "lattice", "sites"):
        pairs.pop(key, None)
    return pairs


# --- extxyz -------------------------------------------------------------------------------


def _read_extxyz(path: Path, declared: Mapping[str, str], result: ReadResult) -> None:
    from ase.io import iread

    name = str(path)
    header_problems: set[str] = set()
    for index, atoms in enumerate(iread(name, format="extxyz")):
        record = f"frame {index}"
        if not all(atoms.pbc):
            result.problems.append(Problem(name, record, "pbc",
                                           "expected a periodic cell (pbc=\"T T T\")"))
            continue
        crystal = Crystal.from_arrays(atoms.cell.array, atoms.get_chemical_symbols(),
                                      atoms.get_scaled_positions(wrap=False))
        pairs = {k: v for k, v in atoms.info.items() if not isinstance(v, dict | list)}
        properties, material_id = _properties(pairs, declared, name, record, result,
                                              header_problems)
        result.records.append(LabRecord(name, record, crystal, properties, material_id))


__all__ = ["ColumnUnit", "ReadResult", "expand_paths", "read_lab_file", "read_lab_files"]
