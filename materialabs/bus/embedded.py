"""The embedded bus: Kafka's semantics in one process, optionally backed by files.

Topics have partitions; keyed records go where Kafka's default partitioner would send
them; consumer groups share a topic's partitions and resume from committed offsets, so
whatever a member polled but did not commit is redelivered to the next member.

With ``directory`` set, every partition is an append-only file, committed offsets live
in ``offsets.json`` and tables in changelog files, so a killed and restarted run resumes
where it left off. One process at a time owns a directory (a file lock says so).
"""

from __future__ import annotations

import itertools
import json
import struct
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from materialabs.bus.murmur2 import partition_for
from materialabs.bus.port import BusError, Headers, Record, TopicPartition
from materialabs.bus.segment import SegmentFile, atomic_write, pack_fields, unpack_fields
from materialabs.bus.table import Change, MemoryTable

DEFAULT_PARTITIONS = 4


def _encode_record(record: Record) -> bytes:
    header_blob = json.dumps([[k, v.hex()] for k, v in record.headers]).encode()
    timestamp = struct.pack(">q", record.timestamp_ms)
    return pack_fields(timestamp, record.key, record.value, header_blob)


def _decode_record(topic: str, partition: int, offset: int, body: bytes) -> Record:
    timestamp, key, value, header_blob = unpack_fields(body)
    headers = tuple((k, bytes.fromhex(v)) for k, v in json.loads(header_blob or b"[]"))
    return Record(topic, partition, offset, key, value or b"", headers,
                  struct.unpack(">q", timestamp or b"\0" * 8)[0])


class _Partition:
    def __init__(self, topic: str, index: int, segment: SegmentFile | None) -> None:
        self.topic = topic
        self.index = index
        self.segment = segment
        self.records: list[Record] = []
        if segment is not None:
            for offset, body in enumerate(segment.read_all()):
                self.records.append(_decode_record(topic, index, offset, body))

    def append(self, key: bytes | None, value: bytes, headers: Headers) -> None:
        record = Record(self.topic, self.index, len(self.records), key, value, headers,
                        int(time.time() * 1000))
        self.records.append(record)
        if self.segment is not None:
            self.segment.append(_encode_record(record))


class EmbeddedBus:
    """In-process log with topics, keyed partitions, consumer groups and tables."""

    def __init__(self, directory: Path | str | None = None,
                 default_partitions: int = DEFAULT_PARTITIONS, lock_timeout_s: float = 10) -> None:
        self.directory = Path(directory) if directory else None
        self.lock_timeout_s = lock_timeout_s
        self.default_partitions = default_partitions
        self._lock = threading.RLock()
        self._topics: dict[str, list[_Partition]] = {}
        self._committed: dict[str, dict[TopicPartition, int]] = {}
        self._members: dict[str, list[_EmbeddedConsumer]] = {}
        self._tables: dict[str, MemoryTable] = {}
        self._round_robin = itertools.count()
        self._file_lock: FileLock | None = None
        if self.directory is not None:
            self._open_directory(self.directory)

    # -- files --------------------------------------------------------------------
    def _open_directory(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self._file_lock = FileLock(str(directory / ".lock"))
        try:
            self._file_lock.acquire(timeout=self.lock_timeout_s)
        except Timeout as error:
            raise BusError(f"{directory}: another process holds the embedded bus") from error
        meta_path = directory / "topics.json"
        topics = json.loads(meta_path.read_text()) if meta_path.exists() else {}
        for name, count in topics.items():
            self._topics[name] = [
                _Partition(name, i, SegmentFile(self._segment_path(name, i))) for i in range(count)
            ]
        offsets_path = directory / "offsets.json"
        if offsets_path.exists():
            for group, entries in json.loads(offsets_path.read_text()).items():
                self._committed[group] = {(t, int(p)): o for t, p, o in entries}

    def _segment_path(self, topic: str, partition: int) -> Path:
        assert self.directory is not None
        return self.directory / "topics" / topic / f"{partition}.log"

    def _save_topics(self) -> None:
        if self.directory is not None:
            meta = {name: len(parts) for name, parts in self._topics.items()}
            atomic_write(self.directory / "topics.json", json.dumps(meta, indent=1).encode())

    def _save_offsets(self) -> None:
        if self.directory is not None:
            data = {g: [[t, p, o] for (t, p), o in sorted(c.items())]
                    for g, c in self._committed.items()}
            atomic_write(self.directory / "offsets.json", json.dumps(data).encode())

    def _flush_segments(self) -> None:
        for partitions in self._topics.values():
            for partition in partitions:
                if partition.segment is not None:
                    partition.segment.flush()

    # -- topics -------------------------------------------------------------------
    def create_topics(self, names: Iterable[str], partitions: int | None = None) -> None:
        with self._lock:
            created = False
            for name in names:
                if name not in self._topics:
                    count = partitions or self.default_partitions
                    self._topics[name] = [
                        _Partition(name, i, SegmentFile(self._segment_path(name, i))
                                   if self.directory else None)
                        for i in range(count)
                    ]
                    created = True
            if created:
                self._save_topics()
                self._rebalance_all()

    def partitions(self, topic: str) -> int:
        with self._lock:
            if topic not in self._topics:
                raise BusError(f"unknown topic {topic!r}")
            return len(self._topics[topic])

    def topics(self) -> list[str]:
        with self._lock:
            return sorted(self._topics)

    def end_offsets(self, topic: str) -> list[int]:
        with self._lock:
            return [len(p.records) for p in self._topics.get(topic, [])]

    def read(self, topic: str) -> list[Record]:
        """Every record of a topic, partition by partition (for tools and tests)."""
        with self._lock:
            return [r for p in self._topics.get(topic, []) for r in p.records]

    def committed(self, group: str) -> dict[TopicPartition, int]:
        with self._lock:
            return dict(self._committed.get(group, {}))

    # -- produce ------------------------------------------------------------------
    def append(self, topic: str, value: bytes, key: bytes | None, headers: Headers) -> None:
        with self._lock:
            if topic not in self._topics:
                self.create_topics([topic])
            partitions = self._topics[topic]
            if key is None:
                index = next(self._round_robin) % len(partitions)
            else:
                index = partition_for(key, len(partitions))
            partitions[index].append(key, value, headers)

    def producer(self) -> _EmbeddedProducer:
        return _EmbeddedProducer(self)

    # -- consume ------------------------------------------------------------------
    def consumer(self, group: str, topics: Sequence[str]) -> _EmbeddedConsumer:
        with self._lock:
            self.create_topics(topics)
            member = _EmbeddedConsumer(self, group, list(topics))
            self._members.setdefault(group, []).append(member)
            self._rebalance(group)
            return member

    def _rebalance_all(self) -> None:
        for group in list(self._members):
            self._rebalance(group)

    def _rebalance(self, group: str) -> None:
        """Spread the group's partitions over its members, like Kafka's range/round-robin."""
        members = self._members.get(group, [])
        wanted = sorted({(t, p) for m in members for t in m.topics
                         for p in range(len(self._topics.get(t, [])))})
        for member in members:
            member._assignment = []
        for i, tp in enumerate(wanted):
            candidates = [m for m in members if tp[0] in m.topics]
            if candidates:
                candidates[i % len(candidates)]._assignment.append(tp)
        committed = self._committed.get(group, {})
        for member in members:
            kept = member._positions
            # A partition a member keeps goes on from its position; a new one starts
            # at the group's committed offset (so uncommitted records are redelivered).
            member._positions = {tp: kept.get(tp, committed.get(tp, 0))
                                 for tp in member._assignment}
            if set(kept) != set(member._positions):
                member._rebalanced = True

    def _leave(self, member: _EmbeddedConsumer) -> None:
        with self._lock:
            members = self._members.get(member.group, [])
            if member in members:
                members.remove(member)
                self._rebalance(member.group)

    def _commit(self, group: str, offsets: Mapping[TopicPartition, int]) -> None:
        with self._lock:
            self._flush_segments()
            self._committed.setdefault(group, {}).update(offsets)
            self._save_offsets()

    # -- tables -------------------------------------------------------------------
    def table(self, name: str) -> MemoryTable:
        with self._lock:
            if name not in self._tables:
                path = self.directory / "tables" / f"{name}.log" if self.directory else None
                self._tables[name] = MemoryTable(_SegmentChangelog(SegmentFile(path))
                                                 if path else None)
            return self._tables[name]

    def close(self) -> None:
        with self._lock:
            self._flush_segments()
            for partitions in self._topics.values():
                for partition in partitions:
                    if partition.segment is not None:
                        partition.segment.close()
            for table in self._tables.values():
                table.flush()
                table.close()
            if self._file_lock is not None:
                self._file_lock.release()
                self._file_lock = None


class _EmbeddedProducer:
    def __init__(self, bus: EmbeddedBus) -> None:
        self._bus = bus

    def send(self, topic: str, value: bytes, key: bytes | None = None,
             headers: Sequence[tuple[str, bytes]] = ()) -> None:
        self._bus.append(topic, value, key, tuple(headers))

    def flush(self) -> None:
        with self._bus._lock:
            self._bus._flush_segments()

    def close(self) -> None:
        self.flush()


class _EmbeddedConsumer:
    def __init__(self, bus: EmbeddedBus, group: str, topics: list[str]) -> None:
        self._bus = bus
        self.group = group
        self.topics = topics
        self._assignment: list[TopicPartition] = []
        self._positions: dict[TopicPartition, int] = {}
        self._rebalanced = False
        self._closed = False
        self._start = 0

    @property
    def assignment(self) -> list[TopicPartition]:
        return list(self._assignment)

    def poll(self, timeout_s: float = 1.0, max_records: int = 500) -> list[Record]:
        deadline = time.monotonic() + timeout_s
        while True:
            batch = self._take(max_records)
            if batch or time.monotonic() >= deadline:
                return batch
            time.sleep(min(0.01, max(0.0, deadline - time.monotonic())))

    def _take(self, max_records: int) -> list[Record]:
        if self._closed:
            raise BusError(f"consumer of group {self.group!r} is closed")
        batch: list[Record] = []
        with self._bus._lock:
            count = len(self._assignment)
            for step in range(count):  # start at a rotating partition so none starves
                tp = self._assignment[(self._start + step) % count]
                records = self._bus._topics[tp[0]][tp[1]].records
                position = self._positions.get(tp, 0)
                chunk = records[position : position + max_records - len(batch)]
                batch.extend(chunk)
                self._positions[tp] = position + len(chunk)
                if len(batch) >= max_records:
                    break
            self._start += 1
        return batch

    def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        if offsets:
            self._bus._commit(self.group, offsets)

    def take_rebalanced(self) -> bool:
        changed, self._rebalanced = self._rebalanced, False
        return changed

    def ready(self) -> bool:
        return not self._closed

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._bus._leave(self)


class _SegmentChangelog:
    """A table's changes in an append-only segment file (one process owns the folder)."""

    def __init__(self, segment: SegmentFile) -> None:
        self._segment = segment
        self._read = False

    def read(self) -> tuple[bool, list[Change]]:
        if self._read:  # nobody else writes this file: nothing new after the first read
            return False, []
        self._read = True
        changes: list[Change] = []
        for body in self._segment.read_all():
            key, value = unpack_fields(body)
            changes.append(((key or b"").decode(), value))
        return True, changes

    def write(self, changes: Sequence[Change]) -> None:
        for key, value in changes:
            self._segment.append(pack_fields(key.encode(), value))
        self._segment.flush()

    def close(self) -> None:
        self._segment.close()


def open_embedded(directory: Path | str | None = None, **options: Any) -> EmbeddedBus:
    return EmbeddedBus(directory, **options)
