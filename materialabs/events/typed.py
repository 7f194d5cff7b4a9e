"""Typed events: the base classes of the dataclasses generated into ``events/types.py``.

Every schema in ``schemas/`` becomes a frozen dataclass (``materialabs schemas generate``):
an event type (``DftRequested``) is an :class:`EventRecord`, a nested named record
(``Crystal``, ``Prediction``, ...) an :class:`AvroRecord`, an enum a ``StrEnum``. Arrays
are tuples; ``to_avro()`` gives the exact Avro value (lists, dicts, enum symbols), so a
typed event encodes to the same bytes as the dict it stands for.

An event's envelope (``event_id``, ``occurred_at``, ``producer``, ``causation_id``,
``campaign_id``) is an :class:`Envelope`, readable as attributes of the event. A handler
may return an event without one (a *draft*): the runtime gives it this service's
envelope, caused by the input (:meth:`materialabs.runtime.Context.event` does it by hand,
e.g. for another campaign id).
"""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from types import MappingProxyType
from typing import Any, ClassVar, TypeVar

from materialabs.events.envelope import ENVELOPE_NAMES, Event, utc_now_millis

E = TypeVar("E", bound="EventRecord")
T = TypeVar("T")
EMPTY_MAP: Mapping[str, Any] = MappingProxyType({})  # the default of an empty map field


@dataclass(frozen=True)
class Envelope:
    """What every event carries besides its own fields."""

    event_id: str
    """Unique id (UUID text); consumers deduplicate on it."""
    occurred_at: datetime
    """When the producer made the event (UTC, whole milliseconds)."""
    producer: str
    """The service or tool that made it."""
    causation_id: str | None = None
    """``event_id`` of the event that caused this one."""
    campaign_id: str | None = None
    """The discovery campaign it belongs to."""

    @classmethod
    def from_avro(cls, data: Mapping[str, Any]) -> Envelope:
        return build(cls, {"event_id": str(data["event_id"]), "occurred_at": data["occurred_at"],
                           "producer": data["producer"],
                           "causation_id": data.get("causation_id"),
                           "campaign_id": data.get("campaign_id")})

    def to_avro(self) -> dict[str, Any]:
        return {"event_id": self.event_id, "occurred_at": self.occurred_at,
                "producer": self.producer, "causation_id": self.causation_id,
                "campaign_id": self.campaign_id}


def new_envelope(producer: str, cause: EventRecord | Event | str | None = None,
                 campaign_id: str | None = None, *, event_id: str | None = None,
                 occurred_at: datetime | None = None) -> Envelope:
    """A fresh envelope; the campaign id is inherited from a causing event unless given."""
    causation_id = cause if isinstance(cause, str) or cause is None else cause.event_id
    if campaign_id is None and not isinstance(cause, str) and cause is not None:
        campaign_id = cause.campaign_id
    return Envelope(event_id=event_id or str(uuid.uuid4()),
                    occurred_at=occurred_at or utc_now_millis(), producer=producer,
                    causation_id=causation_id, campaign_id=campaign_id)


class AvroRecord(Mapping[str, Any]):
    """A nested Avro record (``Crystal``, ``Prediction``, ...); also a read-only mapping of
    its fields, so code written for the Avro dict (``Crystal.from_record``) takes it."""

    AVRO_NAME: ClassVar[str]
    FIELDS: ClassVar[tuple[str, ...]]

    def __getitem__(self, name: str) -> Any:
        if name not in self.FIELDS:
            raise KeyError(name)
        return getattr(self, name)

    def __iter__(self) -> Iterator[str]:
        return iter(self.FIELDS)

    def __len__(self) -> int:
        return len(self.FIELDS)

    def to_avro(self) -> dict[str, Any]:
        raise NotImplementedError

    @classmethod
    def from_avro(cls, data: Mapping[str, Any]) -> Any:
        raise NotImplementedError

    @classmethod
    def coerce(cls, value: Any) -> Any:
        """``value`` if it is one already, else one made from a mapping of its fields."""
        if isinstance(value, cls):
            return value
        if type(value) is not dict and not isinstance(value, Mapping):
            raise TypeError(f"{cls.__name__}: expected a {cls.__name__} or a mapping of its "
                            f"fields, got {type(value).__name__}")
        return cls(**value)


@dataclass(frozen=True, kw_only=True)
class EventRecord:
    """An event type's dataclass: its own fields (generated), its envelope and its routing.

    ``key`` and ``topic`` are where the message travels: None means the schema's key
    field and topic. A decoded event has the key and topic it came with.
    """

    TYPE: ClassVar[str]
    TOPIC: ClassVar[str]
    KEY_FIELD: ClassVar[str | None]
    FINGERPRINT: ClassVar[str]
    FIELDS: ClassVar[tuple[str, ...]]

    envelope: Envelope | None = None
    key: str | None = field(default=None, compare=False, repr=False)
    topic: str | None = field(default=None, compare=False, repr=False)

    # -- the envelope, as attributes -----------------------------------------------------
    def _envelope(self) -> Envelope:
        if self.envelope is None:
            raise ValueError(f"{self.TYPE} is a draft without an envelope; the runtime (or "
                             "Context.event) gives it one")
        return self.envelope

    @property
    def event_id(self) -> str:
        return self._envelope().event_id

    @property
    def occurred_at(self) -> datetime:
        return self._envelope().occurred_at

    @property
    def producer(self) -> str:
        return self._envelope().producer

    @property
    def causation_id(self) -> str | None:
        return self._envelope().causation_id

    @property
    def campaign_id(self) -> str | None:
        return self._envelope().campaign_id

    @property
    def type(self) -> str:
        return self.TYPE

    def with_envelope(self: E, envelope: Envelope) -> E:
        return replace(self, envelope=envelope)

    # -- the wire ----------------------------------------------------------------------------
    def message_key(self, envelope: Envelope | None = None) -> str | None:
        """The message key: ``key`` if set, else the value of the schema's key field (of
        ``envelope``, when given, for a key field in the envelope)."""
        if self.key is not None:
            return self.key
        if self.KEY_FIELD is None:
            return None
        if self.KEY_FIELD in ENVELOPE_NAMES:
            value = getattr(envelope or self.envelope, self.KEY_FIELD, None)
        else:
            value = getattr(self, self.KEY_FIELD)
        return None if value is None else str(value)

    def message_topic(self) -> str:
        return self.topic or self.TOPIC

    def to_avro(self, envelope: Envelope | None = None) -> dict[str, Any]:
        """The whole Avro record, envelope included (``envelope`` instead of the event's
        own, when given): what goes on the wire."""
        raise NotImplementedError

    @classmethod
    def from_avro(cls, data: Mapping[str, Any], *, key: str | None = None,
                  topic: str | None = None) -> EventRecord:
        raise NotImplementedError

    def to_event(self, envelope: Envelope | None = None) -> Event:
        """The untyped message (a dict payload), for the codec and tools; ``envelope``
        replaces the event's own (the runtime names its outputs so)."""
        return Event(type=self.TYPE, payload=self.to_avro(envelope),
                     key=self.message_key(envelope), topic=self.message_topic())

    @staticmethod
    def from_event(event: Event) -> EventRecord:
        """The typed event of an untyped (decoded) one."""
        return event_class(event.type).from_avro(event.payload, key=event.key,
                                                 topic=event.topic)


def event_class(name: str) -> builtins.type[EventRecord]:
    """The generated class of event type ``name``."""
    from materialabs.events.types import EVENT_TYPES

    try:
        return EVENT_TYPES[name]
    except KeyError:
        raise LookupError(f"no typed class for event type {name!r}: the schema is newer than "
                          "materialabs/events/types.py (run `materialabs schemas generate`)"
                          ) from None


def envelope_avro(event: EventRecord, envelope: Envelope | None = None) -> dict[str, Any]:
    """The envelope fields of ``event``'s Avro record (used by the generated ``to_avro``)."""
    return (envelope or event._envelope()).to_avro()


def envelope_of(data: Mapping[str, Any]) -> Envelope | None:
    """The envelope of an Avro record, or None when it has none (a draft's fields)."""
    return Envelope.from_avro(data) if "event_id" in data else None


def build(cls: type[T], fields: dict[str, Any]) -> T:
    """An instance of dataclass ``cls`` from already typed field values, without running
    ``__init__`` (decoding knows the shapes: no conversion to do)."""
    obj = object.__new__(cls)
    obj.__dict__.update(fields)
    return obj


def optional(convert: Callable[[Any], Any], value: Any) -> Any:
    return None if value is None else convert(value)


def as_tuple(value: Any) -> tuple[Any, ...]:
    return value if type(value) is tuple else tuple(value)


def set_field(obj: Any, name: str, value: Any) -> None:
    """Set a field of a frozen dataclass while it is being made (``__post_init__``)."""
    object.__setattr__(obj, name, value)


def to_avro_any(value: Any) -> Any:
    """The Avro value of a field whose type the generator leaves open (a complex union)."""
    to_avro = getattr(value, "to_avro", None)
    if to_avro is not None:
        return to_avro()
    return list(value) if isinstance(value, tuple) else value
