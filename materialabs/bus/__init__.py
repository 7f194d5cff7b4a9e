"""Message bus: the port, an embedded log and a Kafka adapter with identical semantics."""

from __future__ import annotations

import os
from pathlib import Path

from materialabs.bus.port import Bus, BusError, Consumer, Producer, Record, Table, dlq_topic

KAFKA_ENV = "MATERIALABS_KAFKA"


def open_bus(bootstrap: str | None = None, directory: Path | str | None = None) -> Bus:
    """Kafka when ``bootstrap`` (or $MATERIALABS_KAFKA) is set, else the embedded log."""
    bootstrap = bootstrap or os.environ.get(KAFKA_ENV)
    if bootstrap:
        from materialabs.bus.kafka import KafkaBus

        return KafkaBus(bootstrap)
    from materialabs.bus.embedded import EmbeddedBus

    return EmbeddedBus(directory)


__all__ = ["Bus", "BusError", "Consumer", "Producer", "Record", "Table", "dlq_topic", "open_bus",
           "KAFKA_ENV"]
