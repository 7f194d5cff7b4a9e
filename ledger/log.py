"""The append-only file log: framed records, one writer, fsync per append, torn-tail repair.

File layout (docs/ledger.md, "Log and export files"):
    8-byte magic (b"MLLOG01\\n" for a live log, b"MLEXP01\\n" for an export)
    then frames: u32 big-endian length N || N record bytes || u32 big-endian CRC-32 of the record

A crash can leave only a partial last frame (appends are single writes followed by
fsync, and nothing is ever rewritten). On open the writer cuts such a torn tail back to
the end of the last whole frame and warns with the byte offset; a bad frame that is
*not* at the tail is corruption and is never repaired silently.
"""

from __future__ import annotations

import logging
import os
import struct
import warnings
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from filelock import FileLock, Timeout

LOG_MAGIC = b"MLLOG01\n"
EXPORT_MAGIC = b"MLEXP01\n"
HEADER_SIZE = 8
MAX_RECORD = 8 << 20
_U32 = struct.Struct(">I")

logger = logging.getLogger(__name__)


class LogError(Exception):
    """A log file that cannot be used: wrong header, corruption, or held by another writer."""


class TornTailWarning(UserWarning):
    """A partial last frame was cut off when the log was reopened."""


@dataclass(frozen=True)
class Frame:
    index: int
    offset: int
    record: bytes


@dataclass(frozen=True)
class FrameProblem:
    index: int
    offset: int
    reason: str
    at_tail: bool


class FrameReader:
    """Iterate whole frames of a log or export; afterwards ``problem`` says why it stopped early."""

    def __init__(self, stream: BinaryIO, file_size: int, start: int = HEADER_SIZE) -> None:
        self._stream = stream
        self._size = file_size
        self._start = start
        self.problem: FrameProblem | None = None
        self.end_offset = start

    def __iter__(self) -> Iterator[Frame]:
        stream, size = self._stream, self._size
        stream.seek(self._start)
        offset, index = self._start, 0
        read = stream.read
        while offset < size:
            head = read(4)
            if len(head) < 4:
                self._stop(index, offset, "length prefix cut short", at_tail=True)
                return
            (length,) = _U32.unpack(head)
            end = offset + 4 + length + 4
            if length == 0 or length > MAX_RECORD:
                tail = end > size or self._rest_is_zero(offset)
                self._stop(index, offset, f"frame length {length} is not plausible", tail)
                return
            if end > size:
                self._stop(index, offset, f"frame of {length} bytes runs past end of file", True)
                return
            body = read(length + 4)
            record = body[:length]
            if zlib.crc32(record) != _U32.unpack(body[length:])[0]:
                self._stop(index, offset, "frame checksum mismatch", at_tail=end == size)
                return
            yield Frame(index, offset, record)
            offset = end
            index += 1
            self.end_offset = offset

    def _rest_is_zero(self, offset: int) -> bool:
        self._stream.seek(offset)
        while chunk := self._stream.read(1 << 20):
            if chunk.count(0) != len(chunk):
                return False
        return True

    def _stop(self, index: int, offset: int, reason: str, at_tail: bool) -> None:
        self.problem = FrameProblem(index, offset, reason, at_tail)


def encode_frame(record: bytes) -> bytes:
    return _U32.pack(len(record)) + record + _U32.pack(zlib.crc32(record))


def read_header(stream: BinaryIO, origin: str) -> bytes:
    stream.seek(0)
    magic = stream.read(HEADER_SIZE)
    if magic not in (LOG_MAGIC, EXPORT_MAGIC):
        raise LogError(
            f"{origin} is not a MateriaLabs ledger log or export (starts with {magic[:8]!r})"
        )
    return magic


def open_frames(path: Path) -> tuple[BinaryIO, FrameReader, bytes]:
    """Open a log or export read-only (no lock, no repair); the caller closes the stream."""
    stream = open(path, "rb", buffering=1 << 20)  # noqa: SIM115 - returned to the caller
    try:
        magic = read_header(stream, str(path))
    except Exception:
        stream.close()
        raise
    return stream, FrameReader(stream, os.fstat(stream.fileno()).st_size), magic


class AppendOnlyLog:
    """The single writer's handle: holds the file lock until ``close``."""

    def __init__(self, path: Path, lock: FileLock, fd: int, size: int) -> None:
        self.path = path
        self._lock = lock
        self._fd = fd
        self.size = size

    @classmethod
    def create(cls, path: Path) -> AppendOnlyLog:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = _acquire(path)
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
        except FileExistsError:
            lock.release()
            raise LogError(f"{path} already exists; open it instead of creating it") from None
        os.write(fd, LOG_MAGIC)
        os.fsync(fd)
        _fsync_directory(path.parent)
        return cls(path, lock, fd, HEADER_SIZE)

    @classmethod
    def open_for_append(cls, path: Path) -> tuple[AppendOnlyLog, Iterator[Frame]]:
        """Lock, then yield every whole frame; a torn tail is cut once iteration ends."""
        path = Path(path)
        if not path.exists():
            raise LogError(f"no ledger log at {path}")
        lock = _acquire(path)
        fd = os.open(path, os.O_RDWR | os.O_APPEND)
        log = cls(path, lock, fd, os.fstat(fd).st_size)
        return log, log._replay()

    def _replay(self) -> Iterator[Frame]:
        with open(self.path, "rb", buffering=1 << 20) as stream:
            if read_header(stream, str(self.path)) != LOG_MAGIC:
                raise LogError(f"{self.path} is an export, not a live log; import is not supported")
            reader = FrameReader(stream, self.size)
            yield from reader
        problem = reader.problem
        if problem is None:
            return
        if not problem.at_tail:
            raise LogError(
                f"{self.path}: entry {problem.index} at byte offset {problem.offset} is corrupt "
                f"({problem.reason}) and is not the last frame; refusing to repair. "
                "Run `materialabs ledger verify` and restore from an export."
            )
        message = (
            f"{self.path}: torn tail at byte offset {problem.offset} ({problem.reason}); "
            f"cut {self.size - problem.offset} bytes back to the last whole entry "
            f"(entry {problem.index - 1})"
        )
        warnings.warn(message, TornTailWarning, stacklevel=2)
        logger.warning(message)
        os.ftruncate(self._fd, problem.offset)
        os.fsync(self._fd)
        self.size = problem.offset

    def append(self, record: bytes, sync: bool = True) -> int:
        """Write one frame; with ``sync`` it is on disk when this returns. Returns its offset."""
        frame = encode_frame(record)
        offset = self.size
        written = os.write(self._fd, frame)
        if written != len(frame):
            # A short write leaves a torn tail; cut it now rather than at the next open.
            os.ftruncate(self._fd, offset)
            raise LogError(f"{self.path}: short write ({written} of {len(frame)} bytes)")
        if sync:
            os.fsync(self._fd)
        self.size = offset + len(frame)
        return offset

    def sync(self) -> None:
        os.fsync(self._fd)

    def close(self) -> None:
        if self._fd >= 0:
            os.fsync(self._fd)
            os.close(self._fd)
            self._fd = -1
            self._lock.release()


def _acquire(path: Path) -> FileLock:
    lock = FileLock(str(path) + ".lock")
    try:
        lock.acquire(timeout=2)
    except Timeout:
        raise LogError(
            f"{path} is locked by another writer (lock file {path}.lock); "
            "only one process may append"
        ) from None
    return lock


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
