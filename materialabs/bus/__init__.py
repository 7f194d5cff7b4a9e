"""Message bus: the port, an embedded log and a Kafka adapter with identical semantics."""

from __future__ import annotations

from pathlib import Path

from materialabs.bus.port import Bus, BusError, Consumer, Producer, Record, Table, dlq_topic

KAFKA_ENV = "MATERIALABS_KAFKA"


def open_bus(bootstrap: str | None = None, directory: Path | str | None = None) -> Bus:
    """Kafka when ``bootstrap`` (or $MATERIALABS_KAFKA) is set, else the embedded log.

    A malformed ``bootstrap`` is a BusError, a malformed $MATERIALABS_KAFKA a
    ``config.ConfigError``; an unreachable broker is a BusError at the first request.
    """
    from materialabs import config

    if bootstrap:
        try:
            bootstrap = config.parse_bootstrap(bootstrap)
        except ValueError as error:
            raise BusError(f"Kafka bootstrap {bootstrap!r}: expected host:port[,host:port...] "
                           f"({error})") from None
    else:
        bootstrap = config.kafka_bootstrap()
    if bootstrap:
        from materialabs.bus.kafka import KafkaBus

        return KafkaBus(bootstrap)
    from materialabs.bus.embedded import EmbeddedBus

    return EmbeddedBus(directory)


__all__ = ["Bus", "BusError", "Consumer", "Producer", "Record", "Table", "dlq_topic", "open_bus",
           "KAFKA_ENV"]
