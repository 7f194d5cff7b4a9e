"""Audit a ledger from its ``ledger.entries`` topic instead of an export.

The ledger service publishes one LedgerEntry event per entry (checkpoints included)
whose ``record_b64`` holds the entry's record: the very bytes an export frames. The
topic has several partitions (keyed by seq) and at-least-once delivery, so events come
out of order and some twice. ``verify_topic_entries`` orders them by seq, keeps one
copy of identical duplicates, treats two different records for one seq as tampering,
and runs the same audit as ``verify_file`` (without a closing head: entries after the
last checkpoint are checked by their own ledger signatures).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ledger.checkpoints import SignedTreeHead
from ledger.log import LogError
from ledger.verify import TrustedHead, VerifyReport, verify_export

DEFAULT_TOPIC = "ledger.entries"


@dataclass(frozen=True)
class TopicEntry:
    """One LedgerEntry event: its seq, its record (None if the event has none), where it was."""

    seq: int
    record: bytes | None
    where: str


def entry_from_event(payload: Mapping[str, Any], where: str) -> TopicEntry:
    """The seq and record of a decoded LedgerEntry event's payload."""
    text = payload.get("record_b64")
    record = None
    if text is not None:
        try:
            record = base64.b64decode(str(text), validate=True)
        except (ValueError, binascii.Error):
            raise LogError(f"{where}: field record_b64 is not valid base64") from None
    return TopicEntry(int(payload["seq"]), record, where)


def _first_problem(by_seq: dict[int, TopicEntry], entries: Iterable[TopicEntry]) -> (
    tuple[int, str] | None
):
    """Fill ``by_seq``; return the lowest (seq, reason) that makes the topic unusable."""
    problems: list[tuple[int, str]] = []
    for entry in entries:
        if entry.record is None:
            problems.append(
                (entry.seq, f"event {entry.where} carries no record (record_b64 is null)")
            )
            continue
        known = by_seq.setdefault(entry.seq, entry)
        if known.record != entry.record:
            problems.append(
                (
                    entry.seq,
                    f"two different records for entry {entry.seq} "
                    f"({known.where} and {entry.where})",
                )
            )
    return min(problems) if problems else None


def verify_topic_entries(
    entries: Iterable[TopicEntry],
    ledger_public_key: bytes,
    *,
    trusted_head: SignedTreeHead | None = None,
    workers: int | None = None,
    trusted_heads: Sequence[SignedTreeHead | TrustedHead] = (),
) -> VerifyReport:
    """Audit the ledger the events describe; report the first bad entry and why.

    ``trusted_heads`` (and ``trusted_head``): tree heads seen before, which the topic must
    extend (without one, a topic cut at the end cannot be told from a shorter ledger)."""
    by_seq: dict[int, TopicEntry] = {}
    problem = _first_problem(by_seq, entries)
    if not by_seq and problem is None:
        return VerifyReport(ok=False, entries=0, first_bad_seq=0, reason="no ledger entries")
    stop = problem[0] if problem else None
    # Sorted by the events' seq: a missing or doubled entry shows up as a record whose own
    # seq differs from its position, which the audit names.
    records = [by_seq[seq].record for seq in sorted(by_seq) if stop is None or seq < stop]
    report = verify_export(
        (r for r in records if r is not None),
        ledger_public_key,
        trusted_head=trusted_head,
        require_closing_head=False,
        workers=workers,
        trusted_heads=trusted_heads,
    )
    if problem is not None and (report.ok or (report.first_bad_seq or 0) > problem[0]):
        report = dataclasses.replace(
            report, ok=False, first_bad_seq=problem[0], reason=problem[1], notes=[]
        )
    return report


# How long the broker may take to answer the first metadata request before the reader
# calls it unreachable (kafka-python, the previous client, gave up after about 2 s).
METADATA_TIMEOUT_S = 10.0


def read_topic(bootstrap: str, topic: str = DEFAULT_TOPIC, timeout_s: float = 60.0) -> (
    Iterator[TopicEntry]
):
    """Every LedgerEntry event on ``topic``, from the beginning to the end it has now."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException
    from confluent_kafka import TopicPartition as KafkaTopicPartition

    from materialabs.events.codec import DecodeError, decode

    client_errors: list[Any] = []
    # librdkafka needs a group id, but an assigned (never subscribed) reader that never
    # commits does not join the group: audits leave no trace on the cluster. Its own
    # logging is off (log_level 0) because every failure ends in a LogError that says it;
    # the last client error it reported goes into that message.
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": "materialabs-ledger-audit",
        "client.id": "materialabs-ledger-audit",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "isolation.level": "read_uncommitted",  # the high watermark is the end we read to
        "max.partition.fetch.bytes": 16 << 20,
        "fetch.wait.max.ms": 100,
        "log_level": 0,
        "error_cb": client_errors.append,
    })
    deadline = time.monotonic() + timeout_s
    try:
        metadata = _topic_metadata(consumer, bootstrap, topic,
                                   min(METADATA_TIMEOUT_S, timeout_s), client_errors)
        found = metadata.topics.get(topic)
        if found is None or found.error is not None or not found.partitions:
            raise LogError(f"topic {topic!r} does not exist on {bootstrap}")
        end: dict[int, int] = {}
        for number in sorted(found.partitions):
            try:
                _, end[number] = consumer.get_watermark_offsets(
                    KafkaTopicPartition(topic, number),
                    timeout=max(1.0, deadline - time.monotonic()))
            except KafkaException as error:
                raise LogError(f"cannot read the end offset of {topic}[{number}] on "
                               f"{bootstrap}: {error.args[0].str()}") from None
        consumer.assign([KafkaTopicPartition(topic, n, OFFSET_BEGINNING) for n in end])
        remaining = {n for n, offset in end.items() if offset > 0}
        while remaining:
            if time.monotonic() > deadline:
                last = f"; last client error: {client_errors[-1].str()}" if client_errors else ""
                raise LogError(
                    f"timed out after {timeout_s:.0f} s reading {topic} on {bootstrap} "
                    f"({len(remaining)} partitions not read to their end{last})"
                )
            for message in consumer.consume(num_messages=10_000, timeout=0.5):
                error = message.error()
                if error is not None:
                    if error.fatal() or error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
                        raise LogError(f"reading {topic} on {bootstrap}: {error.str()}")
                    client_errors.append(error)
                    continue
                number, offset = message.partition(), message.offset()
                if number not in remaining or offset >= end[number]:
                    continue  # written after the reader took the topic's end
                if offset + 1 >= end[number]:
                    remaining.discard(number)
                where = f"{topic}[{number}]@{offset}"
                try:
                    event = decode(message.value() or b"", topic=topic)
                except DecodeError as error:
                    raise LogError(f"{where}: not a readable event: {error}") from None
                if event.type != "LedgerEntry":
                    raise LogError(f"{where}: a {event.type} event, expected LedgerEntry")
                yield entry_from_event(event.payload, where)
            # Offsets can skip at the end (compaction, transaction markers): the fetch
            # position says how far a partition really is.
            if remaining:
                positions = consumer.position([KafkaTopicPartition(topic, n) for n in remaining])
                remaining -= {p.partition for p in positions if p.offset >= end[p.partition]}
    finally:
        consumer.close()


def _topic_metadata(consumer: Any, bootstrap: str, topic: str, timeout_s: float,
                    client_errors: list[Any]) -> Any:
    """The cluster's metadata for ``topic``; LogError once no broker can be reached.

    Asked in short rounds: between them, the client's error callback says whether every
    broker refused the connection, so a stopped broker is named in about a second rather
    than at the end of the timeout.
    """
    from confluent_kafka import KafkaError, KafkaException

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return consumer.list_topics(topic=topic,
                                        timeout=max(0.1, min(1.0, deadline - time.monotonic())))
        except KafkaException as error:
            failure = error.args[0]
        consumer.poll(0)  # serves the error callback
        down = any(e.code() == KafkaError._ALL_BROKERS_DOWN for e in client_errors)
        if down or time.monotonic() >= deadline:
            reason = client_errors[-1].str() if client_errors else failure.str()
            raise LogError(f"Kafka at {bootstrap} unreachable: {reason}")
