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
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from ledger.checkpoints import SignedTreeHead
from ledger.log import LogError
from ledger.verify import VerifyReport, verify_export

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
) -> VerifyReport:
    """Audit the ledger the events describe; report the first bad entry and why."""
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
    )
    if problem is not None and (report.ok or (report.first_bad_seq or 0) > problem[0]):
        report = dataclasses.replace(
            report, ok=False, first_bad_seq=problem[0], reason=problem[1], notes=[]
        )
    return report


def read_topic(bootstrap: str, topic: str = DEFAULT_TOPIC, timeout_s: float = 60.0) -> (
    Iterator[TopicEntry]
):
    """Every LedgerEntry event on ``topic``, from the beginning to the end it has now."""
    from kafka import KafkaConsumer, TopicPartition
    from kafka.errors import KafkaError

    from materialabs.events.codec import DecodeError, decode

    try:
        consumer = KafkaConsumer(
            bootstrap_servers=bootstrap,
            group_id=None,
            enable_auto_commit=False,
            client_id="materialabs-ledger-audit",
            max_partition_fetch_bytes=16 << 20,
        )
    except KafkaError as error:
        raise LogError(f"Kafka at {bootstrap} unreachable: {error}") from None
    try:
        numbers = consumer.partitions_for_topic(topic)
        if not numbers:
            raise LogError(f"topic {topic!r} does not exist on {bootstrap}")
        partitions = [TopicPartition(topic, n) for n in sorted(numbers)]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        end = consumer.end_offsets(partitions)
        deadline = time.monotonic() + timeout_s
        remaining = {tp for tp in partitions if consumer.position(tp) < end[tp]}
        while remaining:
            if time.monotonic() > deadline:
                raise LogError(
                    f"timed out after {timeout_s:.0f} s reading {topic} on {bootstrap} "
                    f"({len(remaining)} partitions not read to their end)"
                )
            for tp, messages in consumer.poll(timeout_ms=500, max_records=10_000).items():
                for message in messages:
                    if message.offset >= end[tp]:
                        break
                    where = f"{topic}[{tp.partition}]@{message.offset}"
                    try:
                        event = decode(message.value or b"", topic=topic)
                    except DecodeError as error:
                        raise LogError(f"{where}: not a readable event: {error}") from None
                    if event.type != "LedgerEntry":
                        raise LogError(f"{where}: a {event.type} event, expected LedgerEntry")
                    yield entry_from_event(event.payload, where)
            remaining = {tp for tp in remaining if consumer.position(tp) < end[tp]}
    finally:
        consumer.close()
