"""Our UnixFS importer: the CID ``ipfs add --cid-version=1`` gives, computed offline.

Kubo's defaults for CIDv1 (checked against Kubo v0.43.1 by tests/store/test_kubo.py):
raw leaves, sha2-256, fixed 262144-byte chunks, balanced DAG of dag-pb UnixFS file
nodes with at most 174 links each, base32 text. Content of one chunk or less (empty
included) is a single raw block, so its CID is a ``bafkrei...`` raw CID.

The balanced layout is built bottom-up with one pending list of links per tree level:
a full level (174 links) is sealed into a node when the next link arrives, so memory
stays at a few hundred links whatever the file size. Sealing the levels that remain at
the end yields the same tree Kubo's top-down ``fillNodeRec`` builds.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import BinaryIO, Protocol

from materialabs.store.multiformats import (
    CODEC_DAG_PB,
    CODEC_RAW,
    SHA2_256,
    SHA2_256_LENGTH,
    Cid,
    InvalidCidError,
    parse_cid,
)
from materialabs.store.unixfs import encode_file_node

__all__ = [
    "CHUNK_SIZE",
    "MAX_LINKS",
    "Cid",
    "FileImporter",
    "InvalidCidError",
    "cid_of_bytes",
    "cid_of_file",
    "cid_of_stream",
    "parse_cid",
    "read_chunks",
]

CHUNK_SIZE = 262144
MAX_LINKS = 174

_RAW_PREFIX = bytes((1, CODEC_RAW, SHA2_256, SHA2_256_LENGTH))
_DAG_PB_PREFIX = bytes((1, CODEC_DAG_PB, SHA2_256, SHA2_256_LENGTH))

# Called once per block (leaf or node) with its binary CID and its bytes, children first,
# so a store that writes blocks in this order has every child before its parent.
BlockSink = Callable[[bytes, "bytes | memoryview"], None]

# (binary CID, Tsize = bytes of the whole sub-DAG, filesize = content bytes below)
_Link = tuple[bytes, int, int]


class _Readable(Protocol):
    def read(self, size: int = ..., /) -> bytes: ...


class FileImporter:
    """Feed chunks of exactly CHUNK_SIZE bytes (the last may be shorter), then ``finish()``."""

    def __init__(self, sink: BlockSink | None = None) -> None:
        self._sink = sink
        self._levels: list[list[_Link]] = []
        self._finished = False

    def add_chunk(self, chunk: bytes | memoryview) -> None:
        size = len(chunk)
        if size > CHUNK_SIZE:
            raise ValueError(f"chunk of {size} bytes exceeds the {CHUNK_SIZE}-byte chunk size")
        cid = _RAW_PREFIX + hashlib.sha256(chunk).digest()
        if self._sink is not None:
            self._sink(cid, chunk)
        self._push(0, (cid, size, size))

    def finish(self) -> str:
        """Seal the remaining levels; return the root CID as base32 text."""
        return str(Cid.from_bytes(self.finish_bytes()))

    def finish_bytes(self) -> bytes:
        if self._finished:
            raise RuntimeError("FileImporter.finish() was already called")
        self._finished = True
        if not self._levels:  # no bytes at all: Kubo stores one empty raw leaf
            cid = _RAW_PREFIX + hashlib.sha256(b"").digest()
            if self._sink is not None:
                self._sink(cid, b"")
            return cid
        level = 0
        while True:
            links = self._levels[level]
            is_top = level == len(self._levels) - 1
            if is_top and len(links) == 1:
                return links[0][0]
            parent = self._seal(links)
            if is_top:
                return parent[0]
            self._levels[level] = []
            self._push(level + 1, parent)
            level += 1

    def _push(self, level: int, link: _Link) -> None:
        while True:
            if level == len(self._levels):
                self._levels.append([])
            links = self._levels[level]
            if len(links) < MAX_LINKS:
                links.append(link)
                return
            parent = self._seal(links)
            self._levels[level] = [link]
            link = parent
            level += 1

    def _seal(self, links: list[_Link]) -> _Link:
        block = encode_file_node(links)
        cid = _DAG_PB_PREFIX + hashlib.sha256(block).digest()
        if self._sink is not None:
            self._sink(cid, block)
        tsize = len(block) + sum(link[1] for link in links)
        filesize = sum(link[2] for link in links)
        return (cid, tsize, filesize)


def read_chunks(stream: BinaryIO | _Readable, chunk_size: int = CHUNK_SIZE) -> Iterable[memoryview]:
    """Yield full chunks from ``stream`` (short reads from pipes are topped up).

    The same buffer is reused: consume each chunk before asking for the next.
    """
    buffer = bytearray(chunk_size)
    view = memoryview(buffer)
    readinto = getattr(stream, "readinto", None)
    while True:
        filled = 0
        while filled < chunk_size:
            if readinto is not None:
                got = readinto(view[filled:])
            else:
                data = stream.read(chunk_size - filled)
                got = len(data)
                view[filled : filled + got] = data
            if not got:
                break
            filled += got
        if filled:
            yield view[:filled]
        if filled < chunk_size:
            return


def import_stream(stream: BinaryIO | _Readable, sink: BlockSink | None = None) -> str:
    importer = FileImporter(sink)
    for chunk in read_chunks(stream):
        importer.add_chunk(chunk)
    return importer.finish()


def cid_of_bytes(data: bytes | bytearray | memoryview, sink: BlockSink | None = None) -> str:
    """CIDv1 of ``data``, equal to ``ipfs add --cid-version=1``'s."""
    importer = FileImporter(sink)
    view = memoryview(data).cast("B")
    for start in range(0, len(view), CHUNK_SIZE):
        importer.add_chunk(view[start : start + CHUNK_SIZE])
    return importer.finish()


def cid_of_stream(stream: BinaryIO | _Readable, sink: BlockSink | None = None) -> str:
    """CIDv1 of everything left in a binary stream, read in constant memory."""
    return import_stream(stream, sink)


def cid_of_file(path: str | Path, sink: BlockSink | None = None) -> str:
    """CIDv1 of a file's bytes, read in constant memory."""
    with open(path, "rb", buffering=0) as handle:
        return import_stream(handle, sink)
