"""Reading a lab's files into records: CIF folders, POSCAR, extxyz, pymatgen JSON, CSV.

Structure files go through the one reader every command uses (crystal_io); CSV, which only
uploads read, is here. Nothing here raises on bad input: every file yields the records it
could read and a :class:`~materialabs.records.Problem` for everything it could not, so
`materialabs upload` can list every reason at once. Validation of the records themselves
is in records.py. An upload is bounded as a whole too: MAX_RECORDS records and
MAX_UPLOAD_BYTES read, all files together, counted before the records are built.
"""

from __future__ import annotations

import csv
import io
import os
import stat
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from materialabs.crystal_io import (
    MAX_FILE_BYTES,
    MAX_PROBLEMS_PER_FILE,
    CrystalParseError,
    NumberError,
    StructureFile,
    decode_text,
    display_name,
    parse_cif,
    parse_number,
    parse_structure_text,
    read_file_bytes,
    structure_format,
)
from materialabs.crystals import Crystal
from materialabs.records import (
    DESCRIPTIVE_COLUMNS,
    MAX_RECORDS,
    MAX_UPLOAD_BYTES,
    ColumnUnit,
    LabRecord,
    Problem,
    column_conflicts,
    parse_property_header,
)

STRUCTURE_SUFFIXES = (".cif", ".json", ".xyz", ".extxyz", ".vasp", ".csv")
_ID_KEYS = ("material_id", "id", "name")
_STRUCTURE_COLUMNS = ("cif", "cif_file", "cif_path")


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


@dataclass
class Budget:
    """What is left of an upload's limits while its files are read."""

    records: int = MAX_RECORDS
    bytes: int = MAX_UPLOAD_BYTES


def expand_paths(paths: list[Path], max_files: int = MAX_RECORDS
                 ) -> tuple[list[Path], list[Problem]]:
    """Files named, plus the structure files inside named folders (sorted, recursive).

    Links to folders are not followed (no loops); FIFOs, devices and sockets found in a
    folder are passed over, named ones are refused.
    """
    files: list[Path] = []
    problems: list[Problem] = []
    for path in paths:
        name = display_name(path)
        try:
            mode = os.stat(path).st_mode
        except FileNotFoundError:
            problems.append(Problem(name, None, None, "no such file or folder"))
            continue
        except OSError as error:
            problems.append(Problem(name, None, None, f"cannot read: {error.strerror}"))
            continue
        if stat.S_ISDIR(mode):
            found = _walk(path, max_files - len(files) + 1)
            if not found:
                problems.append(Problem(name, None, None, "folder holds no .cif, .json, .xyz, "
                                                          ".csv or POSCAR files"))
            files.extend(found)
        else:
            files.append(path)  # read_lab_file refuses what is not a regular file
        if len(files) > max_files:
            problems.append(Problem(name, None, None, f"more than {max_files} files; at most "
                                                      f"{max_files} per upload (split it)"))
            return files[:max_files], problems
    return files, problems


def _walk(folder: Path, limit: int) -> list[Path]:
    found: list[Path] = []
    for root, dirs, names in os.walk(folder):  # followlinks=False: no cycles
        dirs.sort()
        for entry in sorted(names):
            path = Path(root) / entry
            if _is_structure_file(path) and path.is_file():
                found.append(path)
                if len(found) >= limit:
                    return sorted(found)
    return sorted(found)


def _is_structure_file(path: Path) -> bool:
    name = path.name.lower()
    return name.endswith(STRUCTURE_SUFFIXES) or name.startswith(("poscar", "contcar"))


def read_lab_files(paths: Iterable[Path], declared: Mapping[str, str] | None = None,
                   max_file_bytes: int = MAX_FILE_BYTES,
                   progress: Callable[[list[Path]], Iterable[Path]] | None = None) -> ReadResult:
    """Read every file; never raises for bad content. ``progress`` may wrap the file list
    (a progress bar)."""
    files, problems = expand_paths([Path(p) for p in paths])
    result = ReadResult(problems=problems)
    budget = Budget(records=MAX_RECORDS, bytes=MAX_UPLOAD_BYTES)
    for path in (progress(files) if progress else files):
        if budget.records < 0 or budget.bytes < 0:
            break
        result.extend(read_lab_file(path, declared or {}, max_file_bytes, budget))
    if budget.records < 0:
        result.problems.append(Problem(", ".join(result.files[:3]), None, None,
                                       f"more than {MAX_RECORDS} records; at most "
                                       f"{MAX_RECORDS} per upload (split it into several "
                                       "uploads)"))
    if budget.bytes < 0:
        result.problems.append(Problem(", ".join(result.files[:3]), None, None,
                                       f"more than {_mib(MAX_UPLOAD_BYTES)} of files; at most "
                                       f"{_mib(MAX_UPLOAD_BYTES)} per upload (split it)"))
    return result


def read_lab_file(path: Path, declared: Mapping[str, str],
                  max_file_bytes: int = MAX_FILE_BYTES, budget: Budget | None = None
                  ) -> ReadResult:
    """The records of one file (or why there are none)."""
    budget = budget if budget is not None else Budget()
    name = display_name(path)
    result = ReadResult(files=[name])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pymatgen warns on odd input; we report instead
        try:
            _read(path, name, declared, max_file_bytes, budget, result)
        except CrystalParseError as error:
            result.problems.extend(error.problems)
        except Exception as error:  # a reader bug on hostile input must not crash the upload
            result.problems.append(Problem(name, None, None,
                                           f"not readable ({type(error).__name__}: "
                                           f"{_short(error)})"))
    if not result.records and not result.problems:
        result.problems.append(Problem(name, None, None,
                                       "no structure found; expected at least one record"))
    return result


def _read(path: Path, name: str, declared: Mapping[str, str], max_file_bytes: int,
          budget: Budget, result: ReadResult) -> None:
    kind = "csv" if path.name.lower().endswith(".csv") else structure_format(path)
    if kind is None:
        result.problems.append(Problem(name, None, None, "unknown structure format; expected "
                                                         ".cif, .json (pymatgen), .xyz/.extxyz, "
                                                         "POSCAR/CONTCAR, .vasp or .csv"))
        return
    data = read_file_bytes(path, max_file_bytes)
    budget.bytes -= len(data)  # the upload's total may overshoot by one file at most
    text = decode_text(data, name)
    if kind == "csv":
        _read_csv(path, name, text, declared, result, budget)
        return
    parsed = StructureFile(name)
    parse_structure_text(text, kind, parsed, display_name(path.stem), max(budget.records, 0))
    parsed.finish()
    result.problems.extend(parsed.problems)
    if parsed.truncated:
        budget.records = -1
        return
    budget.records -= len(parsed.records)
    header_problems: set[str] = set()
    for item in parsed.records:
        properties, material_id = _properties(item.values, declared, name, item.record, result,
                                              header_problems)
        record = item.record
        if material_id and item.record.startswith("#"):
            record = f"{item.record} ({material_id})"
        result.records.append(LabRecord(name, record, item.crystal, properties, material_id))


# --- properties from key/value pairs ------------------------------------------------------


def _properties(pairs: Mapping[str, Any], declared: Mapping[str, str], file: str, record: str,
                result: ReadResult, header_problems: set[str], check_conflicts: bool = True
                ) -> tuple[dict[str, Any], str | None]:
    """Property values (unit-checked names) and the lab's id from one record's pairs."""
    values: dict[str, Any] = {}
    material_id = next((str(pairs[k]) for k in _ID_KEYS if pairs.get(k) not in (None, "")), None)
    if check_conflicts:
        for key, why in column_conflicts(pairs, declared):
            if key not in header_problems:
                header_problems.add(key)
                result.problems.append(Problem(file, record, key, why))
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
        if column.key in values:
            continue  # two columns for one field: refused above
        values[column.key] = _number(raw)
        result.units[column.key] = column.unit
    return values, material_id


def _number(raw: Any) -> Any:
    """A float when the value is a number in the strict grammar (NaN and inf included, to
    be refused by name); anything else as given, for check_value to name."""
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, float):
        return raw
    if isinstance(raw, int):
        try:
            return float(raw)
        except OverflowError:
            return str(raw)
    if isinstance(raw, str):
        token = raw.strip()
        if token.lower() in ("nan", "+nan", "-nan", "inf", "+inf", "-inf", "infinity",
                             "+infinity", "-infinity"):
            return float(token)  # refused by check_value as not finite, by name
        try:
            return parse_number(token)
        except NumberError:
            return raw
    return raw


# --- CSV ----------------------------------------------------------------------------------


def _read_csv(path: Path, name: str, text: str, declared: Mapping[str, str],
              result: ReadResult, budget: Budget) -> None:
    csv.field_size_limit(MAX_FILE_BYTES)
    rows = csv.reader(io.StringIO(text))
    try:
        raw_headers = next(rows)
    except StopIteration:
        result.problems.append(Problem(name, None, None, "file is empty"))
        return
    headers = [h.strip() for h in raw_headers]
    lowered = [h.lower() for h in headers]
    structure_columns = [h for h in headers if h.lower() in _STRUCTURE_COLUMNS]
    if not structure_columns:
        result.problems.append(Problem(name, None, None,
                                       f"no CIF column among {headers[:12]}; expected a column "
                                       "'cif' (CIF text) or 'cif_file' (path to a .cif)"))
        return
    header_problems: set[str] = set()
    for header, why in column_conflicts(headers, declared):
        header_problems.add(header)
        result.problems.append(Problem(name, None, header, why))
    if len(structure_columns) > 1 and not any(h in header_problems for h in structure_columns):
        result.problems.append(Problem(name, None, structure_columns[1],
                                       f"columns {', '.join(map(repr, structure_columns))} all "
                                       "name a structure; keep one"))
        return
    for header in headers:  # report bad property headers even when no row fills them
        if header and header.lower() not in DESCRIPTIVE_COLUMNS and header not in header_problems:
            column = parse_property_header(header, declared)
            if isinstance(column, str):
                header_problems.add(header)
                result.problems.append(Problem(name, None, header, column))
    if any(p.field in structure_columns for p in result.problems):
        return
    body = [row for row in rows if row]  # the csv module skips nothing; blank lines are []
    if len(body) > budget.records:
        result.problems.append(Problem(name, None, None,
                                       f"{len(body)} rows; at most {max(budget.records, 0)} "
                                       f"more records fit in this upload (at most "
                                       f"{MAX_RECORDS} per upload; split it)"))
        budget.records = -1
        return
    budget.records -= len(body)
    structure = lowered.index(structure_columns[0].lower())
    files_read: dict[Path, Crystal | list[Problem]] = {}
    for index, cells in enumerate(body, start=1):
        if len(result.problems) > MAX_PROBLEMS_PER_FILE:
            result.problems.append(Problem(name, None, None, f"stopped at row {index}: too "
                                                             "many problems"))
            break
        if len(cells) != len(headers):
            more = "more" if len(cells) > len(headers) else "fewer"
            result.problems.append(Problem(name, f"row {index}", None,
                                           f"{len(cells)} cells, {abs(len(cells) - len(headers))} "
                                           f"{more} than the header has columns"))
            continue
        pairs = {h: v for h, v in zip(headers, cells, strict=True)
                 if h.lower() not in _STRUCTURE_COLUMNS}
        properties, material_id = _properties(pairs, declared, name, f"row {index}", result,
                                              header_problems, check_conflicts=False)
        record = f"row {index}" + (f" ({material_id})" if material_id else "")
        crystal = _csv_crystal(path, name, headers[structure], cells[structure], record, result,
                               budget, files_read)
        if crystal is not None:
            result.records.append(LabRecord(name, record, crystal, properties, material_id))
    if not body and not result.problems:
        result.problems.append(Problem(name, None, None, "CSV has a header but no rows"))


def _csv_crystal(path: Path, name: str, column: str, cell: str, record: str,
                 result: ReadResult, budget: Budget,
                 files_read: dict[Path, Crystal | list[Problem]]) -> Crystal | None:
    field_name = column.lower()
    if not cell.strip():
        result.problems.append(Problem(name, record, field_name,
                                       "empty: every row needs a structure"))
        return None
    try:
        if field_name == "cif":
            return parse_cif(cell, name, record)
        return _cif_file(path.parent / cell.strip(), record, budget, files_read)
    except CrystalParseError as error:
        for problem in error.problems[:5]:
            prefix = f"{problem.file}: " if problem.file != name else ""
            detail = f"{problem.field}: " if problem.field else ""
            result.problems.append(Problem(name, record, field_name,
                                           f"{prefix}{detail}{problem.message}"))
        return None


def _cif_file(target: Path, record: str, budget: Budget,
              files_read: dict[Path, Crystal | list[Problem]]) -> Crystal:
    """The crystal of a CSV row's cif_file: read once per file, within the upload's bytes."""
    key = Path(os.path.abspath(target))
    if key not in files_read:
        where = display_name(target)
        if budget.bytes < 0:
            files_read[key] = [Problem(where, None, None, (
                f"not read: the upload's files exceed {_mib(MAX_UPLOAD_BYTES)}; split the "
                "upload"))]
        else:
            try:
                data = read_file_bytes(target, MAX_FILE_BYTES)
                budget.bytes -= len(data)
                files_read[key] = parse_cif(decode_text(data, where), where)
            except CrystalParseError as error:
                files_read[key] = error.problems
    outcome = files_read[key]
    if isinstance(outcome, list):
        raise CrystalParseError(outcome)
    return outcome


def _mib(size: int) -> str:
    return f"{size / 2**20:,.3g} MiB" if size < 2**20 else f"{size / 2**20:,.0f} MiB"


def _short(error: Exception | str, limit: int = 300) -> str:
    text = str(error).replace("\n", " ")
    return text if len(text) <= limit else text[:limit] + "..."


__all__ = ["MAX_FILE_BYTES", "MAX_RECORDS", "ColumnUnit", "ReadResult", "expand_paths",
           "read_lab_file", "read_lab_files"]
