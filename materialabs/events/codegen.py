"""Generate ``materialabs/events/types.py``: one frozen dataclass per schema.

``materialabs schemas generate`` writes the module; ``--check`` (and a test) fail when the
checked-in module differs from what the current ``.avsc`` files give. Each named type
becomes a class of its short name: records an :class:`~materialabs.events.typed.AvroRecord`,
enums a ``StrEnum``, event schemas an :class:`~materialabs.events.typed.EventRecord`.
Arrays are tuples, maps dicts, ``["null", X]`` is ``X | None``; conversion from plain
values (a dict for a record, a list for an array, a symbol for an enum) happens in one
place, ``__post_init__``, and ``to_avro()`` gives the Avro value back.
"""

from __future__ import annotations

import json
import keyword
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from materialabs.events.envelope import ENVELOPE_NAMES
from materialabs.events.registry import (
    NAMED_KINDS,
    PRIMITIVES,
    SchemaError,
    SchemaRegistry,
    expand,
    fullname,
)

MODULE_PATH = Path(__file__).with_name("types.py")

_PYTHON_PRIMITIVES = {"null": "None", "boolean": "bool", "int": "int", "long": "int",
                      "float": "float", "double": "float", "bytes": "bytes", "string": "str"}
_LOGICAL = {("string", "uuid"): "str", ("long", "timestamp-millis"): "datetime",
            ("long", "timestamp-micros"): "datetime"}
# Attribute names the base classes use: a field may not take them.
_RESERVED_IN_EVENTS = {"envelope", "key", "topic", "type", "event_id", "occurred_at",
                       "producer", "causation_id", "campaign_id", "to_avro", "from_avro",
                       "to_event", "from_event", "message_key", "message_topic",
                       "with_envelope"}
_RESERVED_IN_RECORDS = {"to_avro", "from_avro", "coerce", "keys", "items", "values", "get"}


@dataclass(frozen=True)
class _Type:
    """One Avro type as the generator sees it."""

    kind: str  # "primitive" | "enum" | "record" | "array" | "map" | "optional" | "any"
    python: str  # the annotation
    item: _Type | None = None  # array/map items, the non-null branch of an optional


def _doc(text: str | None, indent: str) -> list[str]:
    if not text:
        return []
    text = text.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
    lines = textwrap.wrap(text, width=96 - len(indent)) or [""]
    if len(lines) == 1 and len(lines[0]) + len(indent) + 6 <= 100:
        return [f'{indent}"""{lines[0]}"""']
    return [f'{indent}"""{lines[0]}', *(f"{indent}{line}" for line in lines[1:]),
            f'{indent}"""']


class _Generator:
    def __init__(self, registry: SchemaRegistry) -> None:
        self.registry = registry
        self.named: dict[str, dict[str, Any]] = {}  # full name -> definition
        self.order: list[str] = []  # records and enums, in the order first seen
        self.used: set[str] = set()

    # -- collecting named types ---------------------------------------------------------
    def collect(self, node: Any, namespace: str | None) -> None:
        if isinstance(node, list):
            for branch in node:
                self.collect(branch, namespace)
        elif isinstance(node, dict):
            kind = node.get("type")
            if kind in NAMED_KINDS:
                full = fullname(node, namespace)
                known = self.named.get(full)
                if known is not None and _strip_docs(known) != _strip_docs(node):
                    raise SchemaError(f"named type {full} is defined twice, differently")
                if known is None:
                    self.named[full] = node
                inner = full.rsplit(".", 1)[0] if "." in full else None
                for f in node.get("fields", []):
                    self.collect(f["type"], inner)
                if known is None:
                    self.order.append(full)
            elif kind == "array":
                self.collect(node["items"], namespace)
            elif kind == "map":
                self.collect(node["values"], namespace)
            elif isinstance(kind, dict | list):
                self.collect(kind, namespace)

    def short(self, full: str) -> str:
        return full.rsplit(".", 1)[-1]

    # -- types ------------------------------------------------------------------------------
    def type_of(self, node: Any) -> _Type:
        if isinstance(node, str):
            if node in PRIMITIVES:
                return _Type("primitive", _PYTHON_PRIMITIVES[node])
            full = node if node in self.named else next(
                (n for n in self.named if self.short(n) == node), node)
            if full not in self.named:
                raise SchemaError(f"unknown type {node!r}")
            return self.type_of(self.named[full])
        if isinstance(node, list):
            branches = [b for b in node if b != "null"]
            if len(branches) == 1 and len(node) == 2:
                inner = self.type_of(branches[0])
                return _Type("optional", f"{inner.python} | None", inner)
            self.used.add("Any")
            return _Type("any", "Any")
        kind = node["type"]
        if kind in ("record", "error"):
            return _Type("record", self.short(str(node["name"])))
        if kind == "enum":
            return _Type("enum", self.short(str(node["name"])))
        if kind == "fixed":
            return _Type("primitive", "bytes")
        if kind == "array":
            item = self.type_of(node["items"])
            return _Type("array", f"tuple[{item.python}, ...]", item)
        if kind == "map":
            item = self.type_of(node["values"])
            return _Type("map", f"dict[str, {item.python}]", item)
        logical = node.get("logicalType")
        if isinstance(kind, str) and kind in PRIMITIVES:
            if logical is None:
                return _Type("primitive", _PYTHON_PRIMITIVES[kind])
            python = _LOGICAL.get((kind, logical))
            if python is None:
                raise SchemaError(f"logical type {logical!r} on {kind!r} is not supported "
                                  "by the generator")
            if python == "datetime":
                self.used.add("datetime")
            return _Type("primitive", python)
        return self.type_of(kind)

    # -- expressions ------------------------------------------------------------------------
    def coerce(self, t: _Type, x: str, depth: int = 0) -> str:
        """An expression turning ``x`` (a plain or typed value) into the typed value."""
        if t.kind in ("primitive", "any"):
            return x
        if t.kind == "enum":
            return f"{t.python}({x})"
        if t.kind == "record":
            return f"{t.python}.coerce({x})"
        assert t.item is not None
        if t.kind == "optional":
            return f"None if {x} is None else {self.coerce(t.item, x, depth)}"
        name = f"i{depth}"
        if t.kind == "array":
            if t.item.kind in ("primitive", "any"):
                self.used.add("as_tuple")
                return f"as_tuple({x})"
            return f"tuple({self.coerce(t.item, name, depth + 1)} for {name} in {x})"
        if t.item.kind in ("primitive", "any"):
            return f"dict({x})"
        return (f"{{k{depth}: {self.coerce(t.item, name, depth + 1)} "
                f"for k{depth}, {name} in {x}.items()}}")

    def avro(self, t: _Type, x: str, depth: int = 0) -> str:
        """An expression giving the Avro value of typed ``x``."""
        if t.kind == "primitive":
            return x
        if t.kind == "any":
            self.used.add("to_avro_any")
            return f"to_avro_any({x})"
        if t.kind == "enum":
            return f"{x}.value"
        if t.kind == "record":
            return f"{x}.to_avro()"
        assert t.item is not None
        if t.kind == "optional":
            if t.item.kind == "primitive":
                return x
            return f"None if {x} is None else {self.avro(t.item, x, depth)}"
        name = f"i{depth}"
        if t.kind == "array":
            if t.item.kind == "primitive":
                return f"list({x})"
            return f"[{self.avro(t.item, name, depth + 1)} for {name} in {x}]"
        if t.item.kind == "primitive":
            return f"dict({x})"
        return (f"{{k{depth}: {self.avro(t.item, name, depth + 1)} "
                f"for k{depth}, {name} in {x}.items()}}")

    def accepted(self, t: _Type) -> str:
        """The ``__init__`` annotation of a field: its type, or the plain value it is made of."""
        if t.kind in ("primitive", "any"):
            return t.python
        if t.kind == "enum":
            return f"{t.python} | str"
        if t.kind == "record":
            self.used.add("Mapping")
            return f"{t.python} | Mapping[str, Any]"
        assert t.item is not None
        if t.kind == "optional":
            return f"{self.accepted(t.item)} | None"
        if t.kind == "array":
            self.used.add("Iterable")
            return f"Iterable[{self.accepted(t.item)}]"
        self.used.add("Mapping")
        return f"Mapping[str, {self.accepted(t.item)}]"

    def init_default(self, t: _Type, value: Any, where: str) -> str:
        """The ``__init__`` default of a field (immutable: shared by every call)."""
        if value is None:
            return "None"
        if t.kind == "optional":
            assert t.item is not None
            return self.init_default(t.item, value, where)
        if t.kind == "enum":
            return f"{t.python}({_q(value)})"
        if t.kind == "array" and t.item is not None and (
                not value or t.item.kind == "primitive"):
            return repr(tuple(value))
        if t.kind == "map" and not value:
            self.used.add("EMPTY_MAP")
            return "EMPTY_MAP"
        if t.kind == "primitive":
            return _q(value) if isinstance(value, str) else repr(value)
        raise SchemaError(f"{where}: the generator supports no default {value!r} for a "
                          f"{t.kind} field")

    def init(self, name: str, fields: list[tuple[str, _Type, dict]], event: bool) -> list[str]:
        """``__init__``: keyword arguments take typed or plain values (a dict for a record, a
        list for an array, a symbol for an enum) and store the typed ones."""
        params = []
        for field_name, t, spec in fields:
            param = f"{field_name}: {self.accepted(t)}"
            if "default" in spec:
                param += f" = {self.init_default(t, spec['default'], f'{name}.{field_name}')}"
            params.append(param)
        if event:
            self.used.add("Envelope")
            params += ["envelope: Envelope | None = None", "key: str | None = None",
                       "topic: str | None = None"]
        self.used.add("set_field")
        lines = ["    def __init__(", "        self,", "        *,",
                 *(f"        {param}," for param in params), "    ) -> None:"]
        if event:
            lines += [f'        set_field(self, "{n}", {n})' for n in ("envelope", "key", "topic")]
        for field_name, t, _ in fields:
            lines += _wrap_call(f'        set_field(self, "{field_name}", ',
                                self.init_value(t, field_name))
        return lines

    def init_value(self, t: _Type, x: str) -> str:
        """The typed value of argument ``x`` (converted only when it is not one already)."""
        if t.kind == "record":
            return f"{x} if type({x}) is {t.python} else {t.python}.coerce({x})"
        if t.kind == "optional" and t.item is not None and t.item.kind == "record":
            return f"None if {x} is None else {self.init_value(t.item, x)}"
        return self.coerce(t, x)

    def default(self, t: _Type, value: Any) -> str:
        """A field default (a literal, or ``field(default_factory=...)``)."""
        if value is None:
            return "None"
        if t.kind == "optional":
            assert t.item is not None
            return self.default(t.item, value)
        if t.kind == "enum":
            return f"{t.python}({_q(value)})"
        if t.kind == "array":
            assert t.item is not None
            if not value:
                return "()"
            if t.item.kind == "primitive":
                return repr(tuple(value))
        if t.kind in ("map", "record", "array"):
            self.used.add("field")
            if t.kind == "map" and not value:
                return "field(default_factory=dict)"
            return f"field(default_factory=lambda: {self.coerce(t, repr(value))})"
        return _q(value) if isinstance(value, str) else repr(value)

    # -- classes ----------------------------------------------------------------------------
    def fields(self, node: dict[str, Any], event: bool) -> list[tuple[str, _Type, dict]]:
        found = []
        for spec in node.get("fields", []):
            name = spec["name"]
            if event and name in ENVELOPE_NAMES:
                continue
            reserved = _RESERVED_IN_EVENTS if event else _RESERVED_IN_RECORDS
            if keyword.iskeyword(name) or name in reserved or name.startswith("_"):
                raise SchemaError(f"{node['name']}.{name}: the name cannot be a field of the "
                                  "generated dataclass; rename it (with an alias)")
            found.append((name, self.type_of(spec["type"]), spec))
        return found

    def enum_class(self, node: dict[str, Any]) -> list[str]:
        self.used.add("StrEnum")
        name = self.short(str(node["name"]))
        lines = [f"class {name}(StrEnum):", *(_doc(node.get("doc"), "    ") or
                                               [f'    """{name} symbols."""']), ""]
        members: set[str] = set()
        for symbol in node["symbols"]:
            member = symbol.upper()
            if member in members:
                raise SchemaError(f"{node['name']}: symbols differ only in case ({symbol})")
            members.add(member)
            lines.append(f"    {member} = {_q(symbol)}")
        return lines

    def record_class(self, node: dict[str, Any], event_schema: Any = None) -> list[str]:
        name = self.short(str(node["name"]))
        event = event_schema is not None
        fields = self.fields(node, event)
        base = "EventRecord" if event else "AvroRecord"
        self.used.update({"dataclass", "ClassVar", base})
        lines = ["@dataclass(frozen=True, kw_only=True, init=False)", f"class {name}({base}):",
                 *(_doc(node.get("doc"), "    ") or [f'    """{name}."""']), ""]
        names = ", ".join(_q(n) for n, _, _ in fields) + ("," if len(fields) == 1 else "")
        if event:
            key_field = "None" if event_schema.key_field is None else _q(event_schema.key_field)
            lines += [f"    TYPE: ClassVar[str] = {_q(event_schema.name)}",
                      f"    TOPIC: ClassVar[str] = {_q(event_schema.topic)}",
                      f"    KEY_FIELD: ClassVar[str | None] = {key_field}",
                      f"    FINGERPRINT: ClassVar[str] = {_q(event_schema.fingerprint_hex)}"]
        else:
            lines.append(f"    AVRO_NAME: ClassVar[str] = {_q(str(node['name']))}")
        lines += [*_wrap_assign("    FIELDS: ClassVar[tuple[str, ...]] = ", f"({names})"), ""]
        for field_name, t, spec in fields:
            annotation = f"    {field_name}: {t.python}"
            if "default" in spec:
                annotation += f" = {self.default(t, spec['default'])}"
            lines.append(annotation)
            lines += _doc(spec.get("doc"), "    ")
        lines += ["", *self.init(name, fields, event)]
        self.used.add("Any")
        if event:
            self.used.add("envelope_avro")
            lines += ["",
                      "    def to_avro(self, envelope: Envelope | None = None) -> dict[str, Any]:",
                      "        return {", "            **envelope_avro(self, envelope),"]
        else:
            lines += ["", "    def to_avro(self) -> dict[str, Any]:", "        return {"]
        for field_name, t, _ in fields:
            value = self.avro(t, f"self.{field_name}")
            lines += _wrap_entry(f'            "{field_name}": ', value)
        lines += ["        }", ""]
        self.used.update({"Mapping", "build"})
        # From a decoded Avro value: built directly (no __init__), the shapes being known.
        if event:
            self.used.add("envelope_of")
            lines += ["    @classmethod",
                      "    def from_avro(cls, data: Mapping[str, Any], *, key: str | None = None,",
                      f"                  topic: str | None = None) -> {name}:",
                      "        return build(cls, {",
                      '            "envelope": envelope_of(data), "key": key, "topic": topic,']
        else:
            lines += ["    @classmethod",
                      f"    def from_avro(cls, data: Mapping[str, Any]) -> {name}:",
                      "        return build(cls, {"]
        for field_name, t, spec in fields:
            if "default" in spec:
                default = self.default(t, spec["default"])
                if default.startswith("field("):
                    default = default.removeprefix("field(default_factory=lambda: ") \
                        .removeprefix("field(default_factory=").removesuffix(")")
                    default = "{}" if default == "dict" else default
                getter = (f'data.get("{field_name}")' if default == "None"
                          else f'data.get("{field_name}", {default})')
            else:
                getter = f'data["{field_name}"]'
            lines += _wrap_entry(f'            "{field_name}": ', self.decoded(t, getter))
        lines.append("        })")
        return lines

    def decoded(self, t: _Type, x: str, depth: int = 0) -> str:
        """An expression giving the typed value of ``x``, a decoded Avro value."""
        if t.kind in ("primitive", "any"):
            return x
        if t.kind == "enum":
            return f"{t.python}({x})"
        if t.kind == "record":
            return f"{t.python}.from_avro({x})"
        assert t.item is not None
        if t.kind == "optional":
            if t.item.kind in ("primitive", "any"):
                return x
            self.used.add("optional")
            if t.item.kind == "enum":
                return f"optional({t.item.python}, {x})"
            if t.item.kind == "record":
                return f"optional({t.item.python}.from_avro, {x})"
            return f"optional(lambda v: {self.decoded(t.item, 'v', depth)}, {x})"
        name = f"i{depth}"
        if t.kind == "array":
            if t.item.kind in ("primitive", "any"):
                return f"tuple({x})"
            return f"tuple([{self.decoded(t.item, name, depth + 1)} for {name} in {x}])"
        if t.item.kind in ("primitive", "any"):
            return f"dict({x})"
        return (f"{{k{depth}: {self.decoded(t.item, name, depth + 1)} "
                f"for k{depth}, {name} in {x}.items()}}")

    def module(self) -> str:
        registry = self.registry
        for name in sorted(registry.types):
            self.collect(expand(name, registry.types), None)
        events = [registry.current[n] for n in sorted(registry.current)]
        for schema in events:
            self.collect([f["type"] for f in schema.expanded["fields"]], None)
        bodies: list[list[str]] = []
        enums = [n for n in self.order if self.named[n]["type"] == "enum"]
        records = [n for n in self.order if self.named[n]["type"] != "enum"]
        short_names = [self.short(n) for n in self.order] + [s.name for s in events]
        clash = {n for n in short_names if short_names.count(n) > 1}
        if clash:
            raise SchemaError(f"type names used twice: {sorted(clash)}")
        for full in sorted(enums, key=self.short):
            bodies.append(self.enum_class(self.named[full]))
        for full in sorted(records, key=self.short):
            bodies.append(self.record_class(self.named[full]))
        for schema in events:
            bodies.append(self.record_class(schema.expanded, schema))
        tables = [
            *_table("EVENT_TYPES", "type[EventRecord]", [s.name for s in events]),
            "",
            *_table("RECORD_TYPES", "type[AvroRecord]", sorted(self.short(n) for n in records)),
            "",
            *_table("ENUM_TYPES", "type[StrEnum]", sorted(self.short(n) for n in enums)),
        ]
        return _HEADER + self.imports() + "\n\n" + "\n\n\n".join(
            "\n".join(b) for b in bodies) + "\n\n\n" + "\n".join(tables) + "\n"

    def imports(self) -> str:
        abc = sorted(n for n in ("Iterable", "Mapping") if n in self.used)
        lines = [f"from collections.abc import {', '.join(abc)}"] if abc else []
        dataclasses = sorted(n for n in ("dataclass", "field") if n in self.used)
        lines.append(f"from dataclasses import {', '.join(dataclasses)}")
        if "datetime" in self.used:
            lines.append("from datetime import datetime")
        if "StrEnum" in self.used:
            lines.append("from enum import StrEnum")
        typing = sorted(n for n in ("Any", "ClassVar") if n in self.used)
        lines += [f"from typing import {', '.join(typing)}", ""]
        if "envelope_avro" in self.used:
            self.used.add("Envelope")
        typed = sorted((n for n in ("EMPTY_MAP", "AvroRecord", "Envelope", "EventRecord",
                                    "as_tuple", "build", "envelope_avro", "envelope_of",
                                    "optional", "set_field", "to_avro_any") if n in self.used),
                       key=_import_order)
        lines.append("from materialabs.events.typed import (")
        lines += [f"    {n}," for n in typed] + [")"]
        return "\n".join(lines) + "\n"


_HEADER = '''"""Typed events and records, generated from schemas/ by `materialabs schemas generate`.

Do not edit: change the .avsc files, then run the command again (a test fails while this
module and the schemas disagree). See materialabs/events/typed.py for the base classes.
"""

from __future__ import annotations

'''


def _import_order(name: str) -> tuple[int, str]:
    """isort's order: constants, classes, then functions."""
    return (0 if name.isupper() else 1 if name[:1].isupper() else 2, name)


def _q(text: str) -> str:
    """A double-quoted Python string literal."""
    return json.dumps(text, ensure_ascii=False)


def _wrap_assign(prefix: str, value: str) -> list[str]:
    if len(prefix) + len(value) <= 100:
        return [prefix + value]
    inner = value[1:-1]
    parts = [p.strip() for p in inner.split(",") if p.strip()]
    return [prefix + "(", *(f"        {p}," for p in parts), "    )"]


def _wrap_call(prefix: str, value: str) -> list[str]:
    """``prefix + value + ")"`` on one line, or the value on a line of its own."""
    line = f"{prefix}{value})"
    if len(line) <= 100:
        return [line]
    indent = " " * (len(prefix) - len(prefix.lstrip()) + 4)
    return [prefix.rstrip(), f"{indent}{value})"]


def _wrap_entry(prefix: str, value: str) -> list[str]:
    line = f"{prefix}{value},"
    if len(line) <= 100:
        return [line]
    indent = " " * (len(prefix) - len(prefix.lstrip()) + 4)
    return [f"{prefix}(", f"{indent}{value}", f"{indent[:-4]}),"]


def _table(name: str, annotation: str, names: list[str]) -> list[str]:
    return [f"{name}: dict[str, {annotation}] = {{",
            *(f"    {_q(n)}: {n}," for n in names), "}"]


def _strip_docs(node: Any, top: bool = True) -> Any:
    """A named type's shape: no docs, nested named types by name only."""
    if isinstance(node, dict):
        if not top and isinstance(node.get("type"), str) and node["type"] in NAMED_KINDS:
            return str(node["name"])
        return {k: _strip_docs(v, False) for k, v in node.items() if k not in ("doc",)}
    if isinstance(node, list):
        return [_strip_docs(v, False) for v in node]
    return node


def module_text(registry: SchemaRegistry) -> str:
    """The source of ``materialabs/events/types.py`` for ``registry``'s current schemas."""
    return _Generator(registry).module()


def is_stale(registry: SchemaRegistry, path: Path = MODULE_PATH) -> bool:
    return not path.exists() or path.read_text(encoding="utf-8") != module_text(registry)


def write(registry: SchemaRegistry, path: Path = MODULE_PATH) -> bool:
    """Write the module; True when it changed."""
    text = module_text(registry)
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return False
    path.write_text(text, encoding="utf-8")
    return True
