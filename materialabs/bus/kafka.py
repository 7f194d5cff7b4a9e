"""The Kafka adapter (confluent-kafka, i.e. librdkafka): the same port, served by a real broker.

Producers wait for all in-sync replicas (``acks=all``) and are idempotent, so a retried
send is not duplicated; ``flush`` returns only once every queued record is acknowledged,
and raises if one was not. Keyed records go where Kafka's Java client would put them
(``murmur2``), as the embedded bus does. Consumers never auto-commit: the runtime commits
only after a batch's outputs are durable. Tables are compacted topics
(``materialabs.table.<name>``) read back to their end when a service starts.

Why librdkafka rather than the pure-Python kafka-python: in `make up` runs, kafka-python
3.0.12 members sometimes stayed in a rebalance for good (the leader logged "Elected group
leader" and never finished the assignment) while spinning a core; and a C client costs a
fraction of the CPU per record, which the closed loop's throughput is made of.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
)
from confluent_kafka import TopicPartition as KafkaTopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from materialabs.bus.port import BusError, Record, TopicPartition
from materialabs.bus.table import Change, MemoryTable

log = logging.getLogger(__name__)

DEFAULT_PARTITIONS = 4
TABLE_PREFIX = "materialabs.table."
ADMIN_TIMEOUT_S = 30.0
# A handler may take minutes (the retrainer trains a model between two polls); past this,
# the group would give the member's partitions to another member.
MAX_POLL_INTERVAL_MS = 15 * 60 * 1000
# Commit errors that only mean "this member no longer owns the partition": the new owner
# gets the records again, and the processed-ids table makes redoing them harmless.
_BY_KEY = -1  # librdkafka's "unassigned partition": the partitioner picks one
_LOST_OWNERSHIP = {KafkaError.REBALANCE_IN_PROGRESS, KafkaError.ILLEGAL_GENERATION,
                   KafkaError.UNKNOWN_MEMBER_ID, KafkaError._ASSIGNMENT_LOST,
                   KafkaError._NO_OFFSET}


# librdkafka's own messages (e.g. "Coordinator load in progress: retrying" from a broker
# that has just started) go through Python logging, not straight to stderr.
_librdkafka_log = logging.getLogger("materialabs.bus.librdkafka")


def producer_config(bootstrap: str) -> dict[str, Any]:
    return {
        "bootstrap.servers": bootstrap,
        "acks": "all",
        "enable.idempotence": True,
        "linger.ms": 5,
        "batch.size": 1024 * 1024,
        "message.max.bytes": 4 * 1024 * 1024,
        "partitioner": "murmur2_random",  # the Java client's (and the embedded bus's) routing
        "client.id": "materialabs",
        "logger": _librdkafka_log,
    }


def consumer_config(bootstrap: str, group: str) -> dict[str, Any]:
    return {
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "max.partition.fetch.bytes": 4 * 1024 * 1024,
        "fetch.wait.max.ms": 50,
        "session.timeout.ms": 10_000,
        "heartbeat.interval.ms": 1_000,
        "max.poll.interval.ms": MAX_POLL_INTERVAL_MS,
        "partition.assignment.strategy": "range",
        "client.id": f"materialabs-{group}",
        "logger": _librdkafka_log,
    }


class KafkaBus:
    """Port adapter over a Kafka cluster reachable at ``bootstrap`` ("host:port,...")."""

    def __init__(self, bootstrap: str, default_partitions: int = DEFAULT_PARTITIONS,
                 replication_factor: int = 1) -> None:
        self.bootstrap = bootstrap
        self.default_partitions = default_partitions
        self.replication_factor = replication_factor
        self._admin: AdminClient | None = None
        self._known: dict[str, int] = {}
        self._tables: dict[str, MemoryTable] = {}
        self._producer: _KafkaProducer | None = None

    def admin(self) -> AdminClient:
        if self._admin is None:
            self._admin = AdminClient({"bootstrap.servers": self.bootstrap,
                                       "client.id": "materialabs-admin"})
        return self._admin

    def _topic_partitions(self, topic: str | None = None) -> dict[str, int]:
        """Partitions per topic (only ``topic`` when given) as the cluster reports them."""
        try:
            metadata = self.admin().list_topics(topic=topic, timeout=ADMIN_TIMEOUT_S)
        except KafkaException as error:
            raise BusError(f"Kafka at {self.bootstrap} unreachable: {error}") from error
        return {name: len(meta.partitions) for name, meta in metadata.topics.items()
                if meta.error is None and meta.partitions}

    def create_topics(self, names: Iterable[str], partitions: int | None = None,
                      config: Mapping[str, str] | None = None) -> None:
        missing = [n for n in dict.fromkeys(names) if n not in self._known]
        if not missing:
            return
        existing = self._topic_partitions()
        new = [NewTopic(n, num_partitions=partitions or self.default_partitions,
                        replication_factor=self.replication_factor, config=dict(config or {}))
               for n in missing if n not in existing]
        if new:
            for name, future in self.admin().create_topics(new).items():
                try:
                    future.result(ADMIN_TIMEOUT_S)
                except KafkaException as error:
                    # Another process may win the race to create a topic: same outcome.
                    if error.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                        raise BusError(f"cannot create topic {name!r} on "
                                       f"{self.bootstrap}: {error}") from error
        for name in missing:
            self._known[name] = existing.get(name) or self._describe_partitions(name)

    def _describe_partitions(self, topic: str) -> int:
        deadline = time.monotonic() + ADMIN_TIMEOUT_S
        while time.monotonic() < deadline:
            found = self._topic_partitions(topic).get(topic)
            if found:
                return found
            time.sleep(0.1)
        raise BusError(f"topic {topic!r} has no partitions on {self.bootstrap}")

    def partitions(self, topic: str) -> int:
        if topic not in self._known:
            self._known[topic] = self._describe_partitions(topic)
        return self._known[topic]

    def producer(self) -> _KafkaProducer:
        if self._producer is None:
            self._producer = _KafkaProducer(self.bootstrap)
        return self._producer

    def consumer(self, group: str, topics: Sequence[str],
                 from_beginning: bool = False) -> _KafkaConsumer:
        """A member of ``group``; ``from_beginning`` ignores the group's committed offsets
        the first time partitions are assigned (a subscriber replaying a topic)."""
        self.create_topics(topics)
        return _KafkaConsumer(self.bootstrap, group, list(topics), from_beginning)

    def table(self, name: str) -> MemoryTable:
        if name not in self._tables:
            topic = TABLE_PREFIX + name
            self.create_topics([topic], partitions=1,
                               config={"cleanup.policy": "compact"})
            self._tables[name] = MemoryTable(_TopicChangelog(self.bootstrap, topic,
                                                             self.producer()))
        return self._tables[name]

    def close(self) -> None:
        for table in self._tables.values():
            table.flush()
            table.close()
        if self._producer is not None:
            self._producer.close()
        self._admin = None  # AdminClient has no close; its threads end with the object


class _KafkaProducer:
    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self._producer = Producer(producer_config(bootstrap))
        self._failures: list[str] = []
        self._closed = False

    def _delivered(self, error: KafkaError | None, message: Any) -> None:
        if error is not None:
            self._failures.append(f"{message.topic()}: {error.str()}")

    def send(self, topic: str, value: bytes | None, key: bytes | None = None,
             headers: Sequence[tuple[str, bytes]] = (), partition: int | None = None) -> None:
        """Queue a record (``value`` None: a tombstone, for tables)."""
        while True:
            try:
                self._producer.produce(topic, value=value, key=key, headers=list(headers),
                                       on_delivery=self._delivered,
                                       partition=_BY_KEY if partition is None else partition)
                break
            except BufferError:  # the local queue is full: let deliveries drain it
                self._producer.poll(0.05)
        self._producer.poll(0)  # serve delivery callbacks as we go

    def flush(self, timeout_s: float = 60.0) -> None:
        left = self._producer.flush(timeout_s)
        if left:
            raise BusError(f"{left} records not acknowledged by Kafka at {self.bootstrap} "
                           f"within {timeout_s:.0f} s")
        if self._failures:
            failures, self._failures = self._failures, []
            raise BusError(f"{len(failures)} records were not written to Kafka at "
                           f"{self.bootstrap}; first: {failures[0]}")

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.flush()


class _KafkaConsumer:
    def __init__(self, bootstrap: str, group: str, topics: list[str],
                 from_beginning: bool = False) -> None:
        self.group = group
        self._rebalanced = False
        self._rewind = from_beginning
        self._consumer = Consumer(consumer_config(bootstrap, group))
        self._consumer.subscribe(topics, on_assign=self._assigned, on_revoke=self._changed,
                                 on_lost=self._changed)

    def _changed(self, consumer: Any, partitions: Any) -> None:
        self._rebalanced = True

    def _assigned(self, consumer: Any, partitions: list[KafkaTopicPartition]) -> None:
        self._rebalanced = True
        if self._rewind:
            self._rewind = False
            for partition in partitions:
                partition.offset = OFFSET_BEGINNING
            consumer.assign(partitions)

    def poll(self, timeout_s: float = 1.0, max_records: int = 500) -> list[Record]:
        records: list[Record] = []
        for m in _take(self._consumer, max_records, timeout_s):
            error = m.error()
            if error is not None:
                if error.code() != KafkaError._PARTITION_EOF:
                    log.warning("group %s: %s", self.group, error.str())
                continue
            records.append(_record(m))
        return records

    def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        if not offsets:
            return
        try:
            self._consumer.commit(offsets=[KafkaTopicPartition(t, p, o)
                                           for (t, p), o in offsets.items()],
                                  asynchronous=False)
        except KafkaException as error:
            if error.args[0].code() not in _LOST_OWNERSHIP:
                raise BusError(f"group {self.group}: commit failed: {error}") from error
            log.warning("group %s: commit skipped, the partitions moved (%s); their new "
                        "owner redoes the batch", self.group, error.args[0].str())
            self._rebalanced = True

    def take_rebalanced(self) -> bool:
        changed, self._rebalanced = self._rebalanced, False
        return changed

    def ready(self) -> bool:
        return bool(self._consumer.assignment())

    def close(self) -> None:
        self._consumer.close()


def _take(consumer: Consumer, most: int, timeout_s: float) -> list[Any]:
    """Up to ``most`` messages: whatever has arrived, waiting up to ``timeout_s`` only for
    the first. (``Consumer.consume(n, timeout)`` waits the whole timeout unless n arrive,
    which would hold every record for a poll timeout at each service hop.)"""
    messages = consumer.consume(num_messages=most, timeout=0)
    if messages:
        return messages
    first = consumer.poll(timeout_s)
    if first is None:
        return []
    return [first, *consumer.consume(num_messages=most - 1, timeout=0)] if most > 1 else [first]


def _record(message: Any) -> Record:
    """The port's record of a (non-error) librdkafka message."""
    headers = tuple((name, value or b"") for name, value in (message.headers() or ()))
    return Record(message.topic(), message.partition(), message.offset(), message.key(),
                  message.value() or b"", headers, message.timestamp()[1])


class _TopicChangelog:
    """A table's changes in a compacted single-partition topic; read back to its end."""

    CATCH_UP_LIMIT_S = 120.0

    def __init__(self, bootstrap: str, topic: str, producer: _KafkaProducer) -> None:
        self.topic = topic
        self._producer = producer
        # A group id is required by librdkafka, but an assigned (not subscribed) reader
        # never joins the group and never commits.
        self._reader = Consumer({**consumer_config(bootstrap, "materialabs-table-reader"),
                                 "client.id": f"table-{topic}"})
        self._partition = KafkaTopicPartition(topic, 0)
        self._reader.assign([KafkaTopicPartition(topic, 0, OFFSET_BEGINNING)])
        self._position = 0  # next offset to read

    def read(self) -> tuple[bool, list[Change]]:
        """What other writers (or an earlier life of this service) added since the last read."""
        _, end = self._reader.get_watermark_offsets(self._partition, timeout=ADMIN_TIMEOUT_S)
        deadline = time.monotonic() + self.CATCH_UP_LIMIT_S
        changes: list[Change] = []
        while self._position < end:
            for m in _take(self._reader, 10_000, 0.2):
                if m.error() is None:
                    changes.append(((m.key() or b"").decode(), m.value()))
                    self._position = m.offset() + 1
            if self._position < end:
                # Compaction can leave a gap at the end: the fetch position says how far
                # the reader really is.
                at = self._reader.position([self._partition])[0].offset
                self._position = max(self._position, at)
            if time.monotonic() > deadline:
                raise BusError(f"table {self.topic}: read {self._position} of {end} "
                               f"records in {self.CATCH_UP_LIMIT_S:.0f} s")
        return False, changes

    def write(self, changes: Sequence[Change]) -> None:
        for key, value in changes:
            self._producer.send(self.topic, value, key=key.encode(), partition=0)
        self._producer.flush()

    def close(self) -> None:
        self._reader.close()
