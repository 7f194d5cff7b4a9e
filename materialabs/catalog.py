"""The catalog: everything the platform knows about materials, in one SQLite file (WAL).

One row per observation — an uploaded record, a prediction, a DFT result — keyed by a
stable id made from what the row is about (:func:`record_id`), so writing the same
observation twice changes nothing. The ``catalog`` service (services/catalog) is the only
writer; ``materialabs query``, the report and the HTTP gateway read it, from any process.

Why SQLite in WAL mode (docs/gateway.md has the figures, ``benchmarks/catalog_storage.py``
prints them): upserts by primary key make the projection idempotent in one statement;
readers in other processes read a consistent snapshot and are never blocked by the writer
(nor block it); B-tree indexes answer the selective filters of an OPTIMADE query without a
scan; and it needs no server. Parquet parts cannot be upserted (a redelivered event would
need a rewrite or a read-time deduplication), and a PostgreSQL server is one more thing to
fetch, start and watch for one writer.

A query is checked before it runs (:class:`Query`): an unknown element, a lowercase symbol,
a space group outside 1-230, a NaN or reversed range, or filters that contradict each other
would all give zero rows, indistinguishable from "nothing known", so they are refused.
OPTIMADE filters (``materialabs query --filter``, the gateway) are translated into the same
parameterised SQL by :mod:`materialabs.optimade.filter`; :meth:`Catalog.select` runs both.

A damaged file (truncated, overwritten, not SQLite) makes the query fail with a
:class:`CatalogError` naming it: an answer missing rows looks complete and is not.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from materialabs.crystals import anonymous_formula, descriptive_formula, optimade_reduced_formula

KINDS = ("upload", "prediction", "dft")
DB_NAME = "catalog.sqlite"
ANALYZE_EVERY_ROWS = 50_000

SCHEMA = pa.schema([
    ("record_id", pa.string()),
    ("kind", pa.string()),               # upload | prediction | dft
    ("candidate_id", pa.string()),       # Crystal.content_key()
    ("reduced_formula", pa.string()),
    ("chemical_formula_reduced", pa.string()),  # OPTIMADE's: elements alphabetical, 'O3SrTi'
    ("chemical_formula_descriptive", pa.string()),
    ("chemical_formula_anonymous", pa.string()),
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
    ("lab", pa.string()),                # the uploading lab (uploads only)
    ("mp_id", pa.string()),              # Materials Project id, where known
    ("campaign_id", pa.string()),
    ("round", pa.int16()),               # active-learning round within the campaign
    ("status", pa.string()),             # DFT status (ok, failed, timeout, no_label)
    ("promoted", pa.string()),           # promotion reason of the candidate, if promoted
    ("content_cid", pa.string()),        # dataset, model or DFT output CID behind the row
    ("ledger_seq", pa.int64()),          # the ledger entry recording that content
    ("lattice", pa.string()),            # JSON 3x3 (Å), rows are cell vectors
    ("species_at_sites", pa.string()),   # JSON list of element symbols
    ("frac_coords", pa.string()),        # JSON list of [x, y, z] fractional
    ("occurred_at_ms", pa.int64()),
])

NUMERIC_COLUMNS = ("formation_energy_per_atom_eV", "formation_energy_sigma_eV", "band_gap_eV",
                   "band_gap_sigma_eV", "e_above_hull_eV")
_INTEGER_COLUMNS = {f.name for f in SCHEMA if pa.types.is_integer(f.type)}
_REAL_COLUMNS = {f.name for f in SCHEMA if pa.types.is_floating(f.type)}

# What a person reads in a result table.
DISPLAY_COLUMNS = ("kind", "reduced_formula", "spacegroup_number", "formation_energy_per_atom_eV",
                   "band_gap_eV", "e_above_hull_eV", "source")

_CRYSTAL_SYSTEMS = ((2, "triclinic"), (15, "monoclinic"), (74, "orthorhombic"),
                    (142, "tetragonal"), (167, "trigonal"), (194, "hexagonal"), (230, "cubic"))
CRYSTAL_SYSTEMS = tuple(name for _, name in _CRYSTAL_SYSTEMS)

# Indexes for the filters people and the gateway run most (benchmarks/gateway.py): each
# selective one answers from the B-tree; the composite one is the seed's example
# (crystal system + band-gap window). Sorting by id pages through the primary key.
_INDEXES = {
    "kind": ("kind",),
    "formula": ("reduced_formula",),
    "optimade_formula": ("chemical_formula_reduced",),
    "anonymous": ("chemical_formula_anonymous",),
    "descriptive": ("chemical_formula_descriptive",),
    "system": ("chemical_system",),
    "nelements": ("nelements", "nsites"),
    "nsites": ("nsites",),
    "spacegroup": ("spacegroup_number",),
    "crystal_gap": ("crystal_system", "band_gap_eV"),
    "gap": ("band_gap_eV",),
    "energy": ("formation_energy_per_atom_eV",),
    "hull": ("e_above_hull_eV",),
    "campaign": ("campaign_id", "kind", "round"),
    "candidate": ("candidate_id",),
    "content": ("content_cid",),
    "ledger": ("ledger_seq",),
    "lab": ("lab",),
    "mp": ("mp_id",),
}


def crystal_system(spacegroup_number: int) -> str:
    """The crystal system of an international space-group number (1–230)."""
    if not 1 <= spacegroup_number <= 230:
        raise ValueError(f"spacegroup_number: expected 1–230, got {spacegroup_number}")
    return next(name for last, name in _CRYSTAL_SYSTEMS if spacegroup_number <= last)


def chemical_system_tag(elements: Iterable[str]) -> str:
    return "-" + "-".join(sorted(set(elements))) + "-"


def record_id(kind: str, *parts: Any) -> str:
    """A stable row id: the kind's letter and a hash of what identifies the observation
    (an upload: dataset CID and material id; a prediction: campaign, candidate, round and
    model; a DFT result: campaign, candidate, round and backend). URL-safe, as OPTIMADE
    ids must be."""
    digest = hashlib.sha256(json.dumps([kind, *parts], default=str).encode()).hexdigest()
    return f"{kind[0]}-{digest[:24]}"


def make_row(kind: str, elements: Sequence[str], **fields: Any) -> dict[str, Any]:
    """A catalog row with derived chemistry columns filled in; unknown fields are refused.

    ``crystal`` (a :class:`materialabs.crystals.Crystal`) fills the structure, formula,
    site count and space group unless given."""
    if kind not in KINDS:
        raise ValueError(f"kind: expected one of {KINDS}, got {kind!r}")
    crystal = fields.pop("crystal", None)
    unknown = set(fields) - set(SCHEMA.names)
    if unknown:
        raise ValueError(f"catalog row: unknown fields {sorted(unknown)}")
    row: dict[str, Any] = dict.fromkeys(SCHEMA.names)
    if crystal is not None:
        elements = crystal.species
        row.update(lattice=json.dumps([list(r) for r in crystal.lattice]),
                   species_at_sites=json.dumps(list(crystal.species)),
                   frac_coords=json.dumps([list(r) for r in crystal.frac_coords]),
                   reduced_formula=crystal.reduced_formula,
                   chemical_formula_reduced=optimade_reduced_formula(crystal.species),
                   chemical_formula_descriptive=descriptive_formula(crystal.species),
                   chemical_formula_anonymous=anonymous_formula(crystal.species),
                   nsites=crystal.num_sites)
        if "spacegroup_number" not in fields:
            row["spacegroup_number"] = crystal.spacegroup_number()
    row.update(fields)
    row["kind"] = kind
    if row["record_id"] is None:
        row["record_id"] = record_id(kind, row["candidate_id"], row["campaign_id"],
                                     row["round"], row["source"], row["content_cid"],
                                     row["reduced_formula"], row["occurred_at_ms"])
    row["chemical_system"] = chemical_system_tag(elements)
    row["nelements"] = len(set(elements))
    if row["spacegroup_number"] is not None and row["crystal_system"] is None:
        row["crystal_system"] = crystal_system(int(row["spacegroup_number"]))
    row["occurred_at_ms"] = row["occurred_at_ms"] or int(time.time() * 1000)
    return row


class CatalogError(ValueError):
    """The catalog cannot be read; the message names the file."""


class QueryError(ValueError):
    """A query filter that cannot match what it means to; ``field`` is the Query field."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field, self.reason = field_name, message


def _sql_type(name: str) -> str:
    return "INTEGER" if name in _INTEGER_COLUMNS else "REAL" if name in _REAL_COLUMNS else "TEXT"


_COLUMNS_SQL = ", ".join(
    f"{f.name} {_sql_type(f.name)}" + (" NOT NULL" if f.name in ("record_id", "kind") else "")
    for f in SCHEMA)

_DDL = [
    f"CREATE TABLE IF NOT EXISTS rows ({_COLUMNS_SQL}, PRIMARY KEY (record_id))",
    # A candidate's promotion, one row per (campaign, candidate): the campaign page's table.
    # Its rowid is the id of /v1/stream/candidates (gateway/streams.py): never VACUUM.
    "CREATE TABLE IF NOT EXISTS promotions (campaign_id TEXT NOT NULL, candidate_id TEXT NOT "
    "NULL, reason TEXT NOT NULL, reduced_formula TEXT, values_json TEXT, model_cid TEXT, "
    "occurred_at_ms INTEGER, PRIMARY KEY (campaign_id, candidate_id))",
    # A dataset's ledger entry (DatasetAccepted), for rows whose records arrive on another topic.
    "CREATE TABLE IF NOT EXISTS datasets (dataset_cid TEXT PRIMARY KEY, ledger_seq INTEGER, "
    "lab TEXT, upload_id TEXT)",
    # Every chemical system tag a row has had. An element filter (HAS, HAS ALL/ANY/ONLY) is a
    # predicate on the tag alone, so it is tested on these few thousand distinct tags and the
    # rows are then found through the index on chemical_system: no scan of the rows.
    "CREATE TABLE IF NOT EXISTS systems (tag TEXT PRIMARY KEY) WITHOUT ROWID",
    "CREATE TRIGGER IF NOT EXISTS rows_system_insert AFTER INSERT ON rows BEGIN "
    "INSERT OR IGNORE INTO systems (tag) VALUES (new.chemical_system); END",
    "CREATE TRIGGER IF NOT EXISTS rows_system_update AFTER UPDATE OF chemical_system ON rows "
    "BEGIN INSERT OR IGNORE INTO systems (tag) VALUES (new.chemical_system); END",
    "CREATE TABLE IF NOT EXISTS campaigns (campaign_id TEXT PRIMARY KEY, name TEXT, "
    "spec_json TEXT, started_at_ms INTEGER, finished_at_ms INTEGER)",
    *(f"CREATE INDEX IF NOT EXISTS rows_{name} ON rows ({', '.join(columns)})"
      for name, columns in _INDEXES.items()),
]


class Catalog:
    """The catalog file under ``root``: one writer (the catalog service), readers anywhere.

    Each thread gets its own connection (sqlite3 connections are not shared across
    threads). ``readonly`` opens the file read-only and never creates it.
    """

    def __init__(self, root: Path, *, readonly: bool = False) -> None:
        self.root = Path(root)
        self.path = self.root / DB_NAME
        self.readonly = readonly
        self._local = threading.local()
        if not readonly:
            self.root.mkdir(parents=True, exist_ok=True)
            with self._guard():
                connection = self._connection()
                for statement in _DDL:
                    connection.execute(statement)
                # A catalog written before the systems table existed: fill it once.
                if connection.execute("SELECT 1 FROM systems LIMIT 1").fetchone() is None:
                    connection.execute("INSERT OR IGNORE INTO systems (tag) SELECT DISTINCT "
                                       "chemical_system FROM rows")
                connection.commit()
                # Statistics for the planner (ANALYZE where they are missing or stale): with
                # them SQLite picks the selective index of a filter, not merely the first.
                connection.execute("PRAGMA optimize=0x10002")
        self._written = 0

    @classmethod
    def exists(cls, root: Path) -> bool:
        return os.path.lexists(Path(root) / DB_NAME)

    # -- connections --------------------------------------------------------------------------
    def _connection(self) -> sqlite3.Connection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            if self.readonly:
                if not os.path.lexists(self.path):
                    raise CatalogError(f"{self.path}: no catalog yet")
                connection = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True,
                                             timeout=10.0, check_same_thread=False)
            else:
                connection = sqlite3.connect(self.path, timeout=10.0, check_same_thread=False)
                connection.execute("PRAGMA journal_mode=WAL")
                connection.execute("PRAGMA synchronous=NORMAL")
            connection.execute("PRAGMA busy_timeout=10000")
            connection.row_factory = sqlite3.Row
            if self.readonly:
                self._check_schema(connection)
            self._local.connection = connection
        return connection

    def _check_schema(self, connection: sqlite3.Connection) -> None:
        """Refuse a file whose rows table is not this catalog's (another tool's, or a
        version this code does not know): its answers would be wrong, not empty."""
        found = [row[1] for row in connection.execute("PRAGMA table_info(rows)")]
        if found != SCHEMA.names:
            connection.close()
            missing = [n for n in SCHEMA.names if n not in found]
            raise CatalogError(
                f"{self.path}: not a catalog this version reads (its rows table "
                + (f"lacks {', '.join(missing[:5])}" if found else "is missing")
                + "); move it aside and let the catalog service rebuild it from the topics")

    def close(self) -> None:
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None

    @contextmanager
    def _guard(self) -> Iterator[None]:
        """Name the file when SQLite cannot read it."""
        try:
            yield
        except sqlite3.OperationalError as error:
            if "interrupted" in str(error):
                raise
            raise CatalogError(f"{self.path}: cannot read the catalog ({error})") from None
        except sqlite3.DatabaseError as error:
            raise CatalogError(
                f"{self.path}: damaged catalog file ({error}); the query refuses to answer "
                "from it (the answer would look complete and not be): restore it, or move it "
                "aside and let the catalog service rebuild it from the topics") from None

    # -- writing (the catalog service) --------------------------------------------------------
    def upsert(self, rows: Sequence[Mapping[str, Any]]) -> int:
        """Insert or replace rows by ``record_id``; the same row twice leaves one row, unchanged.
        Returns how many rows changed."""
        if not rows:
            return 0
        names = SCHEMA.names
        columns = ", ".join(names)
        marks = ", ".join("?" for _ in names)
        # Only a row whose values differ is rewritten: a redelivery changes nothing at all.
        update = ", ".join(f"{n} = excluded.{n}" for n in names if n != "record_id")
        differs = " OR ".join(f"rows.{n} IS NOT excluded.{n}" for n in names if n != "record_id")
        statement = (f"INSERT INTO rows ({columns}) VALUES ({marks}) ON CONFLICT (record_id) "
                     f"DO UPDATE SET {update} WHERE {differs}")
        with self._guard():
            connection = self._connection()
            before = connection.total_changes
            with connection:
                connection.executemany(statement, [tuple(_cell(row.get(n)) for n in names)
                                                   for row in rows])
            changed = connection.total_changes - before
            self._written += changed
            if self._written >= ANALYZE_EVERY_ROWS:  # keep the planner's statistics current
                connection.execute("PRAGMA optimize")
                self._written = 0
            return changed

    append = upsert  # the name the Parquet catalog had

    def execute(self, statement: str, parameters: Sequence[Any] = ()) -> int:
        """One write statement (the catalog service's small tables); rows changed."""
        with self._guard():
            connection = self._connection()
            with connection:
                return connection.execute(statement, tuple(parameters)).rowcount

    # -- reading ------------------------------------------------------------------------------
    def fetch(self, statement: str, parameters: Sequence[Any] = ()) -> list[dict[str, Any]]:
        with self._guard():
            cursor = self._connection().execute(statement, tuple(parameters))
            return [dict(row) for row in cursor.fetchall()]

    def select(self, where: str = "", parameters: Sequence[Any] = (),
               columns: Sequence[str] | None = None, order_by: str = "rowid",
               limit: int | None = None, offset: int = 0,
               scan: bool = False) -> list[dict[str, Any]]:
        """Rows matching a parameterised WHERE clause (from :meth:`Query.where` or the OPTIMADE
        translator), in ``order_by`` order: the one query engine. The default order is the
        order rows were first written (rowid: an upsert keeps it), which an index answering
        an equality filter already yields, so a page needs no sort. ``scan`` walks the rows
        in that order instead of using an index: for a filter most rows meet, the first page
        is found after a few rows, where an index would gather and sort every match."""
        wanted = ", ".join(_checked_columns(columns)) if columns else "*"
        statement = f"SELECT {wanted} FROM rows" + (" NOT INDEXED" if scan else "")
        if where:
            statement += f" WHERE {where}"
        statement += f" ORDER BY {order_by}"
        params = list(parameters)
        if limit is not None:
            statement += " LIMIT ? OFFSET ?"
            params += [limit, offset]
        return self.fetch(statement, params)

    def count(self, where: str = "", parameters: Sequence[Any] = ()) -> int:
        statement = "SELECT COUNT(*) AS n FROM rows" + (f" WHERE {where}" if where else "")
        return int(self.fetch(statement, parameters)[0]["n"])

    def query(self, query: Query, columns: Sequence[str] | None = None) -> pa.Table:
        where, parameters = query.where()
        rows = self.select(where, parameters, columns)
        names = list(columns) if columns is not None else SCHEMA.names
        schema = pa.schema([SCHEMA.field(n) for n in names])
        return pa.Table.from_pylist(rows, schema=schema)

    def table(self) -> pa.Table:
        """Every row (tests, small tools)."""
        return self.query(Query())

    def __len__(self) -> int:
        return self.count()


def _cell(value: Any) -> Any:
    if hasattr(value, "value") and not isinstance(value, int | float | str):  # an Avro enum
        return str(value.value)
    return value


def _checked_columns(columns: Sequence[str]) -> list[str]:
    unknown = [c for c in columns if c not in SCHEMA.names]
    if unknown:
        raise ValueError(f"catalog columns: unknown {unknown}; expected some of {SCHEMA.names}")
    return list(columns)


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

    def where(self) -> tuple[str, list[Any]]:
        """This query as a parameterised SQL condition over the rows (values never inlined)."""
        terms: list[str] = []
        params: list[Any] = []
        for element in self.contains:
            terms.append(system_sql("instr(tag, ?) > 0"))
            params.append(f"-{element}-")
        if self.within:
            # Inside the space iff its system is one of the space's subsets: an IN list the
            # index answers (2^n - 1 tags; `within` of more elements checks each instead).
            allowed = sorted(set(self.within))
            terms.append(within_sql(allowed, params))
        if self.chemical_system:
            terms.append("chemical_system = ?")
            params.append(chemical_system_tag(self.chemical_system.split("-")))
        if self.spacegroup_number is not None:
            terms.append("spacegroup_number = ?")
            params.append(self.spacegroup_number)
        if self.crystal_system:
            terms.append("crystal_system = ?")
            params.append(self.crystal_system)
        if self.kinds:
            terms.append(f"kind IN ({', '.join('?' for _ in self.kinds)})")
            params += list(self.kinds)
        for column, (low, high) in self.ranges.items():
            if low is not None:
                terms.append(f"{column} >= ?")
                params.append(float(low))
            if high is not None:
                terms.append(f"{column} <= ?")
                params.append(float(high))
        return " AND ".join(terms), params


MAX_SUBSET_ELEMENTS = 10


def system_sql(condition: str) -> str:
    """Rows whose chemical system tag meets ``condition`` (SQL over the column ``tag``),
    found through the distinct tags: the condition never runs row by row."""
    return f"chemical_system IN (SELECT tag FROM systems WHERE {condition})"


def within_sql(allowed: Sequence[str], params: list[Any]) -> str:
    """SQL: no element outside ``allowed`` (appends its parameters to ``params``)."""
    import itertools

    allowed = sorted(set(allowed))
    if len(allowed) <= MAX_SUBSET_ELEMENTS:
        tags = [chemical_system_tag(combo) for size in range(1, len(allowed) + 1)
                for combo in itertools.combinations(allowed, size)]
        params += tags
        return f"chemical_system IN ({', '.join('?' for _ in tags)})"
    # Each element of the row's system must be allowed: strip the allowed ones, see "-".
    expression = "tag"
    for element in allowed:
        expression = f"replace({expression}, ?, '-')"
        params.append(f"-{element}-")
    return system_sql(f"{expression} = '-'")


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
