"""The bus port: what the runtime needs from a log of topics, whichever adapter serves it.

Two adapters implement it with the same semantics (see DESIGN.md, Contracts):
``embedded`` (an in-process log, optionally file-backed) and ``kafka`` (a real broker).

* A topic has N partitions; a keyed record goes to ``toPositive(murmur2(key)) % N``,
  Kafka's default partitioner, so one key's records stay in order on one partition.
* A consumer belongs to a group; the group's committed offset per partition is where a
  new or restarted member resumes, so records polled but not committed are redelivered.
* A table is a durable map (bytes values) that a service keeps state in; its writes
  become durable on ``flush()`` and a restarted service reads it back.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

Headers = tuple[tuple[str, bytes], ...]
TopicPartition = tuple[str, int]


@dataclass(frozen=True)
class Record:
    """One message as stored in a partition and handed to a consumer."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: Headers = ()
    timestamp_ms: int = 0

    def header(self, name: str) -> bytes | None:
        return next((v for k, v in self.headers if k == name), None)


class BusError(Exception):
    """The bus cannot do what was asked (unknown topic, broker unreachable, lock held, ...)."""


@runtime_checkable
class Producer(Protocol):
    def send(self, topic: str, value: bytes, key: bytes | None = None,
             headers: Sequence[tuple[str, bytes]] = ()) -> None:
        """Queue a record; it is durable once ``flush`` returns."""

    def flush(self) -> None: ...

    def close(self) -> None: ...


@runtime_checkable
class Consumer(Protocol):
    def poll(self, timeout_s: float = 1.0, max_records: int = 500) -> list[Record]:
        """Records after this member's position on its assigned partitions."""

    def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        """Commit, per partition, the offset of the next record to read."""

    def take_rebalanced(self) -> bool:
        """True once after the member's assignment changed (tables may need a catch-up)."""

    def ready(self) -> bool:
        """False while the member waits for partitions (a group still rebalancing)."""

    def close(self) -> None:
        """Leave the group without committing anything more."""


@runtime_checkable
class Table(Protocol):
    def get(self, key: str) -> bytes | None: ...

    def __contains__(self, key: object) -> bool: ...

    def put(self, key: str, value: bytes | None) -> None:
        """Set (or delete, with None) in memory at once; durable after ``flush``."""

    def items(self) -> Iterator[tuple[str, bytes]]: ...

    def flush(self) -> None: ...

    def catch_up(self) -> None:
        """Read writes other members made to the changelog since this one last looked."""


@runtime_checkable
class Bus(Protocol):
    def create_topics(self, names: Iterable[str], partitions: int | None = None) -> None:
        """Create missing topics (existing ones keep their partition count)."""

    def partitions(self, topic: str) -> int: ...

    def producer(self) -> Producer: ...

    def consumer(self, group: str, topics: Sequence[str]) -> Consumer: ...

    def table(self, name: str) -> Table: ...

    def close(self) -> None: ...


def next_offsets(records: Iterable[Record]) -> dict[TopicPartition, int]:
    """Offsets to commit after handling ``records``: one past the last, per partition."""
    offsets: dict[TopicPartition, int] = {}
    for record in records:
        tp = (record.topic, record.partition)
        offsets[tp] = max(offsets.get(tp, 0), record.offset + 1)
    return offsets


def dlq_topic(topic: str) -> str:
    return f"{topic}.dlq"
