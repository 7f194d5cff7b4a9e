"""The append-only file log: framed records, one writer, fsync per append, torn-tail repair.

File layout (docs/ledger.md, "Log and export files"):
    8-byte magic (b"MLLOG01\\n" for a live log, b"MLEXP01\\n" for an export)
    then frames: u32 big-endian length N || N record bytes || u32 big-endian CRC-32 of the record

A crash can leave only a partial last frame (appends are single writes followed by
fsync, and nothing is ever rewritten). On open the writer copies such a torn tail to
``quarantine/`` and then cuts it back to the end of the last whole frame, warning with the
byte offset. Any other damage (``classify_damage`` says why it is not a torn tail) is
corruption: the writer refuses to open, copies the log to quarantine and changes nothing.
"""

from __future__ import annotations

import logging
import os
import shutil
import stat
import struct
import time
import warnings
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from filelock import FileLock, Timeout

from ledger.checkpoints import STH_MAGIC
from ledger.entries import ENTRY_MAGIC
from ledger.files import shown

LOG_MAGIC = b"MLLOG01\n"
EXPORT_MAGIC = b"MLEXP01\n"
HEADER_SIZE = 8
MAX_RECORD = 8 << 20
RECORD_MAGICS = (ENTRY_MAGIC, STH_MAGIC)  # what a record starts with: an entry, a closing head
QUARANTINE_DIR = "quarantine"
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
    """Why reading stopped. ``at_tail``: a torn tail, the only damage a writer may cut."""

    index: int
    offset: int
    reason: str
    at_tail: bool


class FrameReader:
    """Iterate whole frames of a log or export; afterwards ``problem`` says why it stopped early.

    ``start`` is the byte offset of the first frame to read and ``first_index`` its number,
    so a reader can pick up where an earlier one stopped.
    """

    def __init__(
        self, stream: BinaryIO, file_size: int, start: int = HEADER_SIZE, first_index: int = 0
    ) -> None:
        self._stream = stream
        self._size = file_size
        self._start = start
        self._first_index = first_index
        self.problem: FrameProblem | None = None
        self.end_offset = start

    @property
    def size(self) -> int:
        return self._size

    def __iter__(self) -> Iterator[Frame]:
        stream, size = self._stream, self._size
        stream.seek(self._start)
        offset, index = self._start, self._first_index
        read = stream.read
        while offset < size:
            head = read(4)
            if len(head) < 4:
                self._stop(index, offset, "length prefix cut short")
                return
            (length,) = _U32.unpack(head)
            end = offset + 4 + length + 4
            if length == 0 or length > MAX_RECORD:
                self._stop(index, offset, f"frame length {length} is not plausible")
                return
            if end > size:
                self._stop(index, offset, f"frame of {length} bytes runs past end of file")
                return
            body = read(length + 4)
            if len(body) < length + 4:
                self._stop(index, offset, "the file ended inside the frame while it was read")
                return
            record = body[:length]
            if zlib.crc32(record) != _U32.unpack(body[length:])[0]:
                self._stop(index, offset, "frame checksum mismatch")
                return
            yield Frame(index, offset, record)
            offset = end
            index += 1
            self.end_offset = offset

    def _stop(self, index: int, offset: int, reason: str) -> None:
        torn, why = classify_damage(self._stream, self._size, offset)
        self.problem = FrameProblem(index, offset, reason if torn else f"{reason}; {why}", torn)


def classify_damage(stream: BinaryIO, size: int, offset: int) -> tuple[bool, str]:
    """Is the damage from ``offset`` to the end of file a torn tail? (torn, why not).

    One append is one ``write`` of one frame, so a crash can leave only a prefix of that
    frame, possibly with an unwritten (zero-filled) end. Evidence against: more bytes than
    one frame, a length no writer wrote, a whole valid frame further on, a frame that is
    whole (its bytes changed after they were written), or bytes to the end of file that are
    a whole frame under a changed length prefix. When in doubt it is corruption: the
    writer then refuses and keeps every byte.
    """
    remaining = size - offset
    if remaining > MAX_RECORD + 8:  # never cut more than one frame's worth, zeros or not
        return False, f"{remaining} bytes follow it, more than one frame can hold"
    stream.seek(offset)
    tail = stream.read(remaining)
    if tail.count(0) == len(tail) or len(tail) < 4:
        return True, ""
    (length,) = _U32.unpack_from(tail, 0)
    if length == 0 or length > MAX_RECORD:
        return False, "a crash leaves a prefix of a frame or zeros, never such a length"
    whole = 8 + length
    if len(tail) > whole:
        return False, "it is not the last frame"
    later = whole_frame_inside(tail)
    if later is not None:
        return False, f"a whole valid frame follows it at byte offset {offset + later}"
    if len(tail) == whole:
        # A torn write whose end never reached the disk reads as zeros: at least the whole
        # checksum. Anything else means the bytes of a whole frame changed after writing.
        if tail[-4:] == bytes(4):
            return True, ""
        return False, "the frame is whole, so its bytes changed after they were written"
    if len(tail) >= 9 and zlib.crc32(tail[4:-4]) == _U32.unpack_from(tail, len(tail) - 4)[0]:
        return False, "the bytes to the end of file are a whole frame under a changed length"
    return True, ""


def whole_frame_inside(data: bytes) -> int | None:
    """Offset (>= 1) in ``data`` of a whole frame with a valid checksum, or None."""
    for magic in RECORD_MAGICS:
        at = data.find(magic, 5)
        while at != -1:
            start = at - 4
            (length,) = _U32.unpack_from(data, start)
            end = start + 8 + length
            if 0 < length <= MAX_RECORD and end <= len(data):
                record = data[start + 4 : end - 4]
                if zlib.crc32(record) == _U32.unpack_from(data, end - 4)[0]:
                    return start
            at = data.find(magic, at + 1)
    return None


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


def open_regular(path: Path, flags: int = os.O_RDONLY) -> int:
    """A file descriptor for ``path``, which must be a regular file (a FIFO would block)."""
    try:
        fd = os.open(path, flags | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as error:
        raise LogError(f"cannot open {shown(path)}: {error.strerror}") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise LogError(f"{shown(path)} is not a regular file; expected a ledger log or export")
    os.set_blocking(fd, True)
    return fd


def open_frames(
    path: Path, start: int | None = None, first_index: int = 0
) -> tuple[BinaryIO, FrameReader, bytes]:
    """Open a log or export read-only (no lock, no repair); the caller closes the stream."""
    stream = os.fdopen(open_regular(Path(path)), "rb", buffering=1 << 20)
    try:
        magic = read_header(stream, shown(path))
    except Exception:
        stream.close()
        raise
    size = os.fstat(stream.fileno()).st_size
    return stream, FrameReader(stream, size, start or HEADER_SIZE, first_index), magic


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
        try:
            fd = open_regular(path, os.O_RDWR | os.O_APPEND)
        except LogError:
            lock.release()
            raise
        log = cls(path, lock, fd, os.fstat(fd).st_size)
        return log, log._replay()

    def _replay(self) -> Iterator[Frame]:
        with open(self.path, "rb", buffering=1 << 20) as stream:
            if read_header(stream, shown(self.path)) != LOG_MAGIC:
                raise LogError(
                    f"{shown(self.path)} is an export, not a live log; import is not supported"
                )
            reader = FrameReader(stream, self.size)
            yield from reader
        problem = reader.problem
        if problem is None:
            return
        if not problem.at_tail:
            copy = self._quarantine_whole()
            raise LogError(
                f"{shown(self.path)}: entry {problem.index} at byte offset {problem.offset} is "
                f"corrupt ({problem.reason}); refusing to open or repair it, every byte is kept"
                f"{copy}. Run `materialabs ledger verify` and restore from an export."
            )
        self._cut_torn_tail(problem)

    def _cut_torn_tail(self, problem: FrameProblem) -> None:
        """Copy the torn bytes to quarantine (fsynced), then cut them: nothing is lost."""
        with open(self.path, "rb") as stream:
            stream.seek(problem.offset)
            torn = stream.read(self.size - problem.offset)
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        try:
            copy = _write_quarantine(
                self.path, f"{self.path.name}.torn-at-{problem.offset}-{stamp}", torn
            )
        except OSError as error:
            raise LogError(
                f"{shown(self.path)}: torn tail at byte offset {problem.offset}, but it cannot "
                f"be copied to quarantine ({error.strerror}); not cutting it"
            ) from None
        message = (
            f"{shown(self.path)}: torn tail at byte offset {problem.offset} "
            f"({problem.reason}); cut {len(torn)} bytes back to the last whole entry "
            f"(entry {problem.index - 1}) after copying them to quarantine {shown(copy)}"
        )
        warnings.warn(message, TornTailWarning, stacklevel=3)
        logger.warning(message)
        os.ftruncate(self._fd, problem.offset)
        os.fsync(self._fd)
        self.size = problem.offset

    def _quarantine_whole(self) -> str:
        """Copy a corrupt log aside once (per size and mtime); say where, for the error."""
        info = os.fstat(self._fd)
        name = f"{self.path.name}.corrupt-{info.st_size}-{info.st_mtime_ns}"
        target = self.path.parent / QUARANTINE_DIR / name
        try:
            if not (target.exists() and target.stat().st_size == info.st_size):
                with open(self.path, "rb") as source:
                    _write_quarantine(self.path, name, source)
        except OSError as error:
            return f" (copying it to quarantine failed: {error.strerror})"
        return f" (a copy is in {shown(target)})"

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


def _write_quarantine(log_path: Path, name: str, data: bytes | BinaryIO) -> Path:
    """Write ``data`` to <log dir>/quarantine/``name`` durably (file and folder fsynced)."""
    folder = log_path.parent / QUARANTINE_DIR
    folder.mkdir(exist_ok=True)
    target, n = folder / name, 1
    while os.path.lexists(target):  # never replace an earlier copy
        target, n = folder / f"{name}.{n}", n + 1
    partial = folder / (target.name + ".part")
    with open(partial, "wb") as sink:
        if isinstance(data, bytes):
            sink.write(data)
        else:
            shutil.copyfileobj(data, sink, 1 << 20)
        sink.flush()
        os.fsync(sink.fileno())
    os.replace(partial, target)
    _fsync_directory(folder)
    return target


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
