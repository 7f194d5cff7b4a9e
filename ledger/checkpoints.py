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
from ledger.files import json_type
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
    def from_json(cls, value: Any, origin: str = "tree head") -> SignedTreeHead:
        """Parse ``{"tree_size", "root_hash", "timestamp_us", "signature"}``; EncodingError
        names the field that is missing, of the wrong type, or unknown."""
        if not isinstance(value, dict):
            raise EncodingError(f"{origin}: expected a JSON object with {', '.join(HEAD_FIELDS)}")
        missing = [name for name in HEAD_FIELDS if name not in value]
        if missing:
            raise EncodingError(f"{origin}: missing field {', '.join(missing)} (a tree head holds "
                                f"{', '.join(HEAD_FIELDS)})")
        unknown = sorted(set(value) - set(HEAD_FIELDS))
        if unknown:
            raise EncodingError(f"{origin}: field {unknown[0]!r} is not part of a tree head")
        return cls(
            tree_size=_integer(value, "tree_size", origin, 0, 2**64 - 1),
            root_hash=_hex(value, "root_hash", origin, HASH_SIZE),
            timestamp_us=_integer(value, "timestamp_us", origin, -(2**63), 2**63 - 1),
            signature=_hex(value, "signature", origin, SIGNATURE_SIZE),
        )

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


HEAD_FIELDS = ("tree_size", "root_hash", "timestamp_us", "signature")


def _integer(value: dict[str, Any], name: str, origin: str, low: int, high: int) -> int:
    number = value[name]
    if isinstance(number, bool) or not isinstance(number, int):
        raise EncodingError(f"{origin}.{name}: expected an integer, got {json_type(number)}")
    if not low <= number <= high:
        raise EncodingError(f"{origin}.{name}: {number} is outside {low}..{high}")
    return number


def _hex(value: dict[str, Any], name: str, origin: str, size: int) -> bytes:
    text = value[name]
    if not isinstance(text, str):
        raise EncodingError(
            f"{origin}.{name}: expected {2 * size} hex digits, got {json_type(text)}"
        )
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raw = b""
    if len(raw) != size or len(text) != 2 * size:
        raise EncodingError(f"{origin}.{name}: expected {2 * size} hex digits")
    return raw


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
