"""`materialabs schemas`: list, show, freeze and check the Avro event schemas."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from materialabs.cli import UserError
from materialabs.events import codegen
from materialabs.events.evolution import check, freeze
from materialabs.events.registry import SchemaError, SchemaRegistry, default_schema_dir

DESCRIPTION = """\
Inspect and guard the Avro event schemas in schemas/.

Every event travels in Avro single-object encoding: C3 01, the 8-byte CRC-64-AVRO
fingerprint of the schema's canonical form, then the Avro body. Old versions are frozen
in schemas/history/ so any consumer can read any version ever written.

examples:
  materialabs schemas list
  materialabs schemas show CandidateGenerated --canonical
  materialabs schemas freeze          # after changing a schema
  materialabs schemas generate        # ... and regenerate the typed events
  materialabs schemas check           # in CI: fails on a backward-incompatible change
"""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "schemas",
        help="list, show, freeze and check the Avro event schemas",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--dir", type=Path, default=None,
                        help="schema folder (default: the project's schemas/)")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser(
        "list", help="event types with topic, key, fingerprint, producers and consumers")
    listing.add_argument("--markdown", action="store_true",
                         help="a Markdown table (the one in docs/events.md)")
    show = actions.add_parser("show", help="print one schema")
    show.add_argument("name", help="event type, e.g. CandidateGenerated")
    form = show.add_mutually_exclusive_group()
    form.add_argument("--canonical", action="store_true", help="Parsing Canonical Form")
    form.add_argument("--versions", action="store_true", help="all known fingerprints")
    actions.add_parser("freeze", help="copy current versions into schemas/history/")
    generate = actions.add_parser(
        "generate", help="write the typed event dataclasses (materialabs/events/types.py)")
    generate.add_argument("--check", action="store_true",
                          help="write nothing; exit 1 if the module is stale (CI)")
    generate.add_argument("--out", type=Path, default=None,
                          help="module to write (default: materialabs/events/types.py)")
    check_parser = actions.add_parser(
        "check", help="fail on a change that old data cannot survive (BACKWARD)"
    )
    check_parser.add_argument("--against", default="HEAD",
                              help="git revision to compare with (default HEAD)")
    parser.set_defaults(func=run)


def _load(directory: Path) -> SchemaRegistry:
    try:
        return SchemaRegistry.load(directory)
    except SchemaError as error:
        raise UserError(str(error)) from error


def run(args: argparse.Namespace) -> int:
    directory = args.dir or default_schema_dir()
    if args.action == "list":
        registry = _load(directory)
        print(markdown_table(registry) if args.markdown else plain_table(registry))
        return 0
    if args.action == "show":
        registry = _load(directory)
        try:
            schema = registry.schema(args.name)
        except SchemaError as error:
            raise UserError(str(error)) from error
        if args.canonical:
            print(schema.canonical)
        elif args.versions:
            for version in registry.versions(args.name):
                mark = "current" if version.fingerprint == schema.fingerprint else "frozen"
                print(f"{version.fingerprint_hex}  {mark:<8} {version.origin}")
        else:
            print(json.dumps(schema.expanded, indent=2))
        return 0
    if args.action == "generate":
        return _generate(_load(directory), args.out or codegen.MODULE_PATH, args.check)
    if args.action == "freeze":
        written = freeze(directory)
        for path in written:
            print(f"froze {path}")
        if not written:
            print("every current version is already frozen")
        return 0
    report = check(directory, args.against)
    for note in report.notes:
        print(f"note: {note}")
    for problem in report.problems:
        print(f"error: {problem}")
    print(f"schemas check: {'ok' if report.ok else f'{len(report.problems)} problem(s)'}")
    return 0 if report.ok else 1


def _generate(registry: SchemaRegistry, path: Path, check_only: bool) -> int:
    if check_only:
        if codegen.is_stale(registry, path):
            print(f"{path} is stale against the schemas; run `materialabs schemas generate`",
                  file=sys.stderr)
            return 1
        print(f"{path} is up to date")
        return 0
    try:
        changed = codegen.write(registry, path)
    except SchemaError as error:
        raise UserError(str(error)) from error
    print(f"{'wrote' if changed else 'unchanged:'} {path}")
    return 0


def _routes() -> dict[str, Any]:
    """Producers and consumers by event type, from the services' declarations."""
    from materialabs import bootstrap

    try:
        return {route.type.TYPE: route for route in bootstrap.event_map()}
    except bootstrap.WiringError as error:
        raise UserError(str(error)) from error


def _names(route: Any, side: str) -> str:
    return ", ".join(getattr(route, side)) if route is not None and getattr(route, side) else "-"


def plain_table(registry: SchemaRegistry) -> str:
    routes = _routes()
    lines = [f"{'event type':<22} {'topic':<21} {'key':<13} {'fingerprint':<16} {'v':>2}  "
             "producers -> consumers"]
    for name in registry.names():
        schema, route = registry.schema(name), routes.get(name)
        lines.append(f"{name:<22} {schema.topic or '-':<21} {schema.key_field or '-':<13} "
                     f"{schema.fingerprint_hex:<16} {len(registry.versions(name)):>2}  "
                     f"{_names(route, 'producers')} -> {_names(route, 'consumers')}")
    return "\n".join(lines)


def markdown_table(registry: SchemaRegistry) -> str:
    """Every event type: topic, key, who produces and who consumes it, and what it says."""
    routes = _routes()
    lines = ["| event type | topic | key | producers | consumers | says |",
             "|---|---|---|---|---|---|"]
    for name in registry.names():
        schema, route = registry.schema(name), routes.get(name)
        says = " ".join(str(schema.expanded.get("doc", "")).split()).replace("|", "\\|")
        lines.append(f"| {name} | {schema.topic or '-'} | {schema.key_field or '-'} | "
                     f"{_names(route, 'producers')} | {_names(route, 'consumers')} | {says} |")
    return "\n".join(lines)
