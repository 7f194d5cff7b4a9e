"""Hypothesis strategies that generate records valid for an (expanded) Avro schema."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import strategies as st

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MAX_MS = 4_102_444_800_000  # 2100-01-01

_PRIMITIVE: dict[str, st.SearchStrategy[Any]] = {
    "null": st.none(),
    "boolean": st.booleans(),
    "int": st.integers(-(2**31), 2**31 - 1),
    "long": st.integers(-(2**63), 2**63 - 1),
    "float": st.floats(width=32, allow_nan=False),
    "double": st.floats(allow_nan=False),
    "bytes": st.binary(max_size=16),
    "string": st.text(max_size=12),
}


def _timestamps() -> st.SearchStrategy[datetime]:
    return st.integers(0, _MAX_MS).map(lambda ms: _EPOCH + timedelta(milliseconds=ms))


def records_for(schema: Any) -> st.SearchStrategy[Any]:
    """A strategy for values of ``schema`` (self-contained: named types defined inline)."""
    named: dict[str, Any] = {}

    def build(node: Any) -> st.SearchStrategy[Any]:
        if isinstance(node, str):
            if node in _PRIMITIVE:
                return _PRIMITIVE[node]
            return st.deferred(lambda: build(named[node]))
        if isinstance(node, list):
            return st.one_of([build(branch) for branch in node])
        kind = node["type"]
        logical = node.get("logicalType")
        if logical == "uuid":
            return st.uuids().map(str)
        if logical == "timestamp-millis":
            return _timestamps()
        if kind == "record":
            named[node["name"]] = node
            return st.fixed_dictionaries({f["name"]: build(f["type"]) for f in node["fields"]})
        if kind == "enum":
            named[node["name"]] = node
            return st.sampled_from(node["symbols"])
        if kind == "fixed":
            named[node["name"]] = node
            return st.binary(min_size=node["size"], max_size=node["size"])
        if kind == "array":
            return st.lists(build(node["items"]), max_size=4)
        if kind == "map":
            return st.dictionaries(st.text(max_size=8), build(node["values"]), max_size=3)
        return build(kind)

    return build(schema)
