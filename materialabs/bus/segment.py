"""Append-only record files for the file-backed embedded bus.

Frame: ``>I`` body length, ``>I`` CRC-32 of the body, body. A frame torn by a crash
(short or failing its CRC) ends the file: loading truncates it there, so a killed
process leaves a log that the next one can append to.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

_FRAME = struct.Struct(">II")


def pack_fields(*fields: bytes | None) -> bytes:
    """Length-prefixed fields; None is stored as length -1."""
    parts = []
    for value in fields:
        if value is None:
            parts.append(struct.pack(">i", -1))
        else:
            parts.append(struct.pack(">i", len(value)))
            parts.append(value)
    return b"".join(parts)


def unpack_fields(body: bytes) -> list[bytes | None]:
    fields: list[bytes | None] = []
    position = 0
    while position < len(body):
        (size,) = struct.unpack_from(">i", body, position)
        position += 4
        if size < 0:
            fields.append(None)
        else:
            fields.append(body[position : position + size])
            position += size
    return fields


class SegmentFile:
    """One append-only file of frames."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._handle: BinaryIO | None = None

    def read_all(self) -> Iterator[bytes]:
        """Yield every intact body; cut the file after the last intact frame."""
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        position = 0
        while position + _FRAME.size <= len(data):
            size, crc = _FRAME.unpack_from(data, position)
            body = data[position + _FRAME.size : position + _FRAME.size + size]
            if len(body) < size or zlib.crc32(body) != crc:
                break
            yield body
            position += _FRAME.size + size
        if position < len(data):
            with open(self.path, "r+b") as handle:
                handle.truncate(position)

    def append(self, body: bytes) -> None:
        if self._handle is None:
            self._handle = open(self.path, "ab")  # noqa: SIM115 - kept open for appends
        self._handle.write(_FRAME.pack(len(body), zlib.crc32(body)) + body)

    def flush(self) -> None:
        # Reaching the OS page cache is enough to survive a killed process.
        if self._handle is not None:
            self._handle.flush()

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


def atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(path.suffix + ".tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)
