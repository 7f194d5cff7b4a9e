"""Reading and writing crystals: CIF, POSCAR, pymatgen JSON, extxyz — one reader for all.

`materialabs upload`, `predict`, `generate --parent` and `dft run` read structure files
through :func:`read_structure_file` (and the ingest service reads Crystal records through
:func:`crystal_from_record`); nothing else opens them. Nothing read is trusted:

* a file must be a regular file (FIFOs and devices are refused before they are opened),
  at most MAX_FILE_BYTES, read with that cap, and UTF-8 text;
* counts are checked before anything is built from them: atom sites per structure
  (crystals.MAX_SITES, counted before a CIF's symmetry is expanded), symmetry operations,
  frames, blocks and records per file;
* numbers follow the format's grammar (Python's float() also takes '1_5', 'infinity' and
  ' 1e5 '), cell parameters must describe a real cell, CIF data items must not repeat;
* every reason is a :class:`Problem` naming the file, the record and the field.

The readers are written here rather than delegated to pymatgen or ASE because those accept
far more than they should (underscored numbers, silently dropped CIF blocks, species
guessed for VASP 4 POSCARs, a CIF angle of 450°) and their costs are unbounded (pymatgen's
CIF symmetry merging is quadratic in the expanded sites). pymatgen still supplies the
operations of a space-group symbol and writes files; ASE writes extxyz.
"""

from __future__ import annotations

import codecs
import json
import math
import os
import re
import stat
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from materialabs.crystals import (
    MAX_ABS_FRACTIONAL,
    MAX_CELL_EDGE_ANGSTROM,
    MAX_SITES,
    Crystal,
    check_crystal,
)

MAX_FILE_BYTES = 64 * 1024 * 1024
MAX_RECORDS_PER_FILE = 200_000
MAX_SYMMETRY_OPERATIONS = 192  # the most any space group has (Fm-3m, conventional cell)
MAX_CIF_ITEMS_PER_BLOCK = 10_000  # data names; real CIFs have a few hundred
MAX_PROBLEMS_PER_RECORD = 20
MAX_PROBLEMS_PER_FILE = 1000
# A safety net behind the count limits: reading one file may not take longer than this.
MAX_SECONDS_PER_FILE = 120.0

STRUCTURE_FORMATS = "CIF (.cif), pymatgen or Crystal-record JSON (.json), extxyz " \
                    "(.xyz/.extxyz), POSCAR/CONTCAR or .vasp"


# --- problems -----------------------------------------------------------------------------

_LIMITS = {"file": 1000, "record": 300, "field": 200, "message": 1200}


def _printable(text: str, limit: int) -> str:
    """Text safe to print: control and unencodable characters escaped, length capped."""
    if len(text) > limit:
        text = text[:limit] + "..."
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


@dataclass(frozen=True)
class Problem:
    """One reason a record (or a whole file) is refused: where, and what was expected.

    The parts are made printable and capped in length here, so a hostile header or value
    can neither flood the report nor break the terminal.
    """

    file: str
    record: str | None
    field: str | None
    message: str

    def __post_init__(self) -> None:
        for name, limit in _LIMITS.items():
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, _printable(str(value), limit))

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


class CrystalParseError(ValueError):
    """A structure file or record could not be read; the message says where and why."""

    def __init__(self, problems: Problem | Sequence[Problem] | str) -> None:
        if isinstance(problems, str):
            problems = Problem(problems, None, None, "not readable")
        self.problems = [problems] if isinstance(problems, Problem) else list(problems)
        text = str(self.problems[0])
        if len(self.problems) > 1:
            text += f" (and {len(self.problems) - 1} more problem(s))"
        super().__init__(text)


class FieldError(ValueError):
    """One record's (field, message), raised where reading the record cannot go on."""

    def __init__(self, field: str | None, message: str) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.message = message


# --- numbers ------------------------------------------------------------------------------

_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_CIF_NUMBER = re.compile(r"([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)(?:\(\d+\))?")
_INTEGER = re.compile(r"[+-]?\d{1,12}")
_NOT_FINITE = re.compile(r"[+-]?(?:nan|inf|infinity)", re.IGNORECASE)


class NumberError(ValueError):
    """Text that is not a finite number in the format's grammar."""


def parse_number(text: str, *, cif: bool = False) -> float:
    """A finite float from a decimal number (CIF: with an optional '(su)'); NumberError.

    Stricter than float(): no '1_5', no 'infinity', no surrounding junk; NaN, infinity and
    numbers beyond the float range are refused with a message that says so.
    """
    token = text.strip(" \t\r\n")
    match = (_CIF_NUMBER if cif else _NUMBER).fullmatch(token)
    if match is None:
        shown = repr(token[:40] + ("..." if len(token) > 40 else ""))
        if _NOT_FINITE.fullmatch(token):
            raise NumberError(f"{shown} is NaN or infinite; expected a finite number")
        raise NumberError(f"expected a number, got {shown}")
    value = float(match.group(1) if cif else token)
    if not math.isfinite(value):
        raise NumberError(f"{token[:40]!r} is beyond the range of a 64-bit float; "
                          "expected a finite number")
    return value


def _number(token: str, field: str, *, cif: bool = False) -> float:
    try:
        return parse_number(token, cif=cif)
    except NumberError as error:
        raise FieldError(field, str(error)) from None


def _integer(token: str, field: str) -> int:
    if _INTEGER.fullmatch(token.strip()) is None:
        raise FieldError(field, f"expected a whole number, got {token.strip()[:40]!r}")
    return int(token)


def _json_number(value: Any, field: str) -> float:
    """A finite float from a JSON value that is a number (not a bool, not a string)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FieldError(field, f"expected a number, got {type(value).__name__} "
                              f"{str(value)[:40]!r}")
    try:
        number = float(value)
    except OverflowError:
        raise FieldError(field, "number beyond the range of a 64-bit float") from None
    if not math.isfinite(number):
        raise FieldError(field, f"{number} is NaN or infinite; expected a finite number")
    return number


# --- files --------------------------------------------------------------------------------


def display_name(path: str | os.PathLike[str]) -> str:
    """A path as text that can always be printed and stored (undecodable bytes escaped)."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def _file_kind(mode: int) -> str:
    for test, kind in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISDIR, "a folder")):
        if test(mode):
            return kind
    return "not a regular file"


def read_file_bytes(path: Path, max_bytes: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of a regular file of at most ``max_bytes``; CrystalParseError otherwise.

    A FIFO, device or socket is refused before it is opened (opening some devices has
    effects, reading /dev/zero never ends); the file is opened non-blocking and checked
    again through its descriptor (it may have been swapped), then read with the cap.
    """
    name = display_name(path)

    def refuse(message: str) -> CrystalParseError:
        return CrystalParseError(Problem(name, None, None, message))

    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise refuse("no such file") from None
    except OSError as error:
        raise refuse(f"cannot read: {error.strerror}") from None
    if not stat.S_ISREG(info.st_mode):
        raise refuse(f"{_file_kind(info.st_mode)}, not a regular file; expected a "
                     "structure file")
    if info.st_size > max_bytes:
        raise refuse(_too_big(info.st_size, max_bytes))
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        descriptor = os.open(path, flags)
    except OSError as error:
        raise refuse(f"cannot read: {error.strerror}") from None
    with os.fdopen(descriptor, "rb") as stream:
        mode = os.fstat(stream.fileno()).st_mode
        if not stat.S_ISREG(mode):
            raise refuse(f"{_file_kind(mode)}, not a regular file; expected a structure file")
        data = stream.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise refuse(_too_big(len(data), max_bytes))
    return data


def _too_big(size: int, limit: int) -> str:
    return (f"{size / 2**20:.1f} MiB is over the limit of {limit / 2**20:.0f} MiB per file; "
            "split it")


def decode_text(data: bytes, name: str) -> str:
    """UTF-8 text (BOM dropped); CrystalParseError for empty, binary or non-UTF-8 bytes."""
    def refuse(message: str) -> CrystalParseError:
        return CrystalParseError(Problem(name, None, None, message))

    if not data.strip():
        raise refuse("file is empty")
    nul = data.find(b"\x00")
    if nul >= 0:
        raise refuse(f"binary file (a NUL byte at offset {nul}); expected text")
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise refuse(f"not UTF-8 text: byte 0x{data[error.start]:02x} on line {line}; "
                     "save the file as UTF-8 (or ASCII)") from None


def read_text_file(path: Path, max_bytes: int = MAX_FILE_BYTES) -> str:
    return decode_text(read_file_bytes(path, max_bytes), display_name(path))


# --- the reader ---------------------------------------------------------------------------


@dataclass(frozen=True)
class StructureRecord:
    """One structure read from a file.

    ``record`` names it within the file (what problems and stored datasets say: 'frame 2',
    '#0', the CIF's stem); ``name`` names it across files (what predict prints and the
    generators record as a parent: 'SrTiO3', 'frames#2'). ``values`` are the key/value
    pairs next to the structure (properties, ids), as written: the upload reads them.
    """

    record: str
    name: str
    crystal: Crystal
    values: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class StructureFile:
    """What one file held: the records that could be read and a problem for the rest."""

    file: str
    records: list[StructureRecord] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    truncated: bool = False  # it held more records than could be read
    _dropped: int = 0

    def problem(self, record: str | None, field_name: str | None, message: str) -> None:
        if len(self.problems) < MAX_PROBLEMS_PER_FILE:
            self.problems.append(Problem(self.file, record, field_name, message))
        else:
            self._dropped += 1

    def finish(self) -> StructureFile:
        if self._dropped:
            self.problems.append(Problem(self.file, None, None,
                                         f"... and {self._dropped} more problems"))
            self._dropped = 0
        return self


def structure_format(path: Path | str) -> str | None:
    """'cif', 'json', 'extxyz' or 'poscar' from the file name, None if it is none of them."""
    name = Path(path).name.lower()
    if name.endswith(".cif"):
        return "cif"
    if name.endswith(".json"):
        return "json"
    if name.endswith((".xyz", ".extxyz")):
        return "extxyz"
    if name.startswith(("poscar", "contcar")) or name.endswith(".vasp"):
        return "poscar"
    return None


def read_structure_file(path: Path, max_bytes: int = MAX_FILE_BYTES,
                        max_records: int = MAX_RECORDS_PER_FILE) -> StructureFile:
    """Every structure in one file, and a Problem for everything that could not be read.

    Never raises for the file's content. The structures are parsed, not validated:
    :func:`crystals.check_crystal` (or records.validate_records) says if they are usable.
    """
    path = Path(path)
    result = StructureFile(display_name(path))
    kind = structure_format(path)
    if kind is None:
        result.problem(None, None, f"unknown structure format; expected {STRUCTURE_FORMATS}")
        return result
    try:
        text = read_text_file(path, max_bytes)
    except CrystalParseError as error:
        result.problems.extend(error.problems)
        return result
    parse_structure_text(text, kind, result, display_name(path.stem), max_records)
    return result.finish()


def parse_structure_text(text: str, kind: str, into: StructureFile, stem: str,
                         max_records: int = MAX_RECORDS_PER_FILE) -> None:
    """Parse ``text`` of format ``kind`` into ``into`` (records and problems)."""
    reader = {"cif": _read_cif, "json": _read_json, "extxyz": _read_extxyz,
              "poscar": _read_poscar}[kind]
    reader(text, into, stem, max_records, time.monotonic() + MAX_SECONDS_PER_FILE)
    if not into.records and not into.problems:
        into.problem(None, None, "no structure found; expected at least one record")


def read_crystals(path: Path) -> list[tuple[str, Crystal]]:
    """(name, crystal) for every structure in a file, each checked to be usable
    (crystals.check_crystal); CrystalParseError listing the problems otherwise.

    What `predict`, `generate --parent` and `dft run` read.
    """
    result = read_structure_file(Path(path))
    problems = list(result.problems)
    for item in result.records:
        problems += [Problem(result.file, item.record, name, message)
                     for name, message in check_crystal(item.crystal)]
    if problems:
        raise CrystalParseError(problems)
    return [(item.name, item.crystal) for item in result.records]


class _Deadline:
    def __init__(self, at: float) -> None:
        self.at = at
        self._calls = 0

    def passed(self) -> bool:
        self._calls += 1
        return self._calls % 256 == 0 and time.monotonic() > self.at


def _too_slow(into: StructureFile) -> None:
    into.problem(None, None, f"reading took longer than {MAX_SECONDS_PER_FILE:g} s; "
                             "split the file")


def _too_many_records(into: StructureFile, count: int | str, limit: int) -> None:
    into.truncated = True
    into.problem(None, None, f"{count} records; at most {limit} can be read (a file, and an "
                             f"upload, holds at most {MAX_RECORDS_PER_FILE}); split it")


# --- cell parameters ----------------------------------------------------------------------


def cell_parameter_problems(lengths: Sequence[float], angles: Sequence[float],
                            names: Sequence[str] = ("a", "b", "c", "alpha", "beta", "gamma")
                            ) -> list[tuple[str, str]]:
    """Why six cell parameters (Å, degrees) do not describe a real cell; empty if they do."""
    problems = []
    for name, value in zip(names[:3], lengths, strict=True):
        if not 0 < value <= MAX_CELL_EDGE_ANGSTROM:
            problems.append((name, f"{value:g} Å; expected a length > 0 and at most "
                                   f"{MAX_CELL_EDGE_ANGSTROM:g} Å"))
    for name, value in zip(names[3:], angles, strict=True):
        if not 0 < value < 180:
            problems.append((name, f"{value:g}°; expected an angle between 0° and 180°"))
    if not problems:
        alpha, beta, gamma = angles
        if not (alpha + beta + gamma < 360 and alpha < beta + gamma and beta < alpha + gamma
                and gamma < alpha + beta):
            problems.append((names[3], f"angles {alpha:g}°, {beta:g}°, {gamma:g}° cannot "
                                       "meet at a corner of a cell (each must be less than "
                                       "the sum of the other two, all three less than 360°)"))
        elif _volume_factor(alpha, beta, gamma) < 1e-6:
            problems.append((names[3], f"angles {alpha:g}°, {beta:g}°, {gamma:g}° make a flat "
                                       "cell (almost no volume)"))
    return problems


def _volume_factor(alpha: float, beta: float, gamma: float) -> float:
    """Cell volume / (a b c) for these angles (degrees): 0 for a flat cell."""
    ca, cb, cg = (math.cos(math.radians(x)) for x in (alpha, beta, gamma))
    return math.sqrt(max(0.0, 1 - ca * ca - cb * cb - cg * cg + 2 * ca * cb * cg))


def lattice_from_parameters(a: float, b: float, c: float,
                            alpha: float, beta: float, gamma: float) -> np.ndarray:
    """Cell vectors (rows, Å) from lengths (Å) and angles (degrees), pymatgen's convention.

    ValueError for parameters that describe no cell (see :func:`cell_parameter_problems`).
    """
    problems = cell_parameter_problems((a, b, c), (alpha, beta, gamma))
    if problems:
        raise ValueError("; ".join(f"{name}: {message}" for name, message in problems))
    alpha_r, beta_r, gamma_r = (math.radians(x) for x in (alpha, beta, gamma))
    cos_a, cos_b, cos_g = math.cos(alpha_r), math.cos(beta_r), math.cos(gamma_r)
    sin_a, sin_b = math.sin(alpha_r), math.sin(beta_r)
    val = (cos_a * cos_b - cos_g) / (sin_a * sin_b)
    val = max(-1.0, min(1.0, val))  # rounding can push |val| just past 1
    gamma_star = math.acos(val)
    return np.array([
        [a * sin_b, 0.0, a * cos_b],
        [-b * sin_a * math.cos(gamma_star), b * sin_a * math.sin(gamma_star), b * cos_a],
        [0.0, 0.0, c],
    ])


# --- CIF ----------------------------------------------------------------------------------

_CELL_TAGS = ("_cell_length_a", "_cell_length_b", "_cell_length_c",
              "_cell_angle_alpha", "_cell_angle_beta", "_cell_angle_gamma")
_SYMOP_TAGS = ("_symmetry_equiv_pos_as_xyz", "_space_group_symop_operation_xyz")
_SYMBOL_TAGS = ("_symmetry_space_group_name_h-m", "_space_group_name_h-m_alt",
                "_symmetry_space_group_name_hall", "_space_group_name_hall")
_NUMBER_TAGS = ("_symmetry_int_tables_number", "_space_group_it_number")
# How pymatgen's space-group look-up spells them.
_PYMATGEN_TAGS = dict(zip(_SYMBOL_TAGS + _NUMBER_TAGS, (
    "_symmetry_space_group_name_H-M", "_space_group_name_H-M_alt",
    "_symmetry_space_group_name_hall", "_space_group_name_Hall",
    "_symmetry_Int_Tables_number", "_space_group_IT_number"), strict=True))
_KEPT_LOOP_PREFIXES = ("_atom_site_", "_symmetry_equiv_pos_", "_space_group_symop_")
# A CIF token: a quoted string (the quote closes only before whitespace), a comment, or a
# bare word.
_CIF_TOKEN = re.compile(r"""'(.*?)'(?=\s|$)|"(.*?)"(?=\s|$)|(\#.*)|(\S+)""")
_RESERVED = ("data_", "loop_", "save_", "global_", "stop_")
_ELEMENT_IN_SYMBOL = re.compile(r"([A-Z][a-z]?)(?:\d*[+-]|[+-]\d*|\d+)?")
_ELEMENT_IN_LABEL = re.compile(r"([A-Z][a-z]?)")


@dataclass
class _CifLoop:
    tags: list[str]
    line: int
    kept: bool = False
    values: list[str] = field(default_factory=list)
    count: int = 0


@dataclass
class _CifBlock:
    name: str
    line: int
    items: dict[str, str] = field(default_factory=dict)
    loops: list[_CifLoop] = field(default_factory=list)
    seen: dict[str, int] = field(default_factory=dict)  # data name -> line first seen
    spelling: dict[str, str] = field(default_factory=dict)  # data name -> as written
    problems: list[tuple[str | None, str]] = field(default_factory=list)
    abandoned: bool = False

    def problem(self, field_name: str | None, message: str) -> None:
        if len(self.problems) < MAX_PROBLEMS_PER_RECORD:
            self.problems.append((field_name, message))

    def tag(self, name: str, line: int) -> bool:
        """Register a data name; False (and a problem) if the block already has it."""
        if name in self.seen:
            self.problem(name, f"repeated data item (lines {self.seen[name]} and {line}); a "
                               "CIF block may name each data item once")
            return False
        if len(self.seen) >= MAX_CIF_ITEMS_PER_BLOCK:
            self.problem(None, f"more than {MAX_CIF_ITEMS_PER_BLOCK} data items in one block")
            self.abandoned = True
            return False
        self.seen[name] = line
        return True


def _normalise_tag(tag: str) -> str:
    # Data names are case-insensitive; CIF2/DDLm spell _atom_site_fract_x _atom_site.fract_x.
    return tag.lower().replace(".", "_")


def _starts_structure(line: str) -> bool:
    """Whether a line can end a loop's values: it starts a data name or a reserved word."""
    stripped = line.lstrip()
    return stripped.startswith("_") or stripped[:7].lower().startswith(_RESERVED)


class _CifScanner:
    """CIF 1.1 syntax into blocks of items and loops, bounded in memory and time.

    Values of loops nobody reads (reflection lists can be most of a file) are skipped
    line by line without being tokenised; atom-site and symmetry loops keep at most
    what the limits allow.
    """

    def __init__(self, text: str, into: StructureFile, deadline: _Deadline,
                 max_blocks: int) -> None:
        self.lines = text.splitlines()
        self.into = into
        self.deadline = deadline
        self.max_blocks = max_blocks
        self.blocks: list[_CifBlock] = []
        self.block: _CifBlock | None = None
        self.pending: tuple[str, int] | None = None  # a data name waiting for its value
        self.loop: _CifLoop | None = None
        self.loop_phase = ""  # "tags" | "values"
        self.skipping = False  # inside the values of a loop nobody reads
        self.failed = False

    def scan(self) -> list[_CifBlock]:
        index = 0
        lines = self.lines
        while index < len(lines) and not self.failed:
            if self.deadline.passed():
                _too_slow(self.into)
                self.failed = True
                break
            line = lines[index]
            if self.block is not None and self.block.abandoned:
                if line.lstrip()[:5].lower() == "data_":
                    self.block = None
                else:
                    index += 1
                    continue
            if line.startswith(";"):
                index = self._text_field(index)
                continue
            if self.skipping:
                if not _starts_structure(line):
                    index += 1
                    continue
                self.skipping = False
            self._tokens(line, index + 1)
            index += 1
        self._end_block()
        return self.blocks

    def _text_field(self, start: int) -> int:
        """A ';'-delimited multi-line value; returns the index after its closing line."""
        end = start + 1
        while end < len(self.lines) and not self.lines[end].startswith(";"):
            end += 1
        if end >= len(self.lines):
            self._file_problem(f"line {start + 1}: text field opened with ';' is never closed")
            self.failed = True
            return end
        if not self.skipping:
            value = "\n".join([self.lines[start][1:], *self.lines[start + 1:end]])
            self._value(value, start + 1)
        rest = self.lines[end][1:]
        if rest.strip():
            self._tokens(rest, end + 1)
        return end + 1

    def _file_problem(self, message: str) -> None:
        if self.block is not None:
            self.block.problem(None, message)
        else:
            self.into.problem(None, None, message)

    def _tokens(self, line: str, number: int) -> None:
        if "'" not in line and '"' not in line and "#" not in line:
            for word in line.split():  # most lines: bare words only, no regex needed
                if self.failed or (self.block is not None and self.block.abandoned):
                    return
                self._word(word, number)
            return
        for match in _CIF_TOKEN.finditer(line):
            if self.failed or (self.block is not None and self.block.abandoned):
                return
            quoted = match.group(1) if match.group(1) is not None else match.group(2)
            if quoted is not None:
                self._value(quoted, number)
                continue
            word = match.group(4)
            if word is None:
                return  # a comment runs to the end of the line
            self._word(word, number)

    def _word(self, word: str, number: int) -> None:
        """A bare token: a reserved word, a data name or a value."""
        if word[0] != "_" and not (word[0] in "dlsgDLSG" and "_" in word):
            self._value(word, number)  # the common case, decided cheaply
            return
        lower = word.lower()
        if lower.startswith("data_"):
            self._start_block(word[5:], number)
        elif lower == "loop_":
            self._end_pending()
            self._end_loop()
            self.loop, self.loop_phase = _CifLoop([], number), "tags"
            if self.block is None:
                self._file_problem(f"line {number}: loop_ before the first data_ block")
                self.failed = True
        elif lower.startswith(("save_", "global_", "stop_")):
            self._file_problem(f"line {number}: {word[:20]!r}: save frames and global "
                               "blocks are not supported in structure files")
            self.failed = True
        elif word[0] == "_":
            tag = _normalise_tag(word)
            if self.block is not None and tag not in self.block.spelling:
                self.block.spelling[tag] = word[:80]
            self._tag(tag, number)
        else:
            self._value(word, number)

    def _start_block(self, name: str, number: int) -> None:
        self._end_block()
        if len(self.blocks) >= self.max_blocks:
            _too_many_records(self.into, f"more than {self.max_blocks}", self.max_blocks)
            self.failed = True
            return
        self.block = _CifBlock(name, number)
        if not name:
            self.block.problem(None, f"line {number}: data_ block without a name")

    def _end_block(self) -> None:
        self._end_pending()
        self._end_loop()
        if self.block is not None:
            self.blocks.append(self.block)
        self.block = None

    def _end_pending(self) -> None:
        if self.pending is not None and self.block is not None:
            tag, number = self.pending
            self.block.problem(tag, f"line {number}: data name without a value")
        self.pending = None

    def _tag(self, tag: str, number: int) -> None:
        block = self.block
        if block is None:
            self._file_problem(f"line {number}: data name {tag[:40]} before the first data_ "
                               "block")
            self.failed = True
            return
        self._end_pending()
        if self.loop is not None and self.loop_phase == "tags":
            if block.tag(tag, number):
                self.loop.tags.append(tag)
            return
        self._end_loop()
        if block.tag(tag, number):
            self.pending = (tag, number)
        else:
            self.pending = ("", number)  # swallow its value: the repeat is reported

    def _value(self, value: str, number: int) -> None:
        block = self.block
        if block is None:
            self._file_problem(f"not a CIF (no data_ block before line {number}: "
                               f"{value[:30]!r})")
            self.failed = True
            return
        if self.pending is not None:
            tag, _ = self.pending
            if tag:
                block.items[tag] = value
            self.pending = None
            return
        loop = self.loop
        if loop is None:
            block.problem(None, f"line {number}: value {value[:30]!r} has no data name")
            return
        if self.loop_phase == "tags":
            if not loop.tags:
                block.problem(None, f"line {loop.line}: loop_ without data names")
                self.loop = None
                return
            self.loop_phase = "values"
            loop.kept = any(t.startswith(_KEPT_LOOP_PREFIXES) for t in loop.tags)
            if not loop.kept:
                self.skipping = True  # nobody reads it: skip its lines untokenised
        if loop.kept:
            loop.count += 1
            # One row past the site limit is enough to report it.
            if loop.count <= (MAX_SITES + 1) * len(loop.tags):
                loop.values.append(value)

    def _end_loop(self) -> None:
        loop = self.loop
        self.loop, self.loop_phase, self.skipping = None, "", False
        if loop is None or self.block is None:
            return
        if not loop.tags:
            self.block.problem(None, f"line {loop.line}: loop_ without data names")
            return
        loop.kept = loop.kept or any(t.startswith(_KEPT_LOOP_PREFIXES) for t in loop.tags)
        if loop.kept:
            if loop.count == 0:
                self.block.problem(loop.tags[0], f"loop on line {loop.line} has no values")
            elif loop.count % len(loop.tags):
                self.block.problem(loop.tags[0],
                                   f"loop on line {loop.line} of {len(loop.tags)} data names "
                                   f"holds {loop.count} values, not a multiple of "
                                   f"{len(loop.tags)} (a row is short or long)")
        self.block.loops.append(loop)


def _read_cif(text: str, into: StructureFile, stem: str, max_records: int,
              deadline_at: float) -> None:
    scanner = _CifScanner(text, into, _Deadline(deadline_at), max_records)
    blocks = scanner.scan()
    if not blocks:
        if not into.problems:
            into.problem(None, None, "not a CIF (no data_ block)")
        return
    names: dict[str, int] = {}
    structural = {id(b) for b in blocks if _has_structure(b) or b.problems}
    single = len(blocks) == 1
    for index, block in enumerate(blocks):
        label = stem if single else f"{stem}#{index}"
        where = label if single else f"{label} (data_{block.name[:60]})"
        if block.name.lower() in names:
            into.problem(where, None, f"data block name repeated (first at block "
                                      f"{names[block.name.lower()]}); block names must differ")
            continue
        names[block.name.lower()] = index
        if structural and id(block) not in structural:
            continue  # a metadata block (publication details): no structure to read
        if block.problems:
            for field_name, message in block.problems:
                into.problem(where, block.spelling.get(field_name or "", field_name), message)
            continue
        try:
            crystal = _cif_crystal(block)
        except FieldError as refused:
            into.problem(where, block.spelling.get(refused.field or "", refused.field),
                         refused.message)
            continue
        into.records.append(StructureRecord(label, label, crystal))


def _has_structure(block: _CifBlock) -> bool:
    return any(t.startswith("_cell_") for t in block.seen) or \
        any(t.startswith("_atom_site_") for t in block.seen)


def _site_loop(block: _CifBlock) -> _CifLoop:
    loops = [loop for loop in block.loops if "_atom_site_fract_x" in loop.tags]
    if not loops:
        if any("_atom_site_cartn_x" in loop.tags for loop in block.loops):
            raise FieldError("_atom_site_cartn_x", "Cartesian sites are not supported; expected "
                                                 "_atom_site_fract_x/y/z")
        raise FieldError("_atom_site_fract_x", "no atom sites; expected a loop of "
                                             "_atom_site_type_symbol (or _atom_site_label) "
                                             "and _atom_site_fract_x/y/z")
    if len(loops) > 1:
        raise FieldError("_atom_site_fract_x", f"{len(loops)} atom-site loops; expected one")
    loop = loops[0]
    for tag in ("_atom_site_fract_y", "_atom_site_fract_z"):
        if tag not in loop.tags:
            raise FieldError(tag, "missing from the atom-site loop")
    if "_atom_site_type_symbol" not in loop.tags and "_atom_site_label" not in loop.tags:
        raise FieldError("_atom_site_type_symbol", "missing (and no _atom_site_label to read "
                                                 "the element from)")
    return loop


def _cif_crystal(block: _CifBlock) -> Crystal:
    """The crystal of one block (scanned without problems); FieldError for what is wrong."""
    cell = []
    for tag in _CELL_TAGS:
        if tag not in block.items:
            raise FieldError(tag, "missing; expected the cell lengths (Å) and angles (°) "
                                  "_cell_length_a/b/c, _cell_angle_alpha/beta/gamma")
        cell.append(_number(block.items[tag], tag, cif=True))
    bad = cell_parameter_problems(cell[:3], cell[3:], _CELL_TAGS)
    if bad:
        raise FieldError(*bad[0])
    lattice = lattice_from_parameters(*cell)
    loop = _site_loop(block)
    width = len(loop.tags)
    rows = loop.count // width
    if rows == 0:
        raise FieldError(loop.tags[0], "the atom-site loop has no rows")
    if rows > MAX_SITES:
        raise FieldError(loop.tags[0], f"{rows} atom sites; at most {MAX_SITES} per structure")
    column = {tag: i for i, tag in enumerate(loop.tags)}
    symbol_tag = "_atom_site_type_symbol" if "_atom_site_type_symbol" in column \
        else "_atom_site_label"
    species, frac = [], []
    for row in range(rows):
        cells = loop.values[row * width:(row + 1) * width]
        species.append(_cif_symbol(cells[column[symbol_tag]], symbol_tag == "_atom_site_label"))
        position = []
        for axis in "xyz":
            tag = f"_atom_site_fract_{axis}"
            try:
                position.append(parse_number(cells[column[tag]], cif=True))
            except NumberError as error:
                raise FieldError(tag, f"site {row} ({cells[column[symbol_tag]][:12]}): "
                                    f"{error}") from None
        frac.append(position)
        if "_atom_site_occupancy" in column:
            _check_occupancy(cells[column["_atom_site_occupancy"]], row,
                             cells[column[symbol_tag]])
    operations = _cif_operations(block)
    if len(operations) > 1:
        # Images are wrapped into the cell: check first, or 1e15 would pass as noise.
        far = [row for row, position in enumerate(frac)
               if max(map(abs, position)) > MAX_ABS_FRACTIONAL]
        if far:
            raise FieldError("_atom_site_fract_x", f"site {far[0]}: a coordinate of "
                                                   f"{max(map(abs, frac[far[0]])):.4g}; "
                                                   f"expected within ±{MAX_ABS_FRACTIONAL:g}")
        species, expanded = _expand(species, np.array(frac), operations)
        return Crystal.from_arrays(lattice, species, expanded)
    return Crystal.from_arrays(lattice, species, np.asarray(frac, dtype=float).reshape(-1, 3))


def _cif_symbol(token: str, from_label: bool) -> str:
    """The element of a site: 'Sr2+' -> 'Sr'; a label 'Ti1a' -> 'Ti'; anything else as
    written (so the structure check names it as an unknown element)."""
    match = (_ELEMENT_IN_LABEL.match(token) if from_label
             else _ELEMENT_IN_SYMBOL.fullmatch(token))
    return match.group(1) if match else token


def _check_occupancy(token: str, row: int, label: str) -> None:
    where = f"site {row} ({label[:12]})"
    if token in (".", "?"):
        return  # CIF's "inapplicable" / "unknown": the dictionary's default, 1
    try:
        occupancy = parse_number(token, cif=True)
    except NumberError as error:
        raise FieldError("_atom_site_occupancy", f"{where}: {error}") from None
    if occupancy == 0:
        raise FieldError("_atom_site_occupancy", f"{where}: occupancy 0 (an empty site); "
                                               "expected 1 (ordered structures only)")
    if abs(occupancy - 1.0) > 1e-3:
        raise FieldError("_atom_site_occupancy", f"{where}: occupancy {occupancy:g}: partial "
                                               "occupancies are not supported (expected 1)")


def _loop_column(block: _CifBlock, tag: str) -> tuple[list[str], int] | None:
    """(the values kept, how many the file has) of a data name, looped or not."""
    for loop in block.loops:
        if tag in loop.tags:
            width, index = len(loop.tags), loop.tags.index(tag)
            return loop.values[index::width][:loop.count // width], loop.count // width
    return ([block.items[tag]], 1) if tag in block.items else None


_IDENTITY = (np.eye(3), np.zeros(3))


def _cif_operations(block: _CifBlock) -> list[tuple[np.ndarray, np.ndarray]]:
    """The block's symmetry operations (rotation, translation): listed, else from its
    space-group symbol or number; [identity] for P1."""
    listed = {tag: _loop_column(block, tag) for tag in _SYMOP_TAGS}
    columns = [(tag, ops) for tag, ops in listed.items() if ops is not None]
    if columns:
        tag, (texts, total) = columns[0]
        if total > MAX_SYMMETRY_OPERATIONS:
            raise FieldError(tag, f"{total} symmetry operations; a space group has at most "
                                  f"{MAX_SYMMETRY_OPERATIONS}")
        operations = [_operation(text, tag) for text in texts]
        if len(columns) > 1:
            other_tag, (other, other_total) = columns[1]
            if other_total > MAX_SYMMETRY_OPERATIONS or sorted(map(_op_key, operations)) != \
                    sorted(_op_key(_operation(t, other_tag)) for t in other):
                raise FieldError(other_tag, f"lists other symmetry operations than {tag}")
        if not any(_op_key(op) == _op_key(_IDENTITY) for op in operations):
            raise FieldError(tag, "the symmetry operations do not include the identity 'x,y,z'")
        return operations
    symbol = next(((t, block.items[t]) for t in _SYMBOL_TAGS if t in block.items), None)
    number = next(((t, block.items[t]) for t in _NUMBER_TAGS if t in block.items), None)
    if symbol is None and number is None:
        return [_IDENTITY]
    if symbol is not None and re.sub(r"[\s_]", "", symbol[1]).lower() in ("p1", "?", "."):
        return [_IDENTITY]
    if symbol is None and number is not None and number[1].strip() in ("1", "?", "."):
        return [_IDENTITY]
    return _operations_of_group(symbol, number)


def _operations_of_group(symbol: tuple[str, str] | None,
                         number: tuple[str, str] | None) -> list[tuple[np.ndarray, np.ndarray]]:
    """Operations of a space group named by symbol or number, looked up by pymatgen's CIF
    parser (its tables of settings) on a CIF holding nothing else."""
    import warnings

    from pymatgen.io.cif import CifParser

    given = [item for item in (symbol, number) if item is not None]
    lines = ["data_symmetry"] + [f"{_PYMATGEN_TAGS[tag]} '{re.sub(r'[^ -~]', '', value)[:80]}'"
                                 .replace("''", "'") for tag, value in given]
    where, value = given[0]
    ops: list[Any] = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            parser: Any = CifParser.from_str("\n".join(lines) + "\n")
            ops = parser.get_symops(next(iter(parser._cif.data.values())))
            defaulted = any("Defaulting to P1" in w for w in parser.warnings)
    except Exception:  # noqa: BLE001 - pymatgen raises many kinds on odd symbols
        defaulted = True
    if not ops or defaulted or len(ops) > MAX_SYMMETRY_OPERATIONS:
        raise FieldError(where, f"space group {value[:40]!r} is not known; list the symmetry "
                              "operations (_space_group_symop_operation_xyz)")
    return [(np.array(op.rotation_matrix, dtype=float), np.array(op.translation_vector,
                                                                 dtype=float)) for op in ops]


_OP_TERM = re.compile(r"([+-]?)(\d+(?:\.\d*)?(?:/\d+(?:\.\d*)?)?)?\*?([xyz])?")


def _operation(text: str, tag: str) -> tuple[np.ndarray, np.ndarray]:
    """'-y, x-y, z+1/3' -> (rotation rows, translation); FieldError for anything else."""
    compact = "".join(text.split()).lower()
    if compact == "x,y,z":
        return _IDENTITY
    rotation, translation = _parsed_operation(compact[:201], text[:40], tag)
    return np.array(rotation), np.array(translation)


@lru_cache(maxsize=4096)
def _parsed_operation(compact: str, text: str, tag: str
                      ) -> tuple[tuple[tuple[float, ...], ...], tuple[float, ...]]:
    """The parse of one compact operation string (cached: a file repeats the same few)."""
    parts = compact.split(",")
    if len(compact) > 200 or len(parts) != 3:
        raise FieldError(tag, f"{text[:40]!r}: expected an operation like 'x, -y, z+1/2'")
    rotation, translation = np.zeros((3, 3)), np.zeros(3)
    for row, part in enumerate(parts):
        position = 0
        if not part:
            raise FieldError(tag, f"{text[:40]!r}: an empty component")
        while position < len(part):
            match = _OP_TERM.match(part, position)
            if match is None or match.end() == position or not (match.group(2) or
                                                                 match.group(3)):
                raise FieldError(tag, f"{text[:40]!r}: expected an operation like 'x, -y, "
                                    "z+1/2'")
            if position and not match.group(1):
                raise FieldError(tag, f"{text[:40]!r}: expected + or - between terms")
            sign = -1.0 if match.group(1) == "-" else 1.0
            amount = match.group(2)
            if amount and "/" in amount:
                top, bottom = amount.split("/")
                if float(bottom) == 0:
                    raise FieldError(tag, f"{text[:40]!r}: division by zero")
                value = float(top) / float(bottom)
            else:
                value = float(amount) if amount else 1.0
            if match.group(3):
                rotation[row, "xyz".index(match.group(3))] += sign * value
            else:
                translation[row] += sign * value
            position = match.end()
    if not np.allclose(rotation, np.rint(rotation)) or \
            round(abs(float(np.linalg.det(rotation)))) != 1:
        raise FieldError(tag, f"{text[:40]!r}: not a crystallographic operation (its rotation "
                            "must have integer entries and determinant ±1)")
    return tuple(map(tuple, rotation.tolist())), tuple(translation.tolist())


def _op_key(op: tuple[np.ndarray, np.ndarray]) -> tuple[float, ...]:
    rotation, translation = op
    return (*np.rint(rotation).ravel().tolist(), *np.round(np.mod(translation, 1.0), 6).tolist())


# pymatgen rounds coordinates this close to 1/3 or 2/3 before applying symmetry (CIFs
# print 0.3333): the same, so both give the same sites.
_FRAC_TOLERANCE = 1e-4
_SITE_TOLERANCE = 1e-4


def _expand(species: list[str], frac: np.ndarray, operations: list[tuple[np.ndarray, np.ndarray]]
            ) -> tuple[list[str], np.ndarray]:
    """Every symmetry image of every site, images of one site within 1e-4 merged, as
    pymatgen's CifParser makes them; FieldError as soon as there are more than MAX_SITES."""
    for ideal in (1 / 3, 2 / 3):
        near = np.abs(frac / ideal - 1) <= _FRAC_TOLERANCE
        frac = np.where(near, ideal, frac)
    rotations = np.stack([op[0] for op in operations])
    translations = np.stack([op[1] for op in operations])
    images = np.einsum("oij,sj->soi", rotations, frac) + translations[None]  # (sites, ops, 3)
    images -= np.floor(images)
    out_species: list[str] = []
    out_frac: list[np.ndarray] = []
    for site, symbol in enumerate(species):
        orbit = images[site]
        delta = orbit[:, None, :] - orbit[None, :, :]
        delta -= np.rint(delta)
        same = np.all(np.abs(delta) < _SITE_TOLERANCE, axis=2)
        first = ~np.any(np.tril(same, k=-1), axis=1)  # no earlier image at this position
        kept = orbit[first]
        out_species += [symbol] * len(kept)
        out_frac.append(kept)
        if len(out_species) > MAX_SITES:
            raise FieldError("_atom_site_fract_x", f"the symmetry operations make more than "
                                                 f"{MAX_SITES} sites; at most {MAX_SITES} per "
                                                 "structure")
    return out_species, np.concatenate(out_frac)


def parse_cif(text: str, source: str = "<cif>", record: str | None = None) -> Crystal:
    """The crystal of a one-block CIF; CrystalParseError (naming ``source`` and ``record``,
    e.g. a CSV row) otherwise."""
    blocks = sum(1 for line in text.splitlines() if line.lstrip()[:5].lower() == "data_")
    if blocks > 1:
        raise CrystalParseError(Problem(source, record, None, f"{blocks} data blocks; "
                                                              "expected one structure"))
    result = StructureFile(source)
    _read_cif(text, result, record or "", 1, time.monotonic() + MAX_SECONDS_PER_FILE)
    if not result.records and not result.problems:
        result.problem(record, None, "no structure found")
    if result.problems:
        raise CrystalParseError(result.problems)
    return result.records[0].crystal


# The shared datasets' CIFs are P1 (pymatgen-written); the name stays for their loader.
parse_p1_cif = parse_cif


def split_cif_blocks(text: str) -> list[str]:
    """One string per ``data_`` block (what write_crystals makes of several crystals)."""
    blocks: list[list[str]] = []
    for line in text.splitlines():
        if line.lstrip().lower().startswith("data_"):
            blocks.append([line])
        elif blocks:
            blocks[-1].append(line)
    if not blocks:
        return [text]
    return ["\n".join(block) for block in blocks]


# --- POSCAR -------------------------------------------------------------------------------


def _read_poscar(text: str, into: StructureFile, stem: str, max_records: int,
                 deadline_at: float) -> None:
    try:
        crystal = _poscar_crystal(text.splitlines())
    except FieldError as refused:
        into.problem(stem, refused.field, f"not a readable POSCAR: {refused.message}")
        return
    into.records.append(StructureRecord(stem, stem, crystal))


def _poscar_crystal(lines: list[str]) -> Crystal:
    """VASP 5 POSCAR/CONTCAR: comment, scale, 3 cell vectors, species, counts, [Selective
    dynamics], Direct|Cartesian, one line per atom (velocities after them are ignored)."""
    def line(index: int, what: str) -> list[str]:
        if index >= len(lines) or not lines[index].split():
            raise FieldError(f"line {index + 1}", f"missing; expected {what}")
        return lines[index].split()

    scale_tokens = line(1, "the scale factor")[:3]
    if len(scale_tokens) == 2 or (len(scale_tokens) == 3 and
                                  not _NUMBER.fullmatch(scale_tokens[2])):
        scale_tokens = scale_tokens[:1]
    scale = [_number(t, "line 2 (scale)") for t in scale_tokens]
    vectors = []
    for row in range(3):
        tokens = line(2 + row, "a cell vector (three numbers, Å)")
        if len(tokens) < 3:
            raise FieldError(f"line {3 + row}", "expected a cell vector of three numbers")
        vectors.append([_number(t, f"line {3 + row} (cell vector)") for t in tokens[:3]])
    lattice = np.array(vectors)
    if len(scale) == 1:
        if scale[0] == 0:
            raise FieldError("line 2 (scale)", "scale factor 0; expected > 0 (or < 0: the volume)")
        if scale[0] < 0:  # VASP: a negative scale is the cell volume in Å^3
            volume = abs(float(np.linalg.det(lattice)))
            if volume < 1e-9:
                raise FieldError("lines 3-5", "cell vectors are coplanar (zero volume)")
            lattice = lattice * (-scale[0] / volume) ** (1 / 3)
            factor = np.full(3, (-scale[0] / volume) ** (1 / 3))
        else:
            lattice = lattice * scale[0]
            factor = np.full(3, scale[0])
    else:
        if min(scale) <= 0:
            raise FieldError("line 2 (scale)", "three scale factors must all be > 0")
        lattice = lattice * np.array(scale)[None, :]
        factor = np.array(scale)
    species_tokens = line(5, "the element symbols (VASP 5 format)")
    if _INTEGER.fullmatch(species_tokens[0]):
        raise FieldError("line 6", "no element symbols: a VASP 4 POSCAR names its species "
                                 "nowhere reliable; add a line with the element symbols "
                                 "(VASP 5 format) above the atom counts")
    # VASP 6 writes POTCAR labels: 'Fe_pv', 'O/7c0e...'
    species_names = [t.split("/")[0].split("_")[0] for t in species_tokens]
    count_tokens = line(6, "the number of atoms of each element")
    if len(count_tokens) != len(species_names):
        raise FieldError("line 7", f"{len(count_tokens)} atom counts for {len(species_names)} "
                                 "element symbols; expected one count per element")
    counts = [_integer(t, "line 7 (atom counts)") for t in count_tokens]
    if min(counts) < 0 or sum(counts) < 1:
        raise FieldError("line 7", "atom counts must be positive")
    if sum(counts) > MAX_SITES:
        raise FieldError("line 7", f"{sum(counts)} atoms; at most {MAX_SITES} per structure")
    index = 7
    mode = line(index, "Direct or Cartesian")[0]
    if mode[0] in "sS":  # Selective dynamics
        index += 1
        mode = line(index, "Direct or Cartesian")[0]
    cartesian = mode[0] in "cCkK"
    first = index + 1
    total = sum(counts)
    coordinates = []
    for row in range(total):
        if first + row >= len(lines) or len(lines[first + row].split()) < 3:
            raise FieldError(f"line {first + row + 1}", f"expected {total} coordinate lines "
                                                      f"(three numbers each), found {row}")
        tokens = lines[first + row].split()
        coordinates.append([_number(t, f"line {first + row + 1} (coordinates)")
                            for t in tokens[:3]])
    positions = np.array(coordinates)
    species = [name for name, count in zip(species_names, counts, strict=True)
               for _ in range(count)]
    if cartesian:
        positions = positions * factor[None, :]
        if abs(float(np.linalg.det(lattice))) < 1e-9:
            raise FieldError("lines 3-5", "cell vectors are coplanar (zero volume)")
        positions = np.linalg.solve(lattice.T, positions.T).T
    return Crystal.from_arrays(lattice, species, positions)


# --- JSON ---------------------------------------------------------------------------------


class _Object(dict):
    """A JSON object that remembers the keys it was given more than once."""

    duplicates: tuple[str, ...] = ()


def _object(pairs: list[tuple[str, Any]]) -> _Object:
    result = _Object(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        repeated = []
        for key, _ in pairs:
            if key in seen:
                repeated.append(key)
            seen.add(key)
        result.duplicates = tuple(repeated)
    return result


def load_json(text: str) -> Any:
    """json.loads keeping track of repeated keys; ValueError for invalid or too deep JSON."""
    try:
        return json.loads(text, object_pairs_hook=_object)
    except RecursionError:
        raise ValueError("invalid JSON (nested too deeply)") from None
    except ValueError as error:  # JSONDecodeError, or an integer of too many digits
        raise ValueError(f"invalid JSON ({error})") from None


def _read_json(text: str, into: StructureFile, stem: str, max_records: int,
               deadline_at: float) -> None:
    try:
        data = load_json(text)
    except ValueError as error:
        into.problem(None, None, str(error))
        return
    items = data if isinstance(data, list) else [data]
    if not items:
        into.problem(None, None, "JSON list is empty")
        return
    if len(items) > max_records:
        _too_many_records(into, len(items), max_records)
        return
    deadline = _Deadline(deadline_at)
    for index, item in enumerate(items):
        if deadline.passed():
            _too_slow(into)
            return
        record = f"#{index}"
        if not isinstance(item, dict):
            into.problem(record, None, f"expected an object, got {type(item).__name__}")
            continue
        for key in getattr(item, "duplicates", ()):
            into.problem(record, key, "given twice in one object; give each key once")
        try:
            crystal, values = _json_item(item)
        except FieldError as refused:
            into.problem(record, refused.field, refused.message)
            continue
        into.records.append(StructureRecord(record, f"{stem}#{index}", crystal, values))


def _json_item(item: dict[str, Any]) -> tuple[Crystal, dict[str, Any]]:
    """The crystal and the remaining key/value pairs (properties and ids) of one item."""
    if "structure" in item:
        rest = {k: v for k, v in item.items() if k != "structure"}
        return _structure_dict(item["structure"], "structure"), _flat(rest)
    if "lattice_angstrom" in item:
        rest = {k: v for k, v in item.items()
                if k not in ("lattice_angstrom", "species", "frac_coords")}
        return crystal_from_record(item), _flat(rest)
    if "sites" in item or "lattice" in item:
        nested = item.get("properties")
        return _structure_dict(item, ""), _flat(dict(nested) if isinstance(nested, dict) else {})
    raise FieldError("structure", "expected a pymatgen Structure dict ({\"lattice\": ..., "
                                "\"sites\": ...}), {\"structure\": {...}, properties...} or a "
                                "Crystal record (lattice_angstrom, species, frac_coords)")


def _flat(pairs: dict[str, Any]) -> dict[str, Any]:
    """Lift a nested 'properties' object to the top level (pymatgen keeps them there)."""
    pairs = dict(pairs)
    nested = pairs.pop("properties", None)
    if isinstance(nested, dict):
        pairs.update(nested)
    for key in ("@module", "@class", "@version", "charge", "lattice", "sites"):
        pairs.pop(key, None)
    return pairs


def _structure_dict(data: Any, prefix: str) -> Crystal:
    """A crystal from pymatgen's Structure.as_dict(), read field by field."""
    def name(part: str) -> str:
        return f"{prefix}.{part}" if prefix else part

    if not isinstance(data, dict):
        raise FieldError(prefix or "structure", f"expected a pymatgen Structure dict, got "
                                              f"{type(data).__name__}")
    lattice = data.get("lattice")
    matrix = lattice.get("matrix") if isinstance(lattice, dict) else lattice
    if not isinstance(matrix, list) or len(matrix) != 3 or \
            not all(isinstance(row, list) and len(row) == 3 for row in matrix):
        raise FieldError(name("lattice.matrix"), "expected a 3x3 matrix of numbers (Å)")
    rows = [[_json_number(x, name("lattice.matrix")) for x in row] for row in matrix]
    if isinstance(lattice, dict) and "pbc" in lattice and lattice["pbc"] not in (
            [True, True, True], (True, True, True)):
        raise FieldError(name("lattice.pbc"), "expected a periodic cell (pbc all true)")
    sites = data.get("sites")
    if not isinstance(sites, list) or not sites:
        raise FieldError(name("sites"), "expected a list of sites")
    if len(sites) > MAX_SITES:
        raise FieldError(name("sites"), f"{len(sites)} sites; at most {MAX_SITES} per structure")
    species, frac = [], []
    cell = np.array(rows)
    for index, site in enumerate(sites):
        where = name(f"sites[{index}]")
        if not isinstance(site, dict):
            raise FieldError(where, "expected an object with species and abc")
        species.append(_site_species(site.get("species"), where))
        key = "abc" if "abc" in site or "xyz" not in site else "xyz"
        coords = site.get(key)
        if not isinstance(coords, list) or len(coords) != 3:
            raise FieldError(f"{where}.abc", "expected three fractional coordinates")
        position = np.array([_json_number(x, f"{where}.{key}") for x in coords])
        if key == "xyz":  # Cartesian (Å): only where abc is not given
            if abs(float(np.linalg.det(cell))) < 1e-9:
                raise FieldError(name("lattice.matrix"), "cell vectors are coplanar (zero "
                                                         "volume)")
            position = np.linalg.solve(cell.T, position)
        frac.append(position)
    return Crystal.from_arrays(rows, species, np.array(frac))


def _site_species(entries: Any, where: str) -> str:
    if not isinstance(entries, list) or not entries:
        raise FieldError(f"{where}.species", "expected a list like [{\"element\": \"O\", "
                                           "\"occu\": 1}]")
    if len(entries) > 1:
        raise FieldError(f"{where}.species", f"{len(entries)} species on one site: partial "
                                           "occupancies are not supported")
    entry = entries[0]
    if not isinstance(entry, dict) or not isinstance(entry.get("element"), str):
        raise FieldError(f"{where}.species", "expected {\"element\": \"O\", \"occu\": 1}")
    occupancy = _json_number(entry.get("occu", 1), f"{where}.species.occu")
    if occupancy == 0:
        raise FieldError(f"{where}.species.occu", "occupancy 0 (an empty site); expected 1")
    if abs(occupancy - 1.0) > 1e-3:
        raise FieldError(f"{where}.species.occu", f"occupancy {occupancy:g}: partial "
                                                "occupancies are not supported (expected 1)")
    match = _ELEMENT_IN_SYMBOL.fullmatch(entry["element"])
    return match.group(1) if match else entry["element"]


def crystal_from_record(record: Any, prefix: str = "") -> Crystal:
    """A crystal from a Crystal record (lattice_angstrom, species, frac_coords) that came
    from outside: types and sizes checked before anything is built; FieldError otherwise."""
    def name(part: str) -> str:
        return f"{prefix}.{part}" if prefix else part

    if not isinstance(record, dict):
        raise FieldError(prefix or "crystal", f"expected an object, got {type(record).__name__}")
    for part in ("lattice_angstrom", "species", "frac_coords"):
        if part not in record:
            raise FieldError(name(part), "is missing")
    lattice, species, frac = record["lattice_angstrom"], record["species"], record["frac_coords"]
    if not isinstance(lattice, list) or len(lattice) != 9:
        raise FieldError(name("lattice_angstrom"), "expected 9 numbers (3x3 Å, row by row)")
    if not isinstance(species, list) or not species:
        raise FieldError(name("species"), "expected a list of element symbols")
    if len(species) > MAX_SITES:
        raise FieldError(name("species"), f"{len(species)} sites; at most {MAX_SITES} per record")
    if not all(isinstance(s, str) for s in species):
        raise FieldError(name("species"), "expected strings (element symbols)")
    if not isinstance(frac, list) or len(frac) != 3 * len(species):
        raise FieldError(name("frac_coords"), f"expected {3 * len(species)} numbers (three per "
                                            "site)")
    numbers = [_json_number(x, name("lattice_angstrom")) for x in lattice]
    coords = [_json_number(x, name("frac_coords")) for x in frac]
    return Crystal.from_arrays(np.array(numbers).reshape(3, 3), species,
                               np.array(coords).reshape(-1, 3))


# --- extxyz -------------------------------------------------------------------------------

# key=value pairs of an extxyz comment line: quoted, braced or bracketed values, or words.
_KEY_VALUE = re.compile(r"""\s*([^\s="'{}\[\]]+)(?:\s*=\s*("(?:[^"\\]|\\.)*"|'[^']*'|"""
                        r"""\{[^}]*\}|\[[^\]]*\]|[^\s"'{}\[\]]+))?(?=\s|$)""")
_STRUCTURAL_KEYS = ("lattice", "properties", "pbc")


def _comment_pairs(line: str) -> tuple[dict[str, str | bool], list[str], str | None]:
    """(pairs with raw string values, repeated keys, what could not be read)."""
    pairs: dict[str, str | bool] = {}
    seen: set[str] = set()
    repeated: list[str] = []
    position = 0
    end = len(line.rstrip())
    while position < end:
        match = _KEY_VALUE.match(line, position)
        if match is None or match.end() == position:
            return pairs, repeated, line[position:].strip()[:40]
        key, value = match.group(1), match.group(2)
        if key.lower() in seen:
            repeated.append(key)
        seen.add(key.lower())
        if value is None:
            pairs[key] = True  # a bare key is a flag, as in ASE
        elif value[0] in "\"'":
            pairs[key] = re.sub(r"\\(.)", r"\1", value[1:-1])
        else:
            pairs[key] = value
        position = match.end()
    return pairs, repeated, None


def _lookup(pairs: Mapping[str, Any], key: str) -> Any:
    return next((v for k, v in pairs.items() if k.lower() == key), None)


def _read_extxyz(text: str, into: StructureFile, stem: str, max_records: int,
                 deadline_at: float) -> None:
    lines = text.splitlines()
    deadline = _Deadline(deadline_at)
    position, frame = 0, 0
    while position < len(lines):
        if not lines[position].strip():
            if any(rest.strip() for rest in lines[position:]):
                into.problem(f"frame {frame}", "atom count",
                             f"line {position + 1}: a blank line where the number of atoms "
                             "of the next frame was expected")
            return
        if frame >= max_records:
            _too_many_records(into, f"more than {max_records}", max_records)
            return
        if deadline.passed():
            _too_slow(into)
            return
        record = f"frame {frame}"
        token = lines[position].strip()
        if _INTEGER.fullmatch(token) is None:
            into.problem(record, "atom count", f"line {position + 1}: expected the number of "
                                               f"atoms, got {token[:40]!r}")
            return  # without a count the rest of the file cannot be framed
        count = int(token)
        if count < 1:
            into.problem(record, "atom count", f"line {position + 1}: {count} atoms; expected "
                                               "at least 1")
            return
        if count > MAX_SITES:
            into.problem(record, "atom count", f"{count} atoms; at most {MAX_SITES} per "
                                               "structure")
            return
        available = len(lines) - position - 2
        if available < count:
            into.problem(record, "atom count", f"line {position + 1}: the frame claims {count} "
                                               f"atoms but the file ends after "
                                               f"{max(available, 0)} atom line(s)")
            return
        comment = lines[position + 1]
        atom_lines = lines[position + 2:position + 2 + count]
        try:
            crystal, values = _extxyz_frame(comment, atom_lines, position + 3)
        except FieldError as refused:
            into.problem(record, refused.field, refused.message)
        else:
            into.records.append(StructureRecord(record, f"{stem}#{frame}", crystal, values))
        position += 2 + count
        frame += 1


def _extxyz_frame(comment: str, atom_lines: list[str], first_line: int
                  ) -> tuple[Crystal, dict[str, Any]]:
    pairs, repeated, unread = _comment_pairs(comment)
    if repeated:
        raise FieldError(repeated[0], "given twice in the comment line; give each key once")
    if unread is not None:
        raise FieldError("comment line", f"cannot read key=value pairs at {unread!r}")
    lattice_text = _lookup(pairs, "lattice")
    if not isinstance(lattice_text, str):
        raise FieldError("Lattice", "missing; expected a periodic cell, e.g. "
                                  "Lattice=\"3.9 0 0 0 3.9 0 0 0 3.9\" pbc=\"T T T\"")
    tokens = lattice_text.strip("{}[]").replace(",", " ").split()
    if len(tokens) != 9:
        raise FieldError("Lattice", f"{len(tokens)} numbers; expected 9 (three cell vectors, Å)")
    lattice = np.array([_number(t, "Lattice") for t in tokens]).reshape(3, 3)
    pbc = _lookup(pairs, "pbc")
    if pbc is not None:
        flags = str(pbc).strip("{}[]").replace(",", " ").split() if isinstance(pbc, str) \
            else [str(pbc)]
        if [f.lower() in ("t", "true", "1") for f in flags] != [True, True, True]:
            raise FieldError("pbc", f"{str(pbc)[:20]!r}: expected a periodic cell "
                                  "(pbc=\"T T T\")")
    columns = _extxyz_columns(_lookup(pairs, "properties"))
    width = sum(count for _, _, count in columns)
    species, positions = [], []
    for offset, line in enumerate(atom_lines):
        where = f"line {first_line + offset}"
        cells = line.split()
        if len(cells) != width:
            raise FieldError(where, f"{len(cells)} columns; the Properties name {width}")
        column = 0
        for prop, kind, count in columns:
            part = cells[column:column + count]
            column += count
            if kind == "R":
                numbers = [_number(t, f"{where} ({prop})") for t in part]
            elif kind == "I":
                numbers = [float(_integer(t, f"{where} ({prop})")) for t in part]
            elif kind == "L" and not all(t.lower() in ("t", "f", "true", "false") for t in part):
                raise FieldError(f"{where} ({prop})", "expected T or F")
            if prop == "species":
                species.append(part[0])
            elif prop == "z" and kind == "I":
                species.append(_symbol_of_number(int(numbers[0]), where))
            elif prop == "pos":
                positions.append(numbers)
    if abs(float(np.linalg.det(lattice))) < 1e-9 or not np.all(np.isfinite(lattice)):
        raise FieldError("Lattice", "cell vectors are coplanar (zero volume)")
    frac = np.linalg.solve(lattice.T, np.array(positions).T).T
    values = {k: v for k, v in pairs.items()
              if k.lower() not in _STRUCTURAL_KEYS and not _is_array(v)}
    return Crystal.from_arrays(lattice, species, frac), values


def _is_array(value: Any) -> bool:
    # Arrays (stress="1 2 3 ...", {1 2 3}) are per-frame data, not properties we upload.
    return isinstance(value, str) and len(value.replace(",", " ").split()) > 1


def _extxyz_columns(spec: Any) -> list[tuple[str, str, int]]:
    """Properties=species:S:1:pos:R:3:... as (name, type, count) triples."""
    if spec is None:
        spec = "species:S:1:pos:R:3"
    if not isinstance(spec, str):
        raise FieldError("Properties", "expected name:type:count triples like "
                                     "species:S:1:pos:R:3")
    parts = spec.split(":")
    if len(parts) % 3 or len(parts) > 300:
        raise FieldError("Properties", f"{spec[:60]!r}: expected name:type:count triples like "
                                     "species:S:1:pos:R:3")
    columns = []
    for index in range(0, len(parts), 3):
        prop, kind, count = parts[index].lower(), parts[index + 1].upper(), parts[index + 2]
        if kind not in ("R", "I", "S", "L") or _INTEGER.fullmatch(count) is None or \
                not 1 <= int(count) <= 100:
            raise FieldError("Properties", f"{':'.join(parts[index:index + 3])[:40]!r}: expected "
                                         "name:type:count with type R, I, S or L")
        columns.append((prop, kind, int(count)))
    names = {name: (kind, count) for name, kind, count in columns}
    if names.get("pos") != ("R", 3):
        raise FieldError("Properties", "expected a pos:R:3 column (Cartesian positions, Å)")
    if names.get("species", ("S", 1)) != ("S", 1) or ("species" not in names and
                                                        names.get("z") != ("I", 1)):
        raise FieldError("Properties", "expected a species:S:1 (or Z:I:1) column")
    return columns


def _symbol_of_number(number: int, where: str) -> str:
    from ase.data import chemical_symbols

    if not 1 <= number < len(chemical_symbols):
        raise FieldError(f"{where} (Z)", f"atomic number {number}; expected 1-"
                                       f"{len(chemical_symbols) - 1}")
    return chemical_symbols[number]


# --- writing ------------------------------------------------------------------------------


def write_crystals(crystals: list[tuple[str, Crystal]], path: Path) -> None:
    """Write crystals as CIF (one file, several data blocks), extxyz or JSON records."""
    path = Path(path)
    name = path.name.lower()
    if name.endswith(".json"):
        records = [{"name": n, **c.as_record()} for n, c in crystals]
        path.write_text(json.dumps(records, indent=1))
    elif name.endswith((".xyz", ".extxyz")):
        from ase import Atoms
        from ase.io import write

        frames = [Atoms(symbols=list(c.species), scaled_positions=c.frac_array,
                        cell=c.lattice_array, pbc=True, info={"name": n}) for n, c in crystals]
        write(str(path), frames, format="extxyz")
    elif name.endswith(".cif"):
        from pymatgen.io.cif import CifWriter

        blocks = [str(CifWriter(c.to_structure())).replace("data_", f"data_{n}_", 1)
                  for n, c in crystals]
        path.write_text("\n".join(blocks))
    else:
        raise ValueError(f"{path}: unknown output format; expected .cif, .extxyz or .json")



TEXT_FORMATS = {"cif": ".cif", "poscar": ".vasp", "json": ".json"}


def crystal_text(crystal: Crystal, fmt: str, name: str = "crystal") -> str:
    """One crystal as a file's text: CIF, POSCAR (VASP 5, with species) or pymatgen's
    Structure JSON (``Structure.as_dict()``)."""
    structure = crystal.to_structure()
    if fmt == "cif":
        from pymatgen.io.cif import CifWriter

        return str(CifWriter(structure)).replace("data_", f"data_{name}_", 1)
    if fmt == "poscar":
        from pymatgen.io.vasp import Poscar

        return Poscar(structure, comment=name).get_str()
    if fmt == "json":
        return json.dumps(structure.as_dict(), indent=1)
    raise ValueError(f"format: expected one of {', '.join(TEXT_FORMATS)}, got {fmt!r}")
