"""The catalog: everything the platform knows about materials, as Parquet.

One row per observation — an uploaded record, a prediction, a DFT result — written in
append-only part files under one folder, so a writer never rewrites what a reader may be
scanning and a crash loses at most the part being written (parts are renamed into place).
`materialabs query` filters it with pyarrow's dataset scanner, which pushes the filters
down into the Parquet row groups.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
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

    def dataset(self) -> ds.Dataset:
        files = sorted(str(p) for p in self.root.glob("part-*.parquet"))
        return ds.dataset(files, schema=SCHEMA, format="parquet")

    def query(self, query: Query, columns: Sequence[str] | None = None) -> pa.Table:
        return self.dataset().to_table(filter=query.expression(),
                                       columns=list(columns) if columns is not None else None)

    def __len__(self) -> int:
        return self.dataset().count_rows()


@dataclass
class Query:
    """Filters for `materialabs query`; every set filter must hold (AND)."""

    contains: Sequence[str] = ()           # every one of these elements is present
    within: Sequence[str] = ()             # no element outside this set (a chemical space)
    chemical_system: str | None = None     # exactly this system, e.g. "O-Sr-Ti"
    spacegroup_number: int | None = None
    crystal_system: str | None = None
    kinds: Sequence[str] = ()
    ranges: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)

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
            if column not in NUMERIC_COLUMNS:
                raise ValueError(f"range filter: unknown column {column!r}; expected one of "
                                 f"{', '.join(NUMERIC_COLUMNS)}")
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
