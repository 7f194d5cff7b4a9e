"""Backward compatibility of Avro schemas: can a new reader read data an old writer wrote?

Implements the Avro specification's schema-resolution rules (the check Confluent Schema
Registry calls BACKWARD) on self-contained (expanded) schemas, and returns every problem
with the path of the field at fault, instead of stopping at the first.
"""

from __future__ import annotations

from typing import Any

from materialabs.events.registry import NAMED_KINDS, PRIMITIVES

# writer type -> reader types it may be promoted to (Avro spec, "Schema Resolution")
PROMOTIONS: dict[str, frozenset[str]] = {
    "int": frozenset({"long", "float", "double"}),
    "long": frozenset({"float", "double"}),
    "float": frozenset({"double"}),
    "string": frozenset({"bytes"}),
    "bytes": frozenset({"string"}),
}


def _collect(node: Any, into: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    if isinstance(node, list):
        for branch in node:
            _collect(branch, into)
    elif isinstance(node, dict):
        kind = node.get("type")
        if kind in NAMED_KINDS:
            into[str(node["name"])] = node
            for f in node.get("fields", []):
                _collect(f["type"], into)
        elif kind == "array":
            _collect(node["items"], into)
        elif kind == "map":
            _collect(node["values"], into)
        elif isinstance(kind, (dict, list)):
            _collect(kind, into)
    return into


def _short(name: str) -> str:
    return name.rsplit(".", 1)[-1]


class _Checker:
    def __init__(self, reader: Any, writer: Any) -> None:
        self.reader_named = _collect(reader, {})
        self.writer_named = _collect(writer, {})
        self.in_progress: set[tuple[str, str]] = set()

    def resolve(self, node: Any, named: dict[str, dict[str, Any]]) -> Any:
        if isinstance(node, str) and node not in PRIMITIVES:
            return named.get(node, node)
        if isinstance(node, dict) and not isinstance(node.get("type"), str):
            return self.resolve(node["type"], named)
        if isinstance(node, dict) and node["type"] in PRIMITIVES:
            return node["type"]  # {"type": "long", "logicalType": ...} reads as long
        return node

    @staticmethod
    def kind(node: Any) -> str:
        if isinstance(node, list):
            return "union"
        if isinstance(node, str):
            return node
        return str(node["type"])

    @staticmethod
    def describe(node: Any) -> str:
        if isinstance(node, list):
            return "[" + ", ".join(_Checker.describe(b) for b in node) + "]"
        if isinstance(node, dict):
            return _short(str(node.get("name", node["type"])))
        return str(node)

    def check(self, reader: Any, writer: Any, path: str) -> list[str]:
        reader = self.resolve(reader, self.reader_named)
        writer = self.resolve(writer, self.writer_named)
        if isinstance(writer, list):
            problems: list[str] = []
            for branch in writer:
                problems += self.check(reader, branch, path)
            return problems
        if isinstance(reader, list):
            for branch in reader:
                if not self.check(branch, writer, path):
                    return []
            return [
                f"{path}: old type {self.describe(writer)} matches no branch of new union "
                f"{self.describe(reader)}"
            ]
        r_kind, w_kind = self.kind(reader), self.kind(writer)
        if w_kind in PRIMITIVES:
            if r_kind == w_kind or r_kind in PROMOTIONS.get(w_kind, frozenset()):
                return []
            return [f"{path}: type changed from {w_kind} to {self.describe(reader)} "
                    "(not a promotion)"]
        if r_kind != w_kind:
            return [f"{path}: type changed from {self.describe(writer)} to {self.describe(reader)}"]
        if w_kind == "array":
            return self.check(reader["items"], writer["items"], f"{path}[]")
        if w_kind == "map":
            return self.check(reader["values"], writer["values"], f"{path}{{}}")
        name_problem = self.check_name(reader, writer, path)
        if name_problem:
            return [name_problem]
        if w_kind == "fixed":
            if reader.get("size") != writer.get("size"):
                return [f"{path}: fixed size changed from {writer.get('size')} "
                        f"to {reader.get('size')}"]
            return []
        if w_kind == "enum":
            removed = [s for s in writer["symbols"] if s not in reader["symbols"]]
            if removed and "default" not in reader:
                return [f"{path}: enum {_short(reader['name'])} lost symbol(s) {removed} "
                        "and has no default"]
            return []
        return self.check_record(reader, writer, path)

    def check_name(self, reader: dict[str, Any], writer: dict[str, Any], path: str) -> str | None:
        names = {_short(str(reader["name"]))} | {_short(a) for a in reader.get("aliases", [])}
        if _short(str(writer["name"])) in names:
            return None
        return f"{path}: named type {writer['name']} renamed to {reader['name']} without an alias"

    def check_record(self, reader: dict[str, Any], writer: dict[str, Any], path: str) -> list[str]:
        pair = (str(reader["name"]), str(writer["name"]))
        if pair in self.in_progress:  # recursive type: already being checked
            return []
        self.in_progress.add(pair)
        writer_fields = {f["name"]: f for f in writer.get("fields", [])}
        problems: list[str] = []
        for field in reader.get("fields", []):
            field_path = f"{path}.{field['name']}"
            candidates = [field["name"], *field.get("aliases", [])]
            old = next((writer_fields[n] for n in candidates if n in writer_fields), None)
            if old is None:
                if "default" not in field:
                    problems.append(f"{field_path}: field added without a default")
                continue
            problems += self.check(field["type"], old["type"], field_path)
        self.in_progress.discard(pair)
        return problems


def backward_problems(reader: Any, writer: Any) -> list[str]:
    """Why ``reader`` (new) cannot read data written with ``writer`` (old); empty if it can."""
    root = _short(str(reader.get("name", "schema"))) if isinstance(reader, dict) else "schema"
    return _Checker(reader, writer).check(reader, writer, root)
