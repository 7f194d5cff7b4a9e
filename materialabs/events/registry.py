"""Load the Avro event schemas and every frozen version of them.

Layout of the schema folder (``schemas/`` at the repository root, or ``$MATERIALABS_SCHEMAS``):

* ``types/*.avsc``   shared named types (``Crystal``, ``Prediction``, ...) that event
  schemas reference by full name;
* ``*.avsc``         one record schema per event type, with two extra attributes:
  ``materialabs.topic`` (the topic it travels on) and ``materialabs.key`` (the payload
  field whose value is the message key);
* ``history/<Name>/<fingerprint>.avsc``  frozen, self-contained copies of every version
  that was ever current (written by ``materialabs schemas freeze``).

A writer's fingerprint is looked up among the current *and* frozen versions, then its
data is resolved to the current reader schema. The frozen folder, not git history, is
what decoding uses: deployed services and shallow CI clones have no git history, and a
lookup must not depend on it. Git is only used by ``materialabs schemas check``.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import fastavro
from fastavro.schema import fingerprint as _fastavro_fingerprint
from fastavro.schema import to_parsing_canonical_form

NAMESPACE = "materialabs.events"
TOPIC_ATTR = "materialabs.topic"
KEY_ATTR = "materialabs.key"
PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})
NAMED_KINDS = frozenset({"record", "error", "enum", "fixed"})

ENVELOPE_FIELDS: dict[str, Any] = {
    "event_id": {"type": "string", "logicalType": "uuid"},
    "occurred_at": {"type": "long", "logicalType": "timestamp-millis"},
    "producer": "string",
    "causation_id": ["null", "string"],
    "campaign_id": ["null", "string"],
}


class SchemaError(Exception):
    """A schema file is malformed, references an unknown type, or breaks a project rule."""


_PROJECT_SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"


def default_schema_dir() -> Path:
    override = os.environ.get("MATERIALABS_SCHEMAS")
    return Path(override) if override else _PROJECT_SCHEMAS


def fingerprint_of(canonical_form: str) -> bytes:
    """CRC-64-AVRO (Rabin) of the canonical form, as the 8 little-endian bytes on the wire."""
    return bytes.fromhex(_fastavro_fingerprint(canonical_form, "CRC-64-AVRO"))


def fullname(node: Mapping[str, Any], enclosing_namespace: str | None) -> str:
    name = str(node["name"])
    if "." in name:
        return name
    namespace = node.get("namespace", enclosing_namespace)
    return f"{namespace}.{name}" if namespace else name


def _namespace_of(full: str) -> str | None:
    return full.rsplit(".", 1)[0] if "." in full else None


def expand(schema: Any, types: Mapping[str, Any], where: str = "schema") -> Any:
    """Inline referenced named types at their first use, so the schema stands alone.

    The canonical form (and so the fingerprint) must describe the complete writer
    schema; a bare reference like ``"materialabs.events.Crystal"`` would not.
    """
    defined: set[str] = set()

    def walk(node: Any, namespace: str | None) -> Any:
        if isinstance(node, str):
            if node in PRIMITIVES:
                return node
            full = node if "." in node else (f"{namespace}.{node}" if namespace else node)
            if full in defined:
                return full
            if full not in types:
                raise SchemaError(f"{where}: unknown type {node!r} (known: {sorted(types)})")
            return walk(copy.deepcopy(types[full]), namespace)
        if isinstance(node, list):
            return [walk(branch, namespace) for branch in node]
        if not isinstance(node, dict) or "type" not in node:
            raise SchemaError(f"{where}: expected a type, got {node!r}")
        kind = node["type"]
        if kind in NAMED_KINDS:
            full = fullname(node, namespace)
            defined.add(full)
            out = {k: v for k, v in node.items() if k != "namespace"}
            out["name"] = full
            if kind in ("record", "error"):
                inner = _namespace_of(full)
                out["fields"] = [
                    {**f, "type": walk(f["type"], inner)} for f in node.get("fields", [])
                ]
            return out
        if kind == "array":
            return {**node, "items": walk(node["items"], namespace)}
        if kind == "map":
            return {**node, "values": walk(node["values"], namespace)}
        if isinstance(kind, str) and kind in PRIMITIVES:
            return node
        return walk(kind, namespace)

    return walk(schema, None)


def _strip_uuid(node: Any) -> Any:
    """Drop the uuid logical type so ids decode as ``str`` (canonical form is unchanged)."""
    if isinstance(node, list):
        return [_strip_uuid(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _strip_uuid(v) for k, v in node.items()}
    if out.get("logicalType") == "uuid":
        out.pop("logicalType")
    if "fields" in out:
        out["fields"] = [{**f, "type": _strip_uuid(f["type"])} for f in node["fields"]]
    return out


@dataclass(frozen=True)
class EventSchema:
    """One version of one event type, ready for fastavro."""

    name: str  # short name, e.g. "CandidateGenerated"
    fullname: str
    topic: str | None
    key_field: str | None
    expanded: dict[str, Any] = field(repr=False)
    canonical: str = field(repr=False)
    fingerprint: bytes = field(repr=False)
    parsed: dict[str, Any] = field(repr=False, compare=False)
    origin: str = ""

    @property
    def fingerprint_hex(self) -> str:
        return self.fingerprint.hex()

    @property
    def field_names(self) -> list[str]:
        return [f["name"] for f in self.expanded["fields"]]


def build_event_schema(expanded: dict[str, Any], origin: str) -> EventSchema:
    if expanded.get("type") != "record":
        raise SchemaError(
            f"{origin}: an event schema must be a record, got {expanded.get('type')!r}"
        )
    try:
        parsed: dict[str, Any] = fastavro.parse_schema(_strip_uuid(expanded))  # type: ignore[assignment]
        canonical = to_parsing_canonical_form(expanded)
    except Exception as error:  # fastavro raises several types for bad schemas
        raise SchemaError(f"{origin}: not a valid Avro schema: {error}") from error
    full = str(expanded["name"])
    return EventSchema(
        name=full.rsplit(".", 1)[-1],
        fullname=full,
        topic=expanded.get(TOPIC_ATTR),
        key_field=expanded.get(KEY_ATTR),
        expanded=expanded,
        canonical=canonical,
        fingerprint=fingerprint_of(canonical),
        parsed=parsed,
        origin=origin,
    )


def _load_json(text: str, origin: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise SchemaError(f"{origin}: not valid JSON: {error}") from error


@dataclass
class SchemaRegistry:
    """Current event schemas by short name, and every known version by fingerprint."""

    current: dict[str, EventSchema]
    by_fingerprint: dict[bytes, EventSchema]
    types: dict[str, Any]

    # -- loading ----------------------------------------------------------------
    @classmethod
    def from_texts(
        cls,
        type_texts: Mapping[str, str],
        event_texts: Mapping[str, str],
        history_texts: Mapping[str, str] | None = None,
    ) -> SchemaRegistry:
        """Build from file texts keyed by their path (used for the folder and for git revisions)."""
        types: dict[str, Any] = {}
        for origin, text in sorted(type_texts.items()):
            node = _load_json(text, origin)
            _collect_named(node, None, types, origin)
        current: dict[str, EventSchema] = {}
        for origin, text in sorted(event_texts.items()):
            expanded = expand(_load_json(text, origin), types, origin)
            schema = build_event_schema(expanded, origin)
            if schema.name in current:
                raise SchemaError(f"{origin}: event type {schema.name} defined twice")
            current[schema.name] = schema
        by_fingerprint: dict[bytes, EventSchema] = {}
        for origin, text in sorted((history_texts or {}).items()):
            frozen = build_event_schema(_load_json(text, origin), origin)
            by_fingerprint[frozen.fingerprint] = frozen
        for schema in current.values():
            by_fingerprint[schema.fingerprint] = schema
        return cls(current=current, by_fingerprint=by_fingerprint, types=types)

    @classmethod
    def load(cls, directory: Path | None = None) -> SchemaRegistry:
        root = Path(directory) if directory else default_schema_dir()
        if not root.is_dir():
            raise SchemaError(f"{root}: schema folder not found (set MATERIALABS_SCHEMAS)")
        return cls.from_texts(
            {str(p): p.read_text() for p in sorted((root / "types").glob("*.avsc"))},
            {str(p): p.read_text() for p in sorted(root.glob("*.avsc"))},
            {str(p): p.read_text() for p in sorted((root / "history").glob("*/*.avsc"))},
        )

    # -- lookups ----------------------------------------------------------------
    def schema(self, name: str) -> EventSchema:
        try:
            return self.current[name]
        except KeyError:
            raise SchemaError(
                f"unknown event type {name!r}; known: {', '.join(sorted(self.current))}"
            ) from None

    def writer(self, fingerprint: bytes) -> EventSchema | None:
        return self.by_fingerprint.get(fingerprint)

    def reader_for(self, writer: EventSchema) -> EventSchema:
        """The current schema of the writer's type (the writer itself if the type was retired)."""
        return self.current.get(writer.name, writer)

    def versions(self, name: str) -> list[EventSchema]:
        return [s for s in self.by_fingerprint.values() if s.name == name]

    def names(self) -> list[str]:
        return sorted(self.current)

    def topics(self) -> list[str]:
        return sorted({s.topic for s in self.current.values() if s.topic})


def _collect_named(node: Any, namespace: str | None, into: dict[str, Any], origin: str) -> None:
    """Register a types/ file's named type (and named types nested in it) by full name."""
    if isinstance(node, list):
        for branch in node:
            _collect_named(branch, namespace, into, origin)
        return
    if not isinstance(node, dict):
        return
    kind = node.get("type")
    if kind in NAMED_KINDS:
        full = fullname(node, namespace)
        if full in into:
            raise SchemaError(f"{origin}: type {full} defined twice")
        into[full] = node
        for f in node.get("fields", []):
            _collect_named(f.get("type"), _namespace_of(full), into, origin)
    elif kind in ("array", "map"):
        _collect_named(node.get("items", node.get("values")), namespace, into, origin)


@lru_cache(maxsize=4)
def _cached(override: str | None) -> SchemaRegistry:
    return SchemaRegistry.load(Path(override) if override else _PROJECT_SCHEMAS)


def default_registry() -> SchemaRegistry:
    """The registry of the project's schema folder (or $MATERIALABS_SCHEMAS), loaded once."""
    return _cached(os.environ.get("MATERIALABS_SCHEMAS"))
