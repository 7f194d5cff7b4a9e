"""The embedded content store: a directory of blocks named by CID, plus a pin set.

Layout under the store root::

    blocks/<last two CID characters>/<CID>   one file per block (raw leaf or dag-pb node)
    pins                                     pinned root CIDs, one per line, sorted
    .lock                                    serialises pin-set updates across processes

Blocks are written with the same importer that computes CIDs, so this store names
content exactly as Kubo does; children are written before parents and the root last,
so a present root block means a complete put. Reads re-hash every block.
"""

from __future__ import annotations

import builtins
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from filelock import FileLock

from materialabs.store.cid import cid_of_bytes, cid_of_file, cid_of_stream
from materialabs.store.multiformats import CODEC_DAG_PB, Cid, parse_cid
from materialabs.store.port import ContentError, ContentNotFoundError
from materialabs.store.protobuf import ProtobufError
from materialabs.store.unixfs import decode_pb_node
from materialabs.store.verify import stream_verified


class LocalStore:
    """ContentStore over a local directory (created on first use)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser()
        self._blocks = self.root / "blocks"
        self._pins_path = self.root / "pins"
        self._blocks.mkdir(parents=True, exist_ok=True)
        self._lock = FileLock(str(self.root / ".lock"))

    def __repr__(self) -> str:
        return f"LocalStore({str(self.root)!r})"

    # -- writing -----------------------------------------------------------------

    def put_bytes(self, data: bytes) -> str:
        cid = cid_of_bytes(data, sink=self._write_block)
        self.pin(cid)
        return cid

    def put_file(self, path: Path) -> str:
        cid = cid_of_file(path, sink=self._write_block)
        self.pin(cid)
        return cid

    def put_stream(self, stream: BinaryIO) -> str:
        """Store everything left in a binary stream, in constant memory."""
        cid = cid_of_stream(stream, sink=self._write_block)
        self.pin(cid)
        return cid

    def _block_path(self, cid_text: str) -> Path:
        return self._blocks / cid_text[-2:] / cid_text

    def _write_block(self, cid: bytes, block: bytes | memoryview) -> None:
        path = self._block_path(str(Cid.from_bytes(cid)))
        if path.exists() and path.stat().st_size == len(block):
            return  # same CID, same size: already stored (a flipped bit is caught on read)
        path.parent.mkdir(exist_ok=True)
        # write-then-rename so a reader never sees half a block under its CID
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(block)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    # -- reading -----------------------------------------------------------------

    def _read_block(self, cid: Cid) -> bytes:
        path = self._block_path(str(cid))
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise ContentNotFoundError(
                f"block {cid} is not in the local store {self.root}"
            ) from None

    def get(self, cid: str) -> bytes:
        return b"".join(self.stream(cid))

    def stream(self, cid: str) -> Iterator[bytes]:
        if not self.has(cid):
            raise ContentNotFoundError(f"CID {cid} is not in the local store {self.root}")
        return stream_verified(cid, self._read_block)

    def has(self, cid: str) -> bool:
        return self._block_path(str(parse_cid(cid))).exists()

    # -- pins --------------------------------------------------------------------

    def _read_pins(self) -> set[str]:
        try:
            text = self._pins_path.read_text(encoding="ascii")
        except FileNotFoundError:
            return set()
        return {line.strip() for line in text.splitlines() if line.strip()}

    def _write_pins(self, pins: set[str]) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".pins-")
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.writelines(f"{cid}\n" for cid in sorted(pins))
        os.replace(tmp, self._pins_path)

    def pin(self, cid: str) -> None:
        canonical = str(parse_cid(cid))
        if not self.has(canonical):
            raise ContentNotFoundError(
                f"cannot pin {cid}: it is not in the local store {self.root}"
            )
        with self._lock:
            pins = self._read_pins()
            if canonical not in pins:
                self._write_pins(pins | {canonical})

    def unpin(self, cid: str) -> None:
        canonical = str(parse_cid(cid))
        with self._lock:
            pins = self._read_pins()
            if canonical not in pins:
                raise ContentNotFoundError(f"cannot unpin {cid}: it is not pinned in {self.root}")
            self._write_pins(pins - {canonical})

    def list(self) -> Iterator[str]:
        with self._lock:
            pins = sorted(self._read_pins())
        yield from pins

    # -- housekeeping --------------------------------------------------------------

    def gc(self) -> builtins.list[str]:  # `list` here is the method below
        """Delete blocks no pinned root reaches; return the CIDs removed."""
        with self._lock:
            keep: set[str] = set()
            for root in self._read_pins():
                self._mark(parse_cid(root), keep)
            removed = []
            for path in self._blocks.glob("*/*"):
                if path.name.startswith(".tmp-") or path.name in keep:
                    continue
                path.unlink()
                removed.append(path.name)
            return removed

    def _mark(self, cid: Cid, keep: set[str]) -> None:
        text = str(cid)
        if text in keep:
            return
        keep.add(text)
        if cid.codec != CODEC_DAG_PB:
            return  # raw leaves have no children
        try:
            node = decode_pb_node(self._read_block(cid))
        except (ContentNotFoundError, ProtobufError) as error:
            raise ContentError(
                f"gc stopped: pinned DAG is damaged at block {cid}: {error}"
            ) from None
        for link in node.links:
            self._mark(Cid.from_bytes(link.cid), keep)
