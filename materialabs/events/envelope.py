"""The event as handlers see it, and the one way to make a new one."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from materialabs.events.registry import SchemaRegistry, default_registry

ENVELOPE_NAMES = ("event_id", "occurred_at", "producer", "causation_id", "campaign_id")

# Deterministic ids for a service's outputs live in their own UUID namespace.
_OUTPUT_ID_NAMESPACE = uuid.UUID("8b0f7f0e-57a4-4d0c-9a3c-2f7c6b1e9d11")


@dataclass(frozen=True)
class Event:
    """A decoded (or about to be encoded) event.

    ``type`` is the schema's short name (``"CandidateGenerated"``); ``payload`` holds every
    field, envelope included; ``key`` is the message key (a candidate's content key, ...);
    ``topic`` is where it travels.
    """

    type: str
    payload: dict[str, Any]
    key: str | None = None
    topic: str | None = None
    headers: tuple[tuple[str, bytes], ...] = field(default=(), compare=False)

    @property
    def event_id(self) -> str:
        return str(self.payload["event_id"])

    @property
    def campaign_id(self) -> str | None:
        return self.payload.get("campaign_id")

    @property
    def causation_id(self) -> str | None:
        return self.payload.get("causation_id")

    @property
    def producer(self) -> str:
        return str(self.payload.get("producer", ""))

    @property
    def occurred_at(self) -> datetime:
        return self.payload["occurred_at"]

    def __getitem__(self, name: str) -> Any:
        return self.payload[name]

    def with_event_id(self, event_id: str) -> Event:
        return replace(self, payload={**self.payload, "event_id": event_id})


def utc_now_millis() -> datetime:
    """Now, truncated to whole milliseconds (what timestamp-millis keeps)."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def new_event(
    type: str,
    payload_fields: Mapping[str, Any],
    producer: str,
    causation: Event | str | None = None,
    campaign_id: str | None = None,
    key: str | None = None,
    *,
    event_id: str | None = None,
    occurred_at: datetime | None = None,
    topic: str | None = None,
    registry: SchemaRegistry | None = None,
) -> Event:
    """Build an event of schema ``type`` with a fresh envelope.

    ``causation`` is the event (or its id) that caused this one; the campaign id is
    inherited from a causing event unless given. ``key`` defaults to the value of the
    schema's key field (``materialabs.key``); ``topic`` to the schema's topic.
    """
    schema = (registry or default_registry()).schema(type)
    causation_id = causation.event_id if isinstance(causation, Event) else causation
    if campaign_id is None and isinstance(causation, Event):
        campaign_id = causation.campaign_id
    payload: dict[str, Any] = {
        "event_id": event_id or str(uuid.uuid4()),
        "occurred_at": occurred_at or utc_now_millis(),
        "producer": producer,
        "causation_id": causation_id,
        "campaign_id": campaign_id,
    }
    clash = set(payload_fields) & set(ENVELOPE_NAMES)
    if clash:
        raise ValueError(
            f"{type}: envelope fields {sorted(clash)} are set by new_event, not the payload"
        )
    payload.update(payload_fields)
    for spec in schema.expanded["fields"]:
        # Fill defaults now so the sender's payload equals what every reader decodes.
        if spec["name"] not in payload and "default" in spec:
            payload[spec["name"]] = copy.deepcopy(spec["default"])
    if key is None and schema.key_field and payload.get(schema.key_field) is not None:
        key = str(payload[schema.key_field])
    return Event(type=schema.name, payload=payload, key=key, topic=topic or schema.topic)


def derived_event_id(service: str, cause_event_id: str, index: int) -> str:
    """Id of a service's ``index``-th output for an input: the same on every redelivery.

    Reprocessing a redelivered input then re-emits the *same* event ids, which downstream
    consumers drop as duplicates, so at-least-once delivery has exactly-once effects.
    """
    return str(uuid.uuid5(_OUTPUT_ID_NAMESPACE, f"{service}/{cause_event_id}/{index}"))
