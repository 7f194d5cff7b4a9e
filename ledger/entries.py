"""Ledger entries and their canonical byte encoding (see docs/ledger.md, "Entry bytes").

An entry's *body* is what the ledger signs; its *record* is the body followed by the
ledger's 64-byte signature. The record is what gets hashed: the next entry's
``prev_hash`` is SHA-256(record) and the Merkle leaf is SHA-256(0x00 || record).
"""

from __future__ import annotations

import hashlib
import json
import math
import struct
from dataclasses import dataclass, field
from typing import Any

ENTRY_MAGIC = b"MLE1"
HASH_SIZE = 32
PUBLIC_KEY_SIZE = 32
SIGNATURE_SIZE = 64
ZERO_HASH = bytes(HASH_SIZE)

KIND_DATASET = "dataset"
KIND_MODEL = "model"
KIND_KEY_REGISTERED = "key_registered"
KIND_KEY_REVOKED = "key_revoked"
KIND_CHECKPOINT = "checkpoint"
KINDS = (KIND_DATASET, KIND_MODEL, KIND_KEY_REGISTERED, KIND_KEY_REVOKED, KIND_CHECKPOINT)
UPLOAD_KINDS = (KIND_DATASET, KIND_MODEL)
KEY_KINDS = (KIND_KEY_REGISTERED, KIND_KEY_REVOKED)

# Limits keep a hostile record from making the parser allocate gigabytes.
MAX_TEXT = 4096
MAX_METADATA = 1 << 20
MAX_PAYLOAD = 1 << 22

_U32 = struct.Struct(">I")
_HEAD = struct.Struct(">4sQ32s")  # magic, seq, prev_hash
_TIMESTAMP = struct.Struct(">q")


class EncodingError(ValueError):
    """Bytes that are not a well-formed entry; the message names the field."""


_ENCODER = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)
_DECODER = json.JSONDecoder()


def canonical_json(value: Any) -> bytes:
    """Sorted keys, no whitespace, UTF-8, finite numbers only: one byte string per value."""
    _reject_non_finite(value)
    return _ENCODER.encode(value).encode("utf-8")


def _reject_non_finite(value: Any) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"metadata holds a non-finite number ({value}); use null or a string")
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError(f"metadata key {key!r} is not a string")
            _reject_non_finite(item)
    elif isinstance(value, list | tuple):
        for item in value:
            _reject_non_finite(item)


def parse_canonical_object(data: bytes, what: str) -> dict[str, Any]:
    """Decode canonical JSON bytes that must hold an object; reject any other spelling."""
    try:
        value = _DECODER.decode(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        raise EncodingError(f"{what} is not UTF-8 JSON: {error}") from None
    if not isinstance(value, dict):
        raise EncodingError(f"{what} must be a JSON object, got {type(value).__name__}")
    try:
        # Decoded JSON has only str keys; allow_nan=False rejects NaN/Infinity tokens.
        again = _ENCODER.encode(value).encode("utf-8")
    except ValueError as error:
        raise EncodingError(f"{what}: {error}") from None
    if again != data:
        raise EncodingError(f"{what} is not in canonical form (sorted keys, no spaces, UTF-8)")
    return value


def timestamp_text(timestamp_us: int) -> str:
    """An entry's timestamp for people (UTC, to the second); raw microseconds if out of range."""
    from datetime import UTC, datetime

    try:
        moment = datetime.fromtimestamp(timestamp_us / 1e6, UTC)
    except (OverflowError, OSError, ValueError):
        return f"{timestamp_us} us"
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


@dataclass(frozen=True)
class Entry:
    """One ledger entry. ``ledger_signature`` is empty only while the entry is being built."""

    seq: int
    prev_hash: bytes
    kind: str
    cid: str
    metadata: dict[str, Any]
    timestamp_us: int
    submitter_public: bytes
    payload: bytes
    submitter_signature: bytes
    ledger_signature: bytes = b""
    _record: bytes | None = field(default=None, repr=False, compare=False)
    _metadata_bytes: bytes | None = field(default=None, repr=False, compare=False)

    @property
    def metadata_bytes(self) -> bytes:
        """The canonical JSON of the metadata, as the record holds it."""
        if self._metadata_bytes is not None:
            return self._metadata_bytes
        return canonical_json(self.metadata)

    def body_bytes(self) -> bytes:
        if self._record is not None:
            return self._record[:-SIGNATURE_SIZE]
        return encode_body(self)

    def record_bytes(self) -> bytes:
        if self._record is not None:
            return self._record
        if len(self.ledger_signature) != SIGNATURE_SIZE:
            raise EncodingError(f"entry {self.seq}: ledger signature is not set")
        return encode_body(self) + self.ledger_signature

    @property
    def entry_hash(self) -> bytes:
        """SHA-256 of the record: what the next entry's prev_hash must equal."""
        return sha256(self.record_bytes())

    @property
    def leaf_hash(self) -> bytes:
        return sha256(b"\x00" + self.record_bytes())

    def summary(self) -> dict[str, Any]:
        """A JSON-friendly view for people (hex for bytes)."""
        return {
            "seq": self.seq,
            "kind": self.kind,
            "cid": self.cid,
            "metadata": self.metadata,
            "timestamp_us": self.timestamp_us,
            "prev_hash": self.prev_hash.hex(),
            "entry_hash": self.entry_hash.hex(),
            "submitter_public": self.submitter_public.hex(),
            "payload_sha256": sha256(self.payload).hex(),
            "payload_bytes": len(self.payload),
            "submitter_signature": self.submitter_signature.hex(),
            "ledger_signature": self.ledger_signature.hex(),
        }


def _text(value: str, name: str) -> bytes:
    data = value.encode("utf-8")
    if len(data) > MAX_TEXT:
        raise EncodingError(f"{name} is {len(data)} bytes; at most {MAX_TEXT} allowed")
    return _U32.pack(len(data)) + data


def encode_body(entry: Entry) -> bytes:
    """The signed part of an entry, laid out exactly as docs/ledger.md describes."""
    if len(entry.prev_hash) != HASH_SIZE:
        raise EncodingError(f"entry {entry.seq}: prev_hash must be {HASH_SIZE} bytes")
    if len(entry.submitter_public) != PUBLIC_KEY_SIZE:
        raise EncodingError(f"entry {entry.seq}: submitter public key must be 32 bytes")
    if len(entry.submitter_signature) != SIGNATURE_SIZE:
        raise EncodingError(f"entry {entry.seq}: submitter signature must be 64 bytes")
    metadata = canonical_json(entry.metadata)
    if len(metadata) > MAX_METADATA or len(entry.payload) > MAX_PAYLOAD:
        raise EncodingError(f"entry {entry.seq}: metadata or payload too large")
    return b"".join(
        (
            _HEAD.pack(ENTRY_MAGIC, entry.seq, entry.prev_hash),
            _text(entry.kind, "kind"),
            _text(entry.cid, "cid"),
            _U32.pack(len(metadata)),
            metadata,
            _TIMESTAMP.pack(entry.timestamp_us),
            entry.submitter_public,
            _U32.pack(len(entry.payload)),
            entry.payload,
            entry.submitter_signature,
        )
    )


def decode_record(record: bytes) -> Entry:
    """Parse a record (body + ledger signature); the inverse of ``Entry.record_bytes``."""
    record = bytes(record)
    end = len(record)
    if end < _HEAD.size:
        raise EncodingError(f"record of {end} bytes is shorter than the entry header")
    magic, seq, prev_hash = _HEAD.unpack_from(record, 0)
    if magic != ENTRY_MAGIC:
        raise EncodingError(f"record starts with {magic!r}, expected {ENTRY_MAGIC!r}")
    pos = _HEAD.size
    kind_bytes, pos = _sized(record, pos, "kind", MAX_TEXT)
    cid_bytes, pos = _sized(record, pos, "cid", MAX_TEXT)
    metadata_bytes, pos = _sized(record, pos, "metadata", MAX_METADATA)
    if pos + 8 + PUBLIC_KEY_SIZE > end:
        raise EncodingError(f"record ends inside timestamp or submitter_public (offset {pos})")
    (timestamp_us,) = _TIMESTAMP.unpack_from(record, pos)
    submitter_public = record[pos + 8 : pos + 8 + PUBLIC_KEY_SIZE]
    payload, pos = _sized(record, pos + 8 + PUBLIC_KEY_SIZE, "payload", MAX_PAYLOAD)
    if pos + 2 * SIGNATURE_SIZE != end:
        if pos + 2 * SIGNATURE_SIZE > end:
            raise EncodingError(f"record ends inside the signatures (offset {pos})")
        raise EncodingError(f"{end - pos - 128} stray bytes after the ledger signature")
    return Entry(
        seq=seq,
        prev_hash=prev_hash,
        kind=_decode_text(kind_bytes, "kind"),
        cid=_decode_text(cid_bytes, "cid"),
        metadata=parse_canonical_object(metadata_bytes, "metadata"),
        timestamp_us=timestamp_us,
        submitter_public=submitter_public,
        payload=payload,
        submitter_signature=record[pos : pos + SIGNATURE_SIZE],
        ledger_signature=record[pos + SIGNATURE_SIZE :],
        _record=record,
        _metadata_bytes=metadata_bytes,
    )


def _sized(record: bytes, pos: int, name: str, limit: int) -> tuple[bytes, int]:
    if pos + 4 > len(record):
        raise EncodingError(f"record ends inside the length of field {name} (offset {pos})")
    (size,) = _U32.unpack_from(record, pos)
    if size > limit:
        raise EncodingError(f"field {name} claims {size} bytes; at most {limit} allowed")
    start = pos + 4
    if start + size > len(record):
        raise EncodingError(f"record ends inside field {name} (offset {start})")
    return record[start : start + size], start + size


def _decode_text(data: bytes, name: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise EncodingError(f"field {name} is not UTF-8") from None
