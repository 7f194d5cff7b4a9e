"""The ledger service's logic: an append request in, an outcome (and an entry event) out.

No Kafka, Faust or HTTP here. ``app.py`` (the wiring) consumes append requests from a
single-partition topic, so this handler runs in one process at a time: the ledger's
single writer. Delivery is at-least-once, so a redelivered request must not become a
refusal: a request whose exact signed payload is already in the ledger, with the same
kind, CID, signer and signature, is answered "duplicate" with the existing entry.

Append request (a dict, e.g. decoded from Avro or JSON):
    kind           "dataset" | "model" | "key_registered" | "key_revoked"
    cid            CIDv1 text ("" for key entries)
    metadata       JSON object; may be omitted: the ledger then takes it from the signed
                   payload (an upload's statement, a key entry's payload). If given, it
                   must be exactly what the payload says, or the ledger refuses.
    payload        the signed bytes (bytes, or base64 text)
    signer_public  Ed25519 public key (32 bytes, or 64 hex digits)
    signature      Ed25519 signature over payload (64 bytes, or 128 hex digits)
    request_id     optional, echoed back
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any, Protocol

from ledger.entries import KEY_KINDS, UPLOAD_KINDS, Entry
from ledger.rules import LedgerRefusal

APPENDABLE_KINDS = UPLOAD_KINDS + KEY_KINDS


class LedgerPort(Protocol):
    def append_signed(
        self,
        kind: str,
        cid: str,
        metadata: dict[str, Any] | None,
        payload: bytes,
        signer_public: bytes,
        signature: bytes,
    ) -> Entry: ...

    def find_payload(self, payload: bytes) -> Entry | None: ...


class RequestError(ValueError):
    """A request that is malformed (names the field and what was expected)."""


@dataclass(frozen=True)
class AppendRequest:
    kind: str
    cid: str
    metadata: dict[str, Any] | None
    payload: bytes
    signer_public: bytes
    signature: bytes
    request_id: str = ""


@dataclass(frozen=True)
class AppendOutcome:
    status: str  # "appended" | "duplicate" | "refused" | "invalid"
    request_id: str
    reason: str = ""
    entry: Entry | None = None

    @property
    def accepted(self) -> bool:
        return self.status in ("appended", "duplicate")

    def as_event(self) -> dict[str, Any]:
        """The reply event: what the requester (e.g. ingest) needs for its receipt."""
        event: dict[str, Any] = {
            "request_id": self.request_id,
            "status": self.status,
            "reason": self.reason,
        }
        if self.entry is not None:
            event.update(
                seq=self.entry.seq,
                cid=self.entry.cid,
                kind=self.entry.kind,
                entry_hash=self.entry.entry_hash.hex(),
            )
        return event


def decode_append_request(message: dict[str, Any]) -> AppendRequest:
    """Check types and decode bytes fields; raise RequestError naming the bad field."""
    if not isinstance(message, dict):
        raise RequestError(f"append request must be an object, got {type(message).__name__}")
    kind = _field(message, "kind", str)
    if kind not in APPENDABLE_KINDS:
        raise RequestError(f"field kind: {kind!r} is not one of {', '.join(APPENDABLE_KINDS)}")
    metadata = message.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise RequestError(f"field metadata: expected a JSON object, got {type(metadata).__name__}")
    return AppendRequest(
        kind=kind,
        cid=_field(message, "cid", str, default=""),
        metadata=metadata,
        payload=_bytes(message, "payload", None, base64_text=True),
        signer_public=_bytes(message, "signer_public", 32),
        signature=_bytes(message, "signature", 64),
        request_id=str(message.get("request_id", "")),
    )


def handle_append_request(message: dict[str, Any], ledger: LedgerPort) -> AppendOutcome:
    """Validate and append; never raises for a bad or refused request."""
    request_id = str(message.get("request_id", "")) if isinstance(message, dict) else ""
    try:
        request = decode_append_request(message)
    except RequestError as error:
        return AppendOutcome("invalid", request_id, str(error))
    try:
        entry = ledger.append_signed(
            request.kind,
            request.cid,
            request.metadata,
            request.payload,
            request.signer_public,
            request.signature,
        )
    except LedgerRefusal as refusal:
        existing = ledger.find_payload(request.payload)
        if existing is not None and _same_request(existing, request):
            return AppendOutcome("duplicate", request_id, "already in the ledger", existing)
        return AppendOutcome("refused", request_id, refusal.reason)
    return AppendOutcome("appended", request_id, entry=entry)


def entry_event(entry: Entry) -> dict[str, Any]:
    """The ``ledger.entries`` event: the record bytes are what auditors re-verify."""
    return {
        "seq": entry.seq,
        "kind": entry.kind,
        "cid": entry.cid,
        "entry_hash": entry.entry_hash.hex(),
        "record": entry.record_bytes(),
    }


def _same_request(entry: Entry, request: AppendRequest) -> bool:
    return (
        entry.kind == request.kind
        and entry.cid == request.cid
        and entry.submitter_public == request.signer_public
        and entry.submitter_signature == request.signature
    )


def _field(message: dict[str, Any], name: str, type_: type, default: Any = None) -> Any:
    value = message.get(name, default)
    if value is None:
        raise RequestError(f"field {name} is missing")
    if not isinstance(value, type_):
        raise RequestError(f"field {name}: expected {type_.__name__}, got {type(value).__name__}")
    return value


def _bytes(
    message: dict[str, Any], name: str, size: int | None, base64_text: bool = False
) -> bytes:
    value = message.get(name)
    if value is None:
        raise RequestError(f"field {name} is missing")
    if isinstance(value, bytes | bytearray):
        data = bytes(value)
    elif isinstance(value, str):
        try:
            data = base64.b64decode(value, validate=True) if base64_text else bytes.fromhex(value)
        except (ValueError, binascii.Error):
            encoding = "base64" if base64_text else "hex"
            raise RequestError(f"field {name}: not valid {encoding} text") from None
    else:
        raise RequestError(f"field {name}: expected bytes or text, got {type(value).__name__}")
    if size is not None and len(data) != size:
        raise RequestError(f"field {name}: expected {size} bytes, got {len(data)}")
    return data
