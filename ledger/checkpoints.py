"""Signed tree heads (STH): the ledger's signed statement "my first N entries have root R".

Message signed: b"MLS1" || u64 tree_size || 32-byte root || i64 timestamp_us (big-endian).
A checkpoint entry carries this message as its payload and the signature as its
submitter signature, so tree heads live inside the ledger and are audited with it.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.entries import HASH_SIZE, SIGNATURE_SIZE, EncodingError
from ledger.keys import signature_is_valid

STH_MAGIC = b"MLS1"
_STH = struct.Struct(">4sQ32sq")
STH_SIZE = _STH.size


@dataclass(frozen=True)
class SignedTreeHead:
    tree_size: int
    root_hash: bytes
    timestamp_us: int
    signature: bytes

    def message(self) -> bytes:
        return tree_head_message(self.tree_size, self.root_hash, self.timestamp_us)

    def signature_valid(self, ledger_public: bytes) -> bool:
        return signature_is_valid(ledger_public, self.signature, self.message())

    def to_json(self) -> dict[str, Any]:
        return {
            "tree_size": self.tree_size,
            "root_hash": self.root_hash.hex(),
            "timestamp_us": self.timestamp_us,
            "signature": self.signature.hex(),
        }

    @classmethod
    def from_json(cls, value: dict[str, Any], origin: str = "tree head") -> SignedTreeHead:
        try:
            head = cls(
                tree_size=int(value["tree_size"]),
                root_hash=bytes.fromhex(value["root_hash"]),
                timestamp_us=int(value["timestamp_us"]),
                signature=bytes.fromhex(value["signature"]),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise EncodingError(
                f"{origin}: expected tree_size, root_hash (hex), timestamp_us, signature (hex): "
                f"{error}"
            ) from None
        if len(head.root_hash) != HASH_SIZE or len(head.signature) != SIGNATURE_SIZE:
            raise EncodingError(f"{origin}: root_hash must be 32 bytes and signature 64 bytes")
        return head

    def to_record(self) -> bytes:
        """Binary form used as the closing frame of an export."""
        return self.message() + self.signature

    @classmethod
    def from_record(cls, record: bytes) -> SignedTreeHead:
        if len(record) != STH_SIZE + SIGNATURE_SIZE:
            raise EncodingError(
                f"tree head record is {len(record)} bytes, expected {STH_SIZE + 64}"
            )
        size, root, ts = parse_tree_head_message(record[:STH_SIZE])
        return cls(size, root, ts, record[STH_SIZE:])


def tree_head_message(tree_size: int, root_hash: bytes, timestamp_us: int) -> bytes:
    return _STH.pack(STH_MAGIC, tree_size, root_hash, timestamp_us)


def parse_tree_head_message(message: bytes) -> tuple[int, bytes, int]:
    if len(message) != STH_SIZE:
        raise EncodingError(f"tree head message is {len(message)} bytes, expected {STH_SIZE}")
    magic, size, root, ts = _STH.unpack(message)
    if magic != STH_MAGIC:
        raise EncodingError(f"tree head message starts with {magic!r}, expected {STH_MAGIC!r}")
    return size, root, ts


def sign_tree_head(
    key: Ed25519PrivateKey, tree_size: int, root_hash: bytes, timestamp_us: int
) -> SignedTreeHead:
    message = tree_head_message(tree_size, root_hash, timestamp_us)
    return SignedTreeHead(tree_size, root_hash, timestamp_us, key.sign(message))


def checkpoint_metadata(head: SignedTreeHead) -> dict[str, Any]:
    return {
        "tree_size": head.tree_size,
        "root_hash": head.root_hash.hex(),
        "timestamp_us": head.timestamp_us,
    }
