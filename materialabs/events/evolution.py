"""Schema evolution rules: freeze versions, compare with git, lint the envelope.

``check`` is what ``materialabs schemas check`` runs in CI. It fails when

* a schema no longer parses, lacks the envelope, or names a key field it does not have;
* the current version of a schema cannot read data written by the version in the last
  commit (BACKWARD), or by any frozen version in ``schemas/history`` (so every message
  ever written stays readable: BACKWARD_TRANSITIVE over the frozen versions);
* a current version is not frozen yet (run ``materialabs schemas freeze``).
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from materialabs.events.compat import backward_problems
from materialabs.events.registry import (
    ENVELOPE_FIELDS,
    SchemaError,
    SchemaRegistry,
    default_schema_dir,
)


@dataclass
class CheckReport:
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def history_path(schema_dir: Path, name: str, fingerprint_hex: str) -> Path:
    return schema_dir / "history" / name / f"{fingerprint_hex}.avsc"


def freeze(schema_dir: Path | None = None) -> list[Path]:
    """Write each current schema's self-contained form into history/; return new files."""
    root = Path(schema_dir or default_schema_dir())
    written = []
    for schema in SchemaRegistry.load(root).current.values():
        path = history_path(root, schema.name, schema.fingerprint_hex)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(schema.expanded, indent=2) + "\n")
            written.append(path)
    return written


def _git(cwd: Path, *args: str) -> str | None:
    try:
        result = subprocess.run(
            ["git", "-C", str(cwd), *args], capture_output=True, text=True, check=False
        )
    except FileNotFoundError:
        return None
    return result.stdout if result.returncode == 0 else None


def registry_at_revision(schema_dir: Path, revision: str) -> SchemaRegistry | None:
    """The schemas as committed at ``revision`` (None when git or the folder is absent there)."""
    top = _git(schema_dir, "rev-parse", "--show-toplevel")
    if top is None:
        return None
    root = Path(top.strip())
    relative = schema_dir.resolve().relative_to(root.resolve()).as_posix()
    listing = _git(root, "ls-tree", "-r", "--name-only", revision, "--", relative)
    if not listing:
        return None
    types, events = {}, {}
    for path in listing.split():
        inner = path[len(relative) + 1:] if relative != "." else path
        if not inner.endswith(".avsc") or inner.startswith("history/"):
            continue
        text = _git(root, "show", f"{revision}:{path}")
        if text is None:
            continue
        if inner.startswith("types/"):
            types[f"{revision}:{path}"] = text
        elif "/" not in inner:
            events[f"{revision}:{path}"] = text
    return SchemaRegistry.from_texts(types, events)


def lint_envelope(schema_fields: list[dict[str, Any]], origin: str) -> list[str]:
    problems = []
    by_name = {f["name"]: f for f in schema_fields}
    for name, expected in ENVELOPE_FIELDS.items():
        if name not in by_name:
            problems.append(f"{origin}: envelope field {name!r} missing")
        elif by_name[name]["type"] != expected:
            problems.append(
                f"{origin}: envelope field {name!r} has type {by_name[name]['type']!r}, "
                f"expected {expected!r}"
            )
    return problems


def check(schema_dir: Path | None = None, against: str = "HEAD") -> CheckReport:
    root = Path(schema_dir or default_schema_dir())
    report = CheckReport()
    try:
        current = SchemaRegistry.load(root)
    except SchemaError as error:
        report.problems.append(str(error))
        return report
    for schema in current.current.values():
        report.problems += lint_envelope(schema.expanded["fields"], schema.origin)
        if not schema.topic:
            report.problems.append(f"{schema.origin}: no 'materialabs.topic' attribute")
        if schema.key_field and schema.key_field not in schema.field_names:
            report.problems.append(
                f"{schema.origin}: key field {schema.key_field!r} is not a field of the schema"
            )
        if not history_path(root, schema.name, schema.fingerprint_hex).exists():
            report.problems.append(
                f"{schema.origin}: version {schema.fingerprint_hex} is not frozen in "
                f"{root / 'history'}; run `materialabs schemas freeze`"
            )
        for old in current.versions(schema.name):
            if old.fingerprint != schema.fingerprint:
                report.problems += [
                    f"{schema.origin} cannot read frozen {old.origin}: {p}"
                    for p in backward_problems(schema.expanded, old.expanded)
                ]
    try:
        committed = registry_at_revision(root, against)
    except SchemaError as error:
        report.notes.append(f"schemas at {against} do not load, not compared: {error}")
        committed = None
    if committed is None:
        report.notes.append(f"no committed schemas at {against}; nothing to compare with")
        return report
    for name, old in committed.current.items():
        new = current.current.get(name)
        if new is None:
            report.notes.append(f"{name}: removed since {against} (old messages still decode "
                                "with the frozen version)")
            continue
        if new.fingerprint == old.fingerprint:
            continue
        problems = backward_problems(new.expanded, old.expanded)
        report.problems += [
            f"{new.origin} cannot read {name} as of {against}: {p}" for p in problems
        ]
        if not problems:
            report.notes.append(f"{name}: changed since {against}, backward compatible")
    return report
