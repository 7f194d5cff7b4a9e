"""Event contracts: Avro schemas, the single-object codec, envelopes and compatibility.

Two views of one event: ``Event`` (type name + payload dict; what tools and the codec
handle) and the typed dataclasses of ``materialabs.events.types`` (generated from the
schemas; what handlers get and return). Both encode to the same bytes.
"""

from materialabs.events.codec import (
    DecodeError,
    EncodeError,
    decode,
    decode_typed,
    encode,
    validate_payload,
)
from materialabs.events.envelope import Event, derived_event_id, new_event, utc_now_millis
from materialabs.events.registry import (
    EventSchema,
    SchemaError,
    SchemaRegistry,
    default_registry,
)
from materialabs.events.typed import AvroRecord, Envelope, EventRecord, event_class, new_envelope

__all__ = [
    "AvroRecord",
    "DecodeError",
    "EncodeError",
    "Envelope",
    "Event",
    "EventRecord",
    "EventSchema",
    "SchemaError",
    "SchemaRegistry",
    "decode",
    "decode_typed",
    "default_registry",
    "derived_event_id",
    "encode",
    "event_class",
    "new_envelope",
    "new_event",
    "utc_now_millis",
    "validate_payload",
]
