"""Event contracts: Avro schemas, the single-object codec, envelopes and compatibility."""

from materialabs.events.codec import DecodeError, EncodeError, decode, encode, validate_payload
from materialabs.events.envelope import Event, derived_event_id, new_event, utc_now_millis
from materialabs.events.registry import (
    EventSchema,
    SchemaError,
    SchemaRegistry,
    default_registry,
)

__all__ = [
    "DecodeError",
    "EncodeError",
    "Event",
    "EventSchema",
    "SchemaError",
    "SchemaRegistry",
    "decode",
    "default_registry",
    "derived_event_id",
    "encode",
    "new_event",
    "utc_now_millis",
    "validate_payload",
]
