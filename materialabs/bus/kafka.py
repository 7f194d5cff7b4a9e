"""The Kafka adapter (confluent-kafka, i.e. librdkafka): the same port, served by a real broker.

Producers wait for all in-sync replicas (``acks=all``) and are idempotent, so a retried
send is not duplicated; ``flush`` returns only once every queued record is acknowledged,
and raises if one was not. Keyed records go where Kafka's Java client would put them
(``murmur2``), as the embedded bus does. Consumers never auto-commit: the runtime commits
only after a batch's outputs are durable. Tables are compacted topics
(``materialabs.table.<name>``) read back to their end when a service starts.

A bus made with ``transactional_id`` is a single-active service's leader's
(``materialabs.runtime.leadership``): it writes every batch (outputs, table writes, offsets) in
one Kafka transaction, so a deposed leader's late writes are fenced by the broker and never
read (consumers read committed records only); with ``group_instance_id`` its consumer is a
static member, which the next leader replaces at once instead of waiting out a session.

Why librdkafka rather than the pure-Python kafka-python: in `make up` runs, kafka-python
3.0.12 members sometimes stayed in a rebalance for good (the leader logged "Elected group
leader" and never finished the assignment) while spinning a core; and a C client costs a
fraction of the CPU per record, which the closed loop's throughput is made of.
"""

from __future__ import annotations

import contextlib
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
# The first request to a cluster only asks for its metadata, which a running broker answers
# in milliseconds: a wrong or dead address is reported after this, not after ADMIN_TIMEOUT_S.
CONNECT_TIMEOUT_S = 5.0
# A handler may take minutes (the retrainer trains a model between two polls); past this,
# the group would give the member's partitions to another member.
MAX_POLL_INTERVAL_MS = 15 * 60 * 1000
# Commit errors that only mean "this member no longer owns the partition": the new owner
# gets the records again, and the processed-ids table makes redoing them harmless.
_BY_KEY = -1  # librdkafka's "unassigned partition": the partitioner picks one
_LOST_OWNERSHIP = {KafkaError.REBALANCE_IN_PROGRESS, KafkaError.ILLEGAL_GENERATION,
                   KafkaError.UNKNOWN_MEMBER_ID, KafkaError._ASSIGNMENT_LOST,
                   KafkaError._NO_OFFSET}
# A transactional producer's fatal errors: a newer one with its id took over (what a
# produce call reports once the producer is fenced is only "_FATAL").
_FENCED = {KafkaError._FENCED, KafkaError.PRODUCER_FENCED, KafkaError.FENCED_INSTANCE_ID,
           KafkaError.INVALID_PRODUCER_EPOCH, KafkaError._FATAL}


# librdkafka's own messages (e.g. "Coordinator load in progress: retrying" from a broker
# that has just started) go through Python logging, not straight to stderr: a service
# (`materialabs serve` configures logging) keeps them in its log; a command that configured
# none prints nothing of them (the NullHandler keeps logging's last-resort handler from
# writing a line per reconnect attempt to stderr) and reports the outcome itself, in one line.
_librdkafka_log = logging.getLogger("materialabs.bus.librdkafka")
_librdkafka_log.addHandler(logging.NullHandler())


class Fenced(BusError):
    """A newer leader took this member's transactional id: nothing more it writes counts."""


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
        # librdkafka's default, stated because fencing relies on it: records of aborted
        # transactions (a deposed leader's batch) are never handed to the application.
        "isolation.level": "read_committed",
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
                 replication_factor: int = 1, *, transactional_id: str | None = None,
                 group_instance_id: str | None = None) -> None:
        self.bootstrap = bootstrap
        self.default_partitions = default_partitions
        self.replication_factor = replication_factor
        self.transactional_id = transactional_id
        self.group_instance_id = group_instance_id
        self._admin: AdminClient | None = None
        self._known: dict[str, int] = {}
        self._tables: dict[str, MemoryTable] = {}
        self._producer: _KafkaProducer | None = None
        self._reached = False

    def admin(self) -> AdminClient:
        if self._admin is None:
            self._admin = AdminClient({"bootstrap.servers": self.bootstrap,
                                       "client.id": "materialabs-admin",
                                       "logger": _librdkafka_log})
        return self._admin

    def _topic_partitions(self, topic: str | None = None) -> dict[str, int]:
        """Partitions per topic (only ``topic`` when given) as the cluster reports them."""
        timeout_s = ADMIN_TIMEOUT_S if self._reached else CONNECT_TIMEOUT_S
        try:
            metadata = self.admin().list_topics(topic=topic, timeout=timeout_s)
        except KafkaException as error:
            reason = error.args[0].str() if error.args else str(error)
            raise BusError(f"Kafka at {self.bootstrap} did not answer within {timeout_s:.0f} s "
                           f"({reason}); is the broker running (`make up`) and is that "
                           "its address?") from None
        self._reached = True
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
            self._producer = _KafkaProducer(self.bootstrap, self.transactional_id)
        return self._producer

    def consumer(self, group: str, topics: Sequence[str],
                 from_beginning: bool = False) -> _KafkaConsumer:
        """A member of ``group``; ``from_beginning`` ignores the group's committed offsets
        the first time partitions are assigned (a subscriber replaying a topic).

        On a transactional bus the member commits its offsets inside the producer's
        transaction."""
        self.create_topics(topics)
        transactions = self.producer() if self.transactional_id else None
        return _KafkaConsumer(self.bootstrap, group, list(topics), from_beginning,
                              group_instance_id=self.group_instance_id,
                              transactions=transactions)

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
            if not self.transactional_id:
                # (A leader's unflushed writes belong to a batch that was not committed:
                # its transaction is aborted below and the next leader redoes the batch.)
                table.flush()
            table.close()
        if self._producer is not None:
            self._producer.close()
        self._admin = None  # AdminClient has no close; its threads end with the object


class _KafkaProducer:
    """Kafka's producer; with ``transactional_id``, every record goes in a transaction
    that begins with the first send and ends with ``commit_offsets``."""

    def __init__(self, bootstrap: str, transactional_id: str | None = None) -> None:
        self.bootstrap = bootstrap
        self.transactional_id = transactional_id
        config = producer_config(bootstrap)
        if transactional_id:
            # A batch may take as long as a poll interval (the retrainer trains in one).
            config.update({"transactional.id": transactional_id,
                           "transaction.timeout.ms": MAX_POLL_INTERVAL_MS})
        self._producer = Producer(config)
        self._failures: list[tuple[str, int]] = []  # (what, error code) per lost record
        self._closed = False
        self._in_transaction = False
        if transactional_id:
            # Fences every older producer with this id: its open transaction is aborted
            # here, and whatever it sends from now on is refused by the broker.
            self._transactional(self._producer.init_transactions, ADMIN_TIMEOUT_S)

    def _delivered(self, error: KafkaError | None, message: Any) -> None:
        if error is not None:
            self._failures.append((f"{message.topic()}: {error.str()}", error.code()))

    def send(self, topic: str, value: bytes | None, key: bytes | None = None,
             headers: Sequence[tuple[str, bytes]] = (), partition: int | None = None) -> None:
        """Queue a record (``value`` None: a tombstone, for tables)."""
        self._begin()
        while True:
            try:
                self._producer.produce(topic, value=value, key=key, headers=list(headers),
                                       on_delivery=self._delivered,
                                       partition=_BY_KEY if partition is None else partition)
                break
            except BufferError:  # the local queue is full: let deliveries drain it
                self._producer.poll(0.05)
            except KafkaException as exception:  # e.g. a fenced transactional producer
                raise self._error(exception.args[0], f"send to {topic}") from exception
        self._producer.poll(0)  # serve delivery callbacks as we go

    def flush(self, timeout_s: float = 60.0) -> None:
        try:
            left = self._producer.flush(timeout_s)
        except (KafkaException, SystemError) as exception:
            # A fenced producer's flush raises its fatal error; confluent-kafka 2.16 then
            # runs the purged records' callbacks with it set, and what surfaces is a
            # SystemError caused by the KafkaException -- or, racing the purge, a
            # SystemError with no cause at all.
            cause = exception if isinstance(exception, KafkaException) else exception.__cause__
            if isinstance(cause, KafkaException):
                raise self._error(cause.args[0], "flush") from exception
            raise self._failed_flush(exception) from exception
        if left:
            raise BusError(f"{left} records not acknowledged by Kafka at {self.bootstrap} "
                           f"within {timeout_s:.0f} s")
        if self._failures:
            failures, self._failures = self._failures, []
            fenced = self.transactional_id and any(code in _FENCED for _, code in failures)
            error = Fenced if fenced else BusError
            raise error(f"{len(failures)} records were not written to Kafka at "
                        f"{self.bootstrap}; first: {failures[0][0]}")

    def _failed_flush(self, exception: BaseException) -> BusError:
        """What a flush that failed without saying why means: a record callback may have
        named the cause; a transactional producer learns whether it was fenced by aborting
        the batch it can no longer commit (an abort on a fenced producer raises its fatal
        error)."""
        failures, self._failures = self._failures, []
        if self.transactional_id and any(code in _FENCED for _, code in failures):
            return Fenced(f"flush on Kafka at {self.bootstrap}: fenced ({failures[0][0]})")
        if self.transactional_id and self._in_transaction:
            self._in_transaction = False
            try:
                self._producer.abort_transaction(ADMIN_TIMEOUT_S)
            except KafkaException as abort_failure:
                return self._error(abort_failure.args[0], "flush")
        first = f"; first failed record: {failures[0][0]}" if failures else ""
        return BusError(f"flush on Kafka at {self.bootstrap} failed ({exception}){first}")

    def _begin(self) -> None:
        if self.transactional_id and not self._in_transaction:
            self._transactional(self._producer.begin_transaction)
            self._in_transaction = True

    def commit_offsets(self, offsets: Sequence[KafkaTopicPartition], group_metadata: Any
                       ) -> None:
        """Commit the open transaction with the group's offsets in it: the batch's outputs,
        table writes and offsets become visible together, or (fenced) never."""
        self._begin()
        self._transactional(self._producer.send_offsets_to_transaction, list(offsets),
                            group_metadata, ADMIN_TIMEOUT_S)
        self._transactional(self._producer.commit_transaction, ADMIN_TIMEOUT_S)
        self._in_transaction = False

    def _transactional(self, call: Any, *args: Any) -> None:
        try:
            call(*args)
        except KafkaException as exception:
            error = exception.args[0]
            if self._in_transaction and error.txn_requires_abort():
                # Nothing of the batch is committed; whoever leads next redoes it from the
                # committed offsets.
                self._in_transaction = False
                with contextlib.suppress(KafkaException):
                    self._producer.abort_transaction(ADMIN_TIMEOUT_S)
            raise self._error(error, f"transaction {self.transactional_id!r}") from exception

    def _error(self, error: KafkaError, what: str) -> BusError:
        fenced = self.transactional_id and (error.fatal() or error.code() in _FENCED)
        return (Fenced if fenced else BusError)(f"{what} on Kafka: {error.str()}")

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            if self._in_transaction:
                # An unfinished batch: nothing of it is committed, the next leader redoes it.
                self._in_transaction = False
                try:
                    self._producer.abort_transaction(ADMIN_TIMEOUT_S)
                except KafkaException as error:  # fenced already: the broker aborted it
                    log.info("transaction %s: abort on close: %s", self.transactional_id,
                             error.args[0].str())
                return
            self.flush()


class _KafkaConsumer:
    def __init__(self, bootstrap: str, group: str, topics: list[str],
                 from_beginning: bool = False, *, group_instance_id: str | None = None,
                 transactions: _KafkaProducer | None = None) -> None:
        self.group = group
        self._rebalanced = False
        self._rewind = from_beginning
        self._transactions = transactions
        self._changed_in_poll = False
        config = consumer_config(bootstrap, group)
        if group_instance_id:
            config["group.instance.id"] = group_instance_id
        self._consumer = Consumer(config)
        self._consumer.subscribe(topics, on_assign=self._assigned, on_revoke=self._changed,
                                 on_lost=self._changed)

    def _changed(self, consumer: Any, partitions: Any) -> None:
        self._rebalanced = self._changed_in_poll = True

    def _assigned(self, consumer: Any, partitions: list[KafkaTopicPartition]) -> None:
        self._rebalanced = self._changed_in_poll = True
        if self._rewind:
            self._rewind = False
            for partition in partitions:
                partition.offset = OFFSET_BEGINNING
            consumer.assign(partitions)

    def poll(self, timeout_s: float = 1.0, max_records: int = 500) -> list[Record]:
        records: list[Record] = []
        self._changed_in_poll = False
        messages = _take(self._consumer, max_records, timeout_s)
        if self._changed_in_poll:
            # Records fetched before a revocation served in this poll belong to partitions
            # another member now owns: it gets them from the committed offsets.
            owned = {(tp.topic, tp.partition) for tp in self._consumer.assignment()}
            messages = [m for m in messages if (m.topic(), m.partition()) in owned]
        for m in messages:
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
        positions = [KafkaTopicPartition(t, p, o) for (t, p), o in offsets.items()]
        if self._transactions is not None:
            # The group coordinator checks this member's generation, so a leader that lost
            # the group cannot commit either (KIP-447); a failure raises (Fenced).
            self._transactions.commit_offsets(positions,
                                              self._consumer.consumer_group_metadata())
            return
        try:
            self._consumer.commit(offsets=positions, asynchronous=False)
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
