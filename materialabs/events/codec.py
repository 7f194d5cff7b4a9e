"""Avro single-object encoding: ``C3 01`` + 8-byte CRC-64-AVRO fingerprint + Avro body.

Any consumer can tell which schema version wrote a message without a registry server:
the fingerprint is looked up among the current and frozen schema versions, and the body
is resolved from that writer schema to the current reader schema.
"""

from __future__ import annotations

import io
from typing import Any

import fastavro
from fastavro.validation import ValidationError, validate

from materialabs.events.envelope import Event
from materialabs.events.registry import EventSchema, SchemaRegistry, default_registry
from materialabs.events.typed import EventRecord

MAGIC = b"\xc3\x01"
HEADER_SIZE = len(MAGIC) + 8


class EncodeError(ValueError):
    """The payload does not match its schema (names the event type and field)."""


class DecodeError(ValueError):
    """Bytes that are not a readable event. ``code`` is a short machine-readable reason."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail


def encode(event: Event | EventRecord, registry: SchemaRegistry | None = None, *,
           check: bool = False) -> bytes:
    """Encode with the current schema of ``event.type``; ``check`` validates first (slower).

    A typed event encodes to the same bytes as its untyped form (``to_event()``).
    """
    if isinstance(event, EventRecord):
        event = event.to_event()
    registry = registry or default_registry()
    schema = registry.schema(event.type)
    if check:
        validate_payload(event.type, event.payload, registry)
    try:
        return encode_with(schema, event.payload)
    except EncodeError as error:
        detail = _explain(event.type, event.payload, registry) or str(error)
        raise EncodeError(f"{event.type} {event.payload.get('event_id', '?')}: {detail}") from error


def encode_with(schema: EventSchema, payload: dict[str, Any]) -> bytes:
    """Encode ``payload`` with one given schema version (tests, tools writing old versions)."""
    buffer = io.BytesIO()
    buffer.write(MAGIC)
    buffer.write(schema.fingerprint)
    try:
        fastavro.schemaless_writer(buffer, schema.parsed, payload)
    except Exception as error:  # fastavro raises TypeError/ValueError/AttributeError/...
        raise EncodeError(f"{schema.name}: {error}") from error
    return buffer.getvalue()


def validate_payload(type: str, payload: dict[str, Any],
                     registry: SchemaRegistry | None = None) -> None:
    explanation = _explain(type, payload, registry)
    if explanation:
        raise EncodeError(f"{type} {payload.get('event_id', '?')}: {explanation}")


def _explain(type: str, payload: dict[str, Any], registry: SchemaRegistry | None) -> str | None:
    schema = (registry or default_registry()).schema(type)
    problems = []
    missing = [f["name"] for f in schema.expanded["fields"]
               if f["name"] not in payload and "default" not in f]
    if missing:
        problems.append(f"missing field(s) {missing} (no default in schema {schema.origin})")
    present = {k: v for k, v in payload.items() if k not in missing}
    for spec in schema.expanded["fields"]:
        field = spec["name"]
        if field in present or field in missing:
            continue
        present[field] = spec.get("default")
    try:
        single = {"type": "record", "name": schema.fullname,
                  "fields": [f for f in schema.expanded["fields"] if f["name"] not in missing]}
        validate(present, fastavro.parse_schema(_without_uuid(single)), raise_errors=True)
    except ValidationError as error:
        problems += [str(e) for e in error.errors] or [str(error)]
    except Exception:  # noqa: BLE001 - the explanation is best effort
        pass
    return "; ".join(problems) or None


def _without_uuid(schema: dict[str, Any]) -> dict[str, Any]:
    from materialabs.events.registry import _strip_uuid

    return _strip_uuid(schema)


def decode(
    data: bytes,
    registry: SchemaRegistry | None = None,
    *,
    key: str | None = None,
    topic: str | None = None,
) -> Event:
    """Decode one single-object-encoded message; raise DecodeError saying what is wrong."""
    registry = registry or default_registry()
    if not data:
        raise DecodeError("empty", "no bytes (a tombstone or an empty message is not an event)")
    if len(data) < HEADER_SIZE:
        if data[: len(MAGIC)] != MAGIC[: len(data)]:
            raise DecodeError("bad_magic", f"expected C3 01, got {data[:2].hex(' ')}")
        raise DecodeError(
            "truncated_header", f"{len(data)} bytes; the header alone is {HEADER_SIZE} bytes"
        )
    if data[:2] != MAGIC:
        raise DecodeError(
            "bad_magic", f"expected C3 01 (Avro single-object encoding), got {data[:2].hex(' ')}"
        )
    fingerprint = bytes(data[2:HEADER_SIZE])
    writer = registry.writer(fingerprint)
    if writer is None:
        raise DecodeError(
            "unknown_fingerprint",
            f"CRC-64-AVRO fingerprint {fingerprint.hex()} matches none of the "
            f"{len(registry.by_fingerprint)} known schema versions",
        )
    reader = registry.reader_for(writer)
    body = io.BytesIO(data)
    body.seek(HEADER_SIZE)
    try:
        payload = fastavro.schemaless_reader(
            body, writer.parsed, None if reader is writer else reader.parsed
        )
    except (EOFError, StopIteration) as error:
        raise DecodeError(
            "truncated_body", f"{writer.name} body ends early ({len(data) - HEADER_SIZE} bytes)"
        ) from error
    except Exception as error:  # corrupt varints, bad UTF-8, bad enum index, ...
        raise DecodeError("bad_body", f"{writer.name} body unreadable: {error}") from error
    if body.tell() != len(data) or len(body.getbuffer()) != len(data):
        raise DecodeError("bad_body", f"{writer.name}: {len(data) - body.tell()} trailing bytes")
    if not isinstance(payload, dict):
        raise DecodeError("bad_body", f"{writer.name}: body is not a record")
    if key is None and reader.key_field and payload.get(reader.key_field) is not None:
        key = str(payload[reader.key_field])
    return Event(type=reader.name, payload=payload, key=key, topic=topic or reader.topic)


def decode_typed(data: bytes, registry: SchemaRegistry | None = None, *,
                 key: str | None = None, topic: str | None = None) -> EventRecord:
    """Decode into the event type's generated dataclass (``materialabs.events.types``)."""
    return EventRecord.from_event(decode(data, registry, key=key, topic=topic))
