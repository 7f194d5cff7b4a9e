"""The content store port: bytes in, CID out; CID in, verified bytes out.

Two adapters implement it (see DESIGN.md, Content and ledger): ``local`` (a
directory of blocks, the embedded default) and ``ipfs`` (a Kubo node over its RPC
API). Both name the same bytes with the same CIDv1, the one
``ipfs add --cid-version=1`` prints.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Protocol, runtime_checkable


class ContentError(Exception):
    """Content fetched for a CID does not hash to that CID, or is missing."""


class ContentNotFoundError(ContentError):
    """The store holds no content (or no pin) for the CID named in the message."""


@runtime_checkable
class ContentStore(Protocol):
    def put_bytes(self, data: bytes) -> str:
        """Store ``data``; return its CIDv1 (base32 text)."""

    def put_file(self, path: Path) -> str:
        """Store a file's bytes, streaming; return its CIDv1."""

    def get(self, cid: str) -> bytes:
        """Return the verified bytes for ``cid``; raise ContentError on mismatch or absence."""

    def stream(self, cid: str) -> Iterator[bytes]:
        """Yield the verified bytes for ``cid`` in chunks (for large content)."""

    def has(self, cid: str) -> bool: ...

    def pin(self, cid: str) -> None: ...

    def unpin(self, cid: str) -> None: ...

    def list(self) -> Iterator[str]:
        """Yield the root CIDs pinned in this store."""
