"""The catalog: everything the platform knows about materials, as Parquet.

One row per observation — an uploaded record, a prediction, a DFT result — written in
append-only part files under one folder, so a writer never rewrites what a reader may be
scanning and a crash loses at most the part being written (parts are renamed into place).
`materialabs query` filters it with pyarrow's dataset scanner, which pushes the filters
down into the Parquet row groups.

A query is checked before it runs (:class:`Query`): an unknown element, a lowercase symbol,
a space group outside 1-230, a NaN or reversed range, or filters that contradict each other
would all give zero rows, indistinguishable from "nothing known", so they are refused.

A damaged part (truncated, overwritten, not Parquet, another schema) makes the query fail
with a :class:`CatalogError` naming that file. The query refuses rather than skipping the
part with a warning: the other parts would still answer, but an answer missing a part looks
complete and is not, and a warning on stderr is easily lost in a pipeline
(``materialabs query --format jsonl > out``). The message says which file to move aside.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

KINDS = ("upload", "prediction", "dft")

SCHEMA = pa.schema([
    ("record_id", pa.string()),
    ("kind", pa.string()),               # upload | prediction | dft
    ("candidate_id", pa.string()),       # Crystal.content_key()
    ("reduced_formula", pa.string()),
    ("chemical_system", pa.string()),    # "-O-Sr-Ti-": delimited so substring match is exact
    ("nelements", pa.int8()),
    ("nsites", pa.int32()),
    ("spacegroup_number", pa.int16()),
    ("crystal_system", pa.string()),
    ("formation_energy_per_atom_eV", pa.float64()),
    ("formation_energy_sigma_eV", pa.float64()),
    ("band_gap_eV", pa.float64()),
    ("band_gap_sigma_eV", pa.float64()),
    ("e_above_hull_eV", pa.float64()),
    ("source", pa.string()),             # lab name, model CID or DFT backend
    ("method", pa.string()),             # experiment, PBE, GNN ensemble, ...
    ("campaign_id", pa.string()),
    ("round", pa.int16()),               # active-learning round within the campaign
    ("status", pa.string()),             # DFT status (ok, failed, timeout, no_label); promotion
    ("content_cid", pa.string()),        # dataset, model or DFT output CID behind the row
    ("occurred_at_ms", pa.int64()),
])

NUMERIC_COLUMNS = tuple(f.name for f in SCHEMA if pa.types.is_floating(f.type))

# What a person reads in a result table. Reading fewer columns is most of a query's cost:
# the unique record_id strings alone take longer to decode than the filters take to run.
DISPLAY_COLUMNS = ("kind", "reduced_formula", "spacegroup_number", "formation_energy_per_atom_eV",
                   "band_gap_eV", "e_above_hull_eV", "source")

_CRYSTAL_SYSTEMS = ((2, "triclinic"), (15, "monoclinic"), (74, "orthorhombic"),
                    (142, "tetragonal"), (167, "trigonal"), (194, "hexagonal"), (230, "cubic"))
CRYSTAL_SYSTEMS = tuple(name for _, name in _CRYSTAL_SYSTEMS)


def crystal_system(spacegroup_number: int) -> str:
    """The crystal system of an international space-group number (1–230)."""
    if not 1 <= spacegroup_number <= 230:
        raise ValueError(f"spacegroup_number: expected 1–230, got {spacegroup_number}")
    return next(name for last, name in _CRYSTAL_SYSTEMS if spacegroup_number <= last)


def chemical_system_tag(elements: Iterable[str]) -> str:
    return "-" + "-".join(sorted(set(elements))) + "-"


def make_row(kind: str, elements: Sequence[str], **fields: Any) -> dict[str, Any]:
    """A catalog row with derived chemistry columns filled in; unknown fields are refused."""
    if kind not in KINDS:
        raise ValueError(f"kind: expected one of {KINDS}, got {kind!r}")
    unknown = set(fields) - set(SCHEMA.names)
    if unknown:
        raise ValueError(f"catalog row: unknown fields {sorted(unknown)}")
    row: dict[str, Any] = dict.fromkeys(SCHEMA.names)
    row.update(fields)
    row["kind"] = kind
    row["record_id"] = row["record_id"] or uuid.uuid4().hex
    row["chemical_system"] = chemical_system_tag(elements)
    row["nelements"] = len(set(elements))
    if row["spacegroup_number"] is not None and row["crystal_system"] is None:
        row["crystal_system"] = crystal_system(int(row["spacegroup_number"]))
    row["occurred_at_ms"] = row["occurred_at_ms"] or int(time.time() * 1000)
    return row


class CatalogError(ValueError):
    """A catalog part cannot be read; the message names the file."""


class QueryError(ValueError):
    """A query filter that cannot match what it means to; ``field`` is the Query field."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field, self.reason = field_name, message


class Catalog:
    """Append-only Parquet folder. Safe for one writer and many readers."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def append(self, rows: Sequence[Mapping[str, Any]]) -> Path | None:
        if not rows:
            return None
        table = pa.Table.from_pylist([dict(r) for r in rows], schema=SCHEMA)
        name = f"part-{time.time_ns():020d}-{uuid.uuid4().hex[:8]}.parquet"
        tmp = self.root / f".{name}.tmp"
        pq.write_table(table, tmp, compression="zstd", row_group_size=256_000)
        final = self.root / name
        tmp.replace(final)
        return final

    def parts(self) -> list[str]:
        return sorted(str(p) for p in self.root.glob("part-*.parquet"))

    def dataset(self) -> ds.Dataset:
        return self._scan(lambda files: _dataset(files))

    def query(self, query: Query, columns: Sequence[str] | None = None) -> pa.Table:
        expression = query.expression()
        wanted = list(columns) if columns is not None else None
        return self._scan(lambda files: _dataset(files).to_table(filter=expression,
                                                                 columns=wanted))

    def __len__(self) -> int:
        return self._scan(lambda files: _dataset(files).count_rows())

    def _scan(self, scan: Callable[[list[str]], Any]) -> Any:
        """``scan`` over every part; on failure, find the part that fails and name it."""
        files = self.parts()
        try:
            return scan(files)
        except (pa.ArrowException, OSError) as error:
            for part in files:  # only after a failure: the happy path scans once
                try:
                    scan([part])
                except (pa.ArrowException, OSError) as part_error:
                    raise CatalogError(
                        f"{part}: damaged catalog part ({_first_line(part_error)}); the "
                        f"query refuses to answer without it (the answer would look "
                        f"complete and not be): restore it, or move it out of {self.root}"
                    ) from None
            raise CatalogError(f"{self.root}: cannot read the catalog "
                               f"({_first_line(error)})") from None


def _dataset(files: list[str]) -> ds.Dataset:
    return ds.dataset(files, schema=SCHEMA, format="parquet")


def _first_line(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= 200 else text[:197] + "..."


@dataclass
class Query:
    """Filters for `materialabs query`; every set filter must hold (AND).

    Checked when made (a QueryError names the field): element symbols as the upload path
    accepts them (case-sensitive), a system written A-B-C, space groups 1-230, known crystal
    systems and kinds, range bounds that are finite numbers with low <= high, and no two
    filters that exclude each other (an element required but outside ``within``, a space
    group of another crystal system).
    """

    contains: Sequence[str] = ()           # every one of these elements is present
    within: Sequence[str] = ()             # no element outside this set (a chemical space)
    chemical_system: str | None = None     # exactly this system, e.g. "O-Sr-Ti"
    spacegroup_number: int | None = None
    crystal_system: str | None = None
    kinds: Sequence[str] = ()
    ranges: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_elements("contains", self.contains)
        _check_elements("within", self.within)
        system = _system_elements(self.chemical_system) if self.chemical_system else None
        if self.spacegroup_number is not None:
            number = self.spacegroup_number
            if (isinstance(number, bool) or not isinstance(number, int)
                    or not 1 <= number <= 230):
                raise QueryError("spacegroup_number", f"expected a space-group number "
                                                      f"from 1 to 230, got {number!r}")
        if self.crystal_system is not None and self.crystal_system not in CRYSTAL_SYSTEMS:
            raise QueryError("crystal_system", f"expected one of {', '.join(CRYSTAL_SYSTEMS)}, "
                                               f"got {self.crystal_system!r}")
        for kind in self.kinds:
            if kind not in KINDS:
                raise QueryError("kinds", f"expected one of {', '.join(KINDS)}, got {kind!r}")
        for column, bounds in self.ranges.items():
            _check_range(column, bounds)
        self._check_together(system)

    def _check_together(self, system: list[str] | None) -> None:
        if self.within:
            outside = [e for e in [*self.contains, *(system or ())] if e not in self.within]
            if outside:
                which = "contains" if outside[0] in self.contains else "chemical_system"
                raise QueryError(which, f"{outside[0]} is required but not in the `within` "
                                        f"space {','.join(self.within)}: no row can match")
        if system is not None:
            missing = [e for e in self.contains if e not in system]
            if missing:
                raise QueryError("contains", f"{missing[0]} is not in the system "
                                             f"{self.chemical_system}: no row can match")
        if self.spacegroup_number is not None and self.crystal_system is not None:
            actual = crystal_system(self.spacegroup_number)
            if actual != self.crystal_system:
                raise QueryError("crystal_system", f"space group {self.spacegroup_number} is "
                                                   f"{actual}, not {self.crystal_system}: no "
                                                   "row can match")

    def expression(self) -> ds.Expression | None:
        terms: list[ds.Expression] = []
        system = ds.field("chemical_system")
        for element in self.contains:
            terms.append(pc.match_substring(system, f"-{element}-"))
        if self.within:
            # "-A-B-C-" is inside the space iff each of its elements is allowed; a regex
            # over the allowed alternatives checks that in one vectorised pass.
            allowed = "|".join(sorted(set(self.within)))
            terms.append(pc.match_substring_regex(system, f"^-(({allowed})-)+$"))
        if self.chemical_system:
            terms.append(system == chemical_system_tag(self.chemical_system.split("-")))
        if self.spacegroup_number is not None:
            terms.append(ds.field("spacegroup_number") == self.spacegroup_number)
        if self.crystal_system:
            terms.append(ds.field("crystal_system") == self.crystal_system)
        if self.kinds:
            terms.append(ds.field("kind").isin(list(self.kinds)))
        for column, (low, high) in self.ranges.items():
            if low is not None:
                terms.append(ds.field(column) >= low)
            if high is not None:
                terms.append(ds.field(column) <= high)
        if not terms:
            return None
        expression = terms[0]
        for term in terms[1:]:
            expression = expression & term
        return expression


def _check_elements(field_name: str, symbols: Sequence[str]) -> None:
    from materialabs.records import ELEMENTS

    if isinstance(symbols, str):
        raise QueryError(field_name, f"expected a list of element symbols, got {symbols!r}")
    for symbol in symbols:
        if isinstance(symbol, str) and symbol in ELEMENTS:
            continue
        hint = ""
        if isinstance(symbol, str) and symbol.capitalize() in ELEMENTS:
            hint = f" (did you mean {symbol.capitalize()!r}? symbols are case-sensitive)"
        raise QueryError(field_name, f"{symbol!r} is not an element symbol{hint}")


def _system_elements(text: str) -> list[str]:
    """The elements of a system written A-B-C (any order), each once."""
    if not isinstance(text, str) or "," in text or " " in text.strip():
        raise QueryError("chemical_system", f"expected element symbols joined by '-', e.g. "
                                            f"O-Sr-Ti, got {text!r}")
    symbols = text.strip().split("-")
    if "" in symbols:
        raise QueryError("chemical_system", f"expected element symbols joined by '-', e.g. "
                                            f"O-Sr-Ti, got {text!r} (an empty part)")
    _check_elements("chemical_system", symbols)
    for i, symbol in enumerate(symbols):
        if symbol in symbols[:i]:
            raise QueryError("chemical_system", f"{symbol} appears twice in {text!r}")
    return symbols


def _float_range(number: float) -> bool:
    """Finite and representable as a float (an int beyond 1.8e308 is not)."""
    try:
        return math.isfinite(number)
    except OverflowError:
        return False


def _check_range(column: str, bounds: tuple[float | None, float | None]) -> None:
    if column not in NUMERIC_COLUMNS:
        raise QueryError("ranges", f"unknown column {column!r}; expected one of "
                                   f"{', '.join(NUMERIC_COLUMNS)}")
    low, high = bounds
    for side, bound in (("low", low), ("high", high)):
        if bound is None:
            continue
        if (isinstance(bound, bool) or not isinstance(bound, int | float)
                or not _float_range(bound)):
            raise QueryError("ranges", f"{column}: the {side} bound must be a finite number "
                                       f"(leave it empty for no bound), got {bound!r}")
    if low is not None and high is not None and low > high:
        raise QueryError("ranges", f"{column}: low {low:g} > high {high:g}: no row can match")
