"""The Kafka adapter (kafka-python): the same port, served by a real broker.

Producers wait for all in-sync replicas (``acks=all``) and are idempotent, so a retried
send is not duplicated. Consumers never auto-commit: the runtime commits only after a
batch's outputs are durable. Tables are compacted topics
(``materialabs.table.<name>``) read back to their end when a service starts.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic
from kafka.consumer.subscription_state import ConsumerRebalanceListener
from kafka.errors import KafkaError, TopicAlreadyExistsError
from kafka.structs import OffsetAndMetadata
from kafka.structs import TopicPartition as KafkaTopicPartition

from materialabs.bus.port import BusError, Record, TopicPartition

log = logging.getLogger(__name__)

DEFAULT_PARTITIONS = 4
# A consumer left without partitions this long asks its group to rebalance (see
# _KafkaConsumer._watch_assignment); a healthy join takes well under a second.
REJOIN_AFTER_S = 10.0
TABLE_PREFIX = "materialabs.table."


def producer_config(bootstrap: str) -> dict[str, Any]:
    return {
        "bootstrap_servers": bootstrap,
        "acks": "all",
        "enable_idempotence": True,
        "linger_ms": 5,
        "batch_size": 256 * 1024,
        "max_request_size": 4 * 1024 * 1024,
        "client_id": "materialabs",
    }


class KafkaBus:
    """Port adapter over a Kafka cluster reachable at ``bootstrap`` ("host:port,...")."""

    def __init__(self, bootstrap: str, default_partitions: int = DEFAULT_PARTITIONS,
                 replication_factor: int = 1) -> None:
        self.bootstrap = bootstrap
        self.default_partitions = default_partitions
        self.replication_factor = replication_factor
        self._admin: KafkaAdminClient | None = None
        self._known: dict[str, int] = {}
        self._tables: dict[str, _KafkaTable] = {}
        self._producer: _KafkaProducer | None = None

    def admin(self) -> KafkaAdminClient:
        if self._admin is None:
            try:
                self._admin = KafkaAdminClient(bootstrap_servers=self.bootstrap,
                                               client_id="materialabs-admin")
            except KafkaError as error:
                raise BusError(f"Kafka at {self.bootstrap} unreachable: {error}") from error
        return self._admin

    def create_topics(self, names: Iterable[str], partitions: int | None = None,
                      config: Mapping[str, str] | None = None) -> None:
        missing = [n for n in dict.fromkeys(names) if n not in self._known]
        if not missing:
            return
        existing = set(self.admin().list_topics())
        new = [NewTopic(name=n, num_partitions=partitions or self.default_partitions,
                        replication_factor=self.replication_factor,
                        topic_configs=dict(config or {}))
               for n in missing if n not in existing]
        if new:
            # Another process may win the race to create a topic: same outcome.
            with contextlib.suppress(TopicAlreadyExistsError):
                self.admin().create_topics(new)
        for name in missing:
            self._known[name] = self._describe_partitions(name)

    def _describe_partitions(self, topic: str) -> int:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            description = self.admin().describe_topics([topic])
            partitions = description[0].get("partitions") if description else None
            if partitions:
                return len(partitions)
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

    def consumer(self, group: str, topics: Sequence[str]) -> _KafkaConsumer:
        self.create_topics(topics)
        return _KafkaConsumer(self.bootstrap, group, list(topics))

    def table(self, name: str) -> _KafkaTable:
        if name not in self._tables:
            topic = TABLE_PREFIX + name
            self.create_topics([topic], partitions=1,
                               config={"cleanup.policy": "compact"})
            self._tables[name] = _KafkaTable(self.bootstrap, topic, self.producer())
        return self._tables[name]

    def close(self) -> None:
        for table in self._tables.values():
            table.flush()
            table.close()
        if self._producer is not None:
            self._producer.close()
        if self._admin is not None:
            self._admin.close()


class _KafkaProducer:
    def __init__(self, bootstrap: str) -> None:
        try:
            self._producer = KafkaProducer(**producer_config(bootstrap))
        except KafkaError as error:
            raise BusError(f"Kafka at {bootstrap} unreachable: {error}") from error
        self._closed = False

    def send(self, topic: str, value: bytes, key: bytes | None = None,
             headers: Sequence[tuple[str, bytes]] = ()) -> None:
        self._producer.send(topic, value=value, key=key, headers=list(headers))

    def flush(self) -> None:
        self._producer.flush()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._producer.flush()
            self._producer.close()


class _Listener(ConsumerRebalanceListener):
    def __init__(self, owner: _KafkaConsumer) -> None:
        self.owner = owner

    def on_partitions_revoked(self, revoked: Any) -> None:
        self.owner._rebalanced = True

    def on_partitions_assigned(self, assigned: Any) -> None:
        self.owner._rebalanced = True


class _KafkaConsumer:
    def __init__(self, bootstrap: str, group: str, topics: list[str],
                 rejoin_after_s: float = REJOIN_AFTER_S) -> None:
        self.group = group
        self._rebalanced = False
        try:
            self._consumer = KafkaConsumer(
                bootstrap_servers=bootstrap,
                group_id=group,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                max_partition_fetch_bytes=4 * 1024 * 1024,
                fetch_max_wait_ms=100,
                session_timeout_ms=10_000,
                heartbeat_interval_ms=1_000,
                client_id=f"materialabs-{group}",
            )
        except KafkaError as error:
            raise BusError(f"Kafka at {bootstrap} unreachable: {error}") from error
        self._await_metadata(topics)
        self._consumer.subscribe(topics, listener=_Listener(self))
        self._rejoin_after_s = self._patience_s = rejoin_after_s
        self._unassigned_since: float | None = time.monotonic()
        self.forced_rejoins = 0

    def _await_metadata(self, topics: list[str], limit_s: float = 30.0) -> None:
        # A group leader that joins before its metadata lists a just-created topic assigns
        # that topic to nobody ("No partition metadata for topic"); see _watch_assignment.
        deadline = time.monotonic() + limit_s
        for topic in topics:
            while not self._consumer.partitions_for_topic(topic):
                if time.monotonic() > deadline:
                    raise BusError(f"Kafka has no partitions for topic {topic!r} after "
                                   f"{limit_s:.0f} s (group {self.group})")
                time.sleep(0.1)

    def poll(self, timeout_s: float = 1.0, max_records: int = 500) -> list[Record]:
        batches = self._consumer.poll(timeout_ms=int(timeout_s * 1000), max_records=max_records)
        self._watch_assignment()
        records: list[Record] = []
        for tp, messages in batches.items():
            for m in messages:
                records.append(Record(tp.topic, tp.partition, m.offset, m.key, m.value or b"",
                                      tuple((k, v or b"") for k, v in (m.headers or [])),
                                      m.timestamp))
        return records

    def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        if offsets:
            self._consumer.commit({
                KafkaTopicPartition(t, p): OffsetAndMetadata(o, "", -1)
                for (t, p), o in offsets.items()
            })

    def take_rebalanced(self) -> bool:
        changed, self._rebalanced = self._rebalanced, False
        return changed

    def ready(self) -> bool:
        return bool(self._consumer.assignment())

    def _watch_assignment(self) -> None:
        """Ask the group for a new assignment when this member has had none for too long.

        kafka-python 3.0.12 can leave a member with an empty assignment for good: the
        leader assigned before its metadata knew the topics, and the metadata change that
        should trigger a rebalance was missed (seen in `make up` runs: the member logs
        "Elected group leader", then never gets partitions). A member legitimately without
        partitions (more members than partitions) just rejoins rarely: the wait doubles.
        """
        if self._consumer.assignment():
            self._unassigned_since = None
            self._patience_s = self._rejoin_after_s
            return
        now = time.monotonic()
        if self._unassigned_since is None:
            self._unassigned_since = now
        elif now - self._unassigned_since > self._patience_s:
            log.warning("group %s: no partitions assigned for %.0f s; rejoining the group",
                        self.group, now - self._unassigned_since)
            self._consumer._coordinator.request_rejoin()  # no public API for this
            self.forced_rejoins += 1
            self._unassigned_since = now
            self._patience_s = min(2 * self._patience_s, 64 * self._rejoin_after_s)

    def close(self) -> None:
        self._consumer.close(autocommit=False)


class _KafkaTable:
    """A dict whose writes go to a compacted topic; read back in full at start."""

    def __init__(self, bootstrap: str, topic: str, producer: _KafkaProducer) -> None:
        self.topic = topic
        self._producer = producer
        self._data: dict[str, bytes] = {}
        self._pending: list[tuple[str, bytes | None]] = []
        self._reader = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                                     enable_auto_commit=False, client_id=f"table-{topic}")
        self._partition = KafkaTopicPartition(topic, 0)
        self._reader.assign([self._partition])
        self._reader.seek_to_beginning(self._partition)
        self.catch_up()

    def catch_up(self) -> None:
        end = self._reader.end_offsets([self._partition])[self._partition]
        while self._reader.position(self._partition) < end:
            for messages in self._reader.poll(timeout_ms=500, max_records=10_000).values():
                for m in messages:
                    key = (m.key or b"").decode()
                    if m.value is None:
                        self._data.pop(key, None)
                    else:
                        self._data[key] = m.value

    def get(self, key: str) -> bytes | None:
        return self._data.get(key)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __len__(self) -> int:
        return len(self._data)

    def put(self, key: str, value: bytes | None) -> None:
        if value is None:
            self._data.pop(key, None)
        else:
            self._data[key] = value
        self._pending.append((key, value))

    def items(self) -> Iterator[tuple[str, bytes]]:
        return iter(list(self._data.items()))

    def flush(self) -> None:
        if not self._pending:
            return
        for key, value in self._pending:
            self._producer._producer.send(self.topic, key=key.encode(), value=value, partition=0)
        self._producer.flush()
        self._pending.clear()

    def close(self) -> None:
        self._reader.close()
