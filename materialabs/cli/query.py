"""`materialabs query`: filter everything known (uploads, predictions, DFT results).

The flags and ``--filter`` (an OPTIMADE filter, the gateway's language) become one SQL
condition run by :meth:`materialabs.catalog.Catalog.select`, the engine the gateway uses.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pyarrow as pa

from materialabs import config
from materialabs.catalog import (
    CRYSTAL_SYSTEMS,
    DISPLAY_COLUMNS,
    KINDS,
    NUMERIC_COLUMNS,
    SCHEMA,
    Catalog,
    CatalogError,
    Query,
    QueryError,
)
from materialabs.cli import UserError

EXAMPLES = """\
examples:
  materialabs query --contains Ti,O --range band_gap_eV=1.5:3.5
  materialabs query --within Sr,Ba,Ti,Zr,O --kind dft --format jsonl
  materialabs query --system O-Sr-Ti --crystal-system cubic
  materialabs query --range formation_energy_per_atom_eV=:-2.0 --limit 20
  materialabs query --filter 'elements HAS ALL "Ti","O" AND _materialabs_band_gap>=1.5'

range columns: """ + ", ".join(NUMERIC_COLUMNS)

# The flag a person typed, for each Query field a refusal names.
FLAGS = {"contains": "--contains", "within": "--within", "chemical_system": "--system",
         "spacegroup_number": "--spacegroup", "crystal_system": "--crystal-system",
         "kinds": "--kind", "ranges": "--range", "filter": "--filter"}
MAX_LIMIT = 10**9


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "query", help="filter uploads, predictions and DFT results (the catalog)",
        description="Filter the catalog of everything known. Filters combine with AND.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--catalog", type=Path, default=None,
                        help="catalog folder (default: $MATERIALABS_HOME/catalog)")
    parser.add_argument("--contains", default="", metavar="EL,EL",
                        help="every listed element must be present")
    parser.add_argument("--within", default="", metavar="EL,EL",
                        help="no element outside this list (a chemical space)")
    parser.add_argument("--system", default=None, metavar="A-B-C",
                        help="exactly this chemical system, e.g. O-Sr-Ti")
    parser.add_argument("--spacegroup", default=None, metavar="1-230",
                        help="space-group number (international, 1-230)")
    parser.add_argument("--crystal-system", default=None, choices=CRYSTAL_SYSTEMS)
    parser.add_argument("--kind", action="append", default=[], choices=KINDS,
                        help="row kind; repeat for several")
    parser.add_argument("--range", action="append", default=[], metavar="COLUMN=LOW:HIGH",
                        help="inclusive range; either side may be empty")
    parser.add_argument("--filter", default=None, metavar="OPTIMADE_FILTER",
                        help="an OPTIMADE filter (as the gateway's /optimade/v1/structures "
                             "takes), combined with the other flags by AND")
    parser.add_argument("--limit", default="50", help="rows to print (0 = all)")
    parser.add_argument("--format", choices=["table", "jsonl", "csv"], default="table")
    parser.set_defaults(func=run)


def parse_range(text: str) -> tuple[str, tuple[float | None, float | None]]:
    column, sep, bounds = text.partition("=")
    low_text, colon, high_text = bounds.partition(":")
    if not sep or not colon:
        raise UserError(f"--range {text!r}: expected COLUMN=LOW:HIGH, e.g. band_gap_eV=1:3")
    if column not in NUMERIC_COLUMNS:
        raise UserError(f"--range {text!r}: unknown column {column!r}; expected one of "
                        f"{', '.join(NUMERIC_COLUMNS)}")
    try:
        low = float(low_text) if low_text.strip() else None
        high = float(high_text) if high_text.strip() else None
    except ValueError:
        raise UserError(f"--range {text!r}: LOW and HIGH must be numbers, e.g. "
                        "band_gap_eV=1:3 (either side may be empty)") from None
    return column, (low, high)


def _elements(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _whole(flag: str, text: str | None, low: int, high: int) -> int | None:
    if text is None:
        return None
    try:
        number: int | None = int(text)
    except ValueError:
        number = None
    if number is None or not low <= number <= high:
        raise UserError(f"{flag} {text!r}: expected a whole number from {low:,} to {high:,}")
    return number


def build_query(args: argparse.Namespace) -> Query:
    """The Query the flags describe; a refusal names the flag."""
    ranges: dict[str, tuple[float | None, float | None]] = {}
    for text in args.range:
        column, bounds = parse_range(text)
        if column in ranges:
            raise UserError(f"--range {text!r}: {column} has a range already; give one "
                            "--range per column")
        ranges[column] = bounds
    try:
        return Query(contains=_elements(args.contains), within=_elements(args.within),
                     chemical_system=args.system,
                     spacegroup_number=_whole("--spacegroup", args.spacegroup, 1, 230),
                     crystal_system=args.crystal_system, kinds=args.kind, ranges=ranges)
    except QueryError as error:
        raise UserError(f"{FLAGS.get(error.field, error.field)}: {error.reason}") from None


def run(args: argparse.Namespace) -> int:
    limit = _whole("--limit", args.limit, 0, MAX_LIMIT)
    query = build_query(args)
    where, parameters = query.where()
    if args.filter is not None:
        from materialabs.optimade.filter import FilterError, translate

        try:
            translation = translate(args.filter)
        except FilterError as error:
            raise UserError(f"--filter: {error.detail}") from None
        for warning in translation.warnings:
            print(f"warning: {warning}", file=sys.stderr)
        if translation.where:
            where = f"({where}) AND ({translation.where})" if where else translation.where
            parameters = [*parameters, *translation.parameters]
    root = args.catalog or config.catalog_dir()
    if not Catalog.exists(root):
        raise UserError(f"{root}: no catalog yet; run a campaign (`materialabs run`) or "
                        "upload data (`materialabs upload`) first")
    columns = list(DISPLAY_COLUMNS) if args.format == "table" else list(SCHEMA.names)
    try:
        rows = Catalog(root, readonly=True).select(where, parameters, columns)
    except CatalogError as error:
        raise UserError(str(error)) from None
    table = pa.Table.from_pylist(rows, schema=pa.schema([SCHEMA.field(c) for c in columns]))
    total = table.num_rows
    if limit:
        table = table.slice(0, min(limit, total))
    if args.format == "jsonl":
        for row in table.to_pylist():
            print(json.dumps(row))
    elif args.format == "csv":
        table.to_pandas().to_csv(sys.stdout, index=False)
    else:
        print(table.to_pandas().to_string(index=False))
        shown = f", first {table.num_rows} shown" if total > table.num_rows else ""
        print(f"{total} matching rows{shown}", file=sys.stderr)
    return 0
