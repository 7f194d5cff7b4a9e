"""The rules an entry must satisfy, shared by the writer (refuse) and the auditor (flag).

``LedgerState`` replays entries in order: key registry, replay set, chain head. Both
``Ledger.append_signed`` and ``verify_export`` call ``refusal`` before accepting an entry
and ``apply`` after, so the writer can never accept what the auditor would reject.
Signatures are checked separately (the auditor checks them in parallel).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from json.encoder import encode_basestring  # type: ignore[attr-defined]
from typing import Any

from ledger.checkpoints import checkpoint_metadata, parse_tree_head_message
from ledger.entries import (
    KEY_KINDS,
    KIND_CHECKPOINT,
    KIND_KEY_REGISTERED,
    KIND_KEY_REVOKED,
    KINDS,
    UPLOAD_KINDS,
    EncodingError,
    canonical_json,
    parse_canonical_object,
    sha256,
)
from ledger.keys import ROLE_ADMIN, ROLE_LAB, KeyRecord, Registry


class LedgerRefusal(Exception):
    """An append the ledger will not accept; ``reason`` says why in one line."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class LedgerState:
    ledger_public: bytes
    registry: Registry = field(default_factory=Registry)
    seen_payloads: dict[bytes, int] = field(default_factory=dict)  # payload hash -> seq
    # K from entry 0's metadata (``checkpoint_every``): the entry at every seq that is a
    # positive multiple of K is a checkpoint. None for ledgers made before K was recorded
    # (their periodic heads cannot be checked); 0 means no periodic heads.
    checkpoint_every: int | None = None

    def refusal(
        self,
        seq: int,
        kind: str,
        cid: str,
        metadata: dict[str, Any],
        payload: bytes,
        submitter: bytes,
        metadata_bytes: bytes | None = None,
    ) -> str | None:
        """Why this entry may not stand at ``seq`` (signatures aside), or None.

        ``metadata_bytes`` is the canonical JSON of ``metadata`` when the caller already
        has it (the auditor reads it from the record); otherwise it is computed.
        """
        if kind not in KINDS:
            return f"kind {kind!r} is not one of {', '.join(KINDS)}"
        if seq == 0:
            return _genesis_refusal(kind, metadata, payload, submitter, self.ledger_public)
        every = self.checkpoint_every
        if every and seq % every == 0 and kind != KIND_CHECKPOINT:
            return (f"entry {seq} must be the periodic checkpoint: entry 0 records "
                    f"checkpoint_every = {every}, so a signed tree head covers every multiple "
                    f"of {every} entries (got kind {kind!r})")
        if kind == KIND_CHECKPOINT:
            return _checkpoint_refusal(seq, cid, metadata, payload, submitter, self.ledger_public)
        if sha256(payload) in self.seen_payloads:
            return "replayed upload: this exact signed payload is already in the ledger"
        if kind in KEY_KINDS:
            reason = self.registry.admin_refusal(submitter, seq)
            return reason or self._key_entry_refusal(kind, cid, metadata, payload)
        reason = self.registry.upload_refusal(submitter, seq)
        if reason:
            return reason
        if metadata_bytes is None:
            metadata_bytes = canonical_json(metadata)
        reason = upload_statement_refusal(kind, cid, metadata_bytes, payload)
        if reason:
            return reason
        record = self.registry.lookup(submitter)
        assert record is not None  # upload_refusal said the key is registered
        return lab_refusal(metadata, record)

    def _key_entry_refusal(
        self, kind: str, cid: str, metadata: dict[str, Any], payload: bytes
    ) -> str | None:
        if cid:
            return f"{kind} entries carry no CID (got {cid!r})"
        reason = key_payload_mismatch(kind, metadata, payload)
        if reason:
            return reason
        public = bytes.fromhex(metadata["public_key"])
        record = self.registry.lookup(public)
        if kind == KIND_KEY_REGISTERED:
            if record is not None:
                return f"key {public.hex()[:16]}... is already registered (lab {record.lab!r})"
            return None
        if record is None:
            return f"cannot revoke key {public.hex()[:16]}...: it was never registered"
        if record.revoked_seq is not None:
            return f"key {public.hex()[:16]}... was already revoked at entry {record.revoked_seq}"
        return None

    def apply(self, seq: int, kind: str, metadata: dict[str, Any], payload: bytes) -> None:
        if kind == KIND_CHECKPOINT:
            return
        self.seen_payloads[sha256(payload)] = seq
        if seq == 0:
            self.checkpoint_every = metadata.get(CHECKPOINT_EVERY_FIELD)
        if kind == KIND_KEY_REGISTERED:
            public = bytes.fromhex(metadata["public_key"])
            self.registry.register(public, metadata["lab"], metadata["role"], seq)
        elif kind == KIND_KEY_REVOKED:
            self.registry.revoke(bytes.fromhex(metadata["public_key"]), seq, metadata["reason"])


CHECKPOINT_EVERY_FIELD = "checkpoint_every"
MAX_CHECKPOINT_EVERY = 1 << 32


def checkpoint_every_problem(value: object) -> str | None:
    """K must be 0 (no periodic heads) or an integer from 2 to 2^32.

    K = 1 would ask for a head covering every size, but each head is itself an entry.
    """
    if (not isinstance(value, int) or isinstance(value, bool) or value == 1
            or not 0 <= value <= MAX_CHECKPOINT_EVERY):
        return (f"checkpoint_every must be 0 or an integer from 2 to {MAX_CHECKPOINT_EVERY}, "
                f"got {value!r}")
    return None


def key_payload_mismatch(
    kind: str, metadata: dict[str, Any], payload: bytes, genesis: bool = False
) -> str | None:
    """Key entries: the payload is canonical JSON of {kind, **metadata}, nothing else.

    Entry 0 (``genesis``) may also record the ledger's ``checkpoint_every``.
    """
    if canonical_json({**metadata, "kind": kind}) != payload:
        return f"{kind} payload must equal the canonical JSON of the metadata plus its kind"
    try:
        public = bytes.fromhex(str(metadata.get("public_key", "")))
    except ValueError:
        public = b""
    if len(public) != 32:
        return f"{kind} metadata.public_key must be 64 hex digits"
    if kind == KIND_KEY_REGISTERED:
        keys = set(metadata)
        if genesis and CHECKPOINT_EVERY_FIELD in keys:
            keys.discard(CHECKPOINT_EVERY_FIELD)
            problem = checkpoint_every_problem(metadata[CHECKPOINT_EVERY_FIELD])
            if problem:
                return f"entry 0 metadata: {problem}"
        if keys != {"lab", "public_key", "role"}:
            return ("key_registered metadata must hold exactly lab, public_key, role"
                    + (" (and, in entry 0, optionally checkpoint_every)" if genesis else ""))
        if not isinstance(metadata["lab"], str) or not metadata["lab"]:
            return "key_registered metadata.lab must be a non-empty string"
        if metadata["role"] not in (ROLE_LAB, ROLE_ADMIN):
            return f"key_registered metadata.role must be {ROLE_LAB!r} or {ROLE_ADMIN!r}"
    elif set(metadata) != {"public_key", "reason"} or not isinstance(metadata["reason"], str):
        return "key_revoked metadata must hold exactly public_key and reason (a string)"
    return None


def _genesis_refusal(
    kind: str, metadata: dict[str, Any], payload: bytes, submitter: bytes, ledger_public: bytes
) -> str | None:
    if kind != KIND_KEY_REGISTERED or metadata.get("role") != ROLE_ADMIN:
        return "entry 0 must register the admin key (kind key_registered, role admin)"
    if submitter != ledger_public:
        return "entry 0 must be submitted by the ledger key itself"
    return key_payload_mismatch(kind, metadata, payload, genesis=True)


def _checkpoint_refusal(
    seq: int, cid: str, metadata: dict[str, Any], payload: bytes, submitter: bytes, ledger: bytes
) -> str | None:
    if submitter != ledger:
        return "checkpoint entries must be signed by the ledger key"
    try:
        size, root, ts = parse_tree_head_message(payload)
    except EncodingError as error:
        return f"checkpoint payload: {error}"
    if size != seq:
        return f"checkpoint at entry {seq} covers {size} entries; it must cover exactly {seq}"
    expected = {"tree_size": size, "root_hash": root.hex(), "timestamp_us": ts}
    if metadata != expected:
        return "checkpoint metadata does not match its signed tree head payload"
    return None


UPLOAD_STATEMENT_KEYS = ("cid", "kind", "metadata", "nonce")


def upload_statement_refusal(
    kind: str, cid: str, metadata_bytes: bytes, payload: bytes
) -> str | None:
    """Uploads: the payload is exactly ``upload_payload(kind, cid, metadata, nonce=...)``.

    The only accepted payload is the canonical JSON statement {"cid", "kind", "metadata",
    "nonce"} naming this entry's CID and kind, whose metadata is byte for byte the entry's
    and whose nonce is a non-empty string. Anything else is refused: a payload that one
    reader parses one way and the rules another (a leading space, a duplicate key) could
    carry a lab's signature over one CID onto another, or let the entry's metadata say
    what the lab never signed.

    Checked without decoding the whole payload: the statement is rebuilt from the entry's
    own (already canonical) fields and compared byte for byte; only the nonce is parsed.
    """
    if kind not in UPLOAD_KINDS:
        return f"kind {kind!r} cannot be uploaded"
    if not cid:
        return f"{kind} entries need a CID"
    prefix = b"".join(
        (b'{"cid":', _json_text(cid), b',"kind":', _json_text(kind), b',"metadata":',
         metadata_bytes, b',"nonce":')
    )
    if payload.startswith(prefix) and payload.endswith(b"}"):
        nonce = payload[len(prefix) : -1]
        if _PLAIN_NONCE.fullmatch(nonce) and (nonce.isascii() or _is_utf8(nonce)):
            return None  # a string with nothing to escape: canonical as it stands
        try:
            value = json.loads(nonce)
        except (ValueError, UnicodeDecodeError):
            value = None
        if isinstance(value, str) and value and _json_text(value) == nonce:
            return None
    return _statement_mismatch(kind, cid, metadata_bytes, payload)


# A JSON string literal holding no quote, backslash or control character: it decodes to its
# own content and canonical JSON writes it back unchanged (given valid UTF-8).
_PLAIN_NONCE = re.compile(rb'"[^"\\\x00-\x1f]+"')


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _statement_mismatch(kind: str, cid: str, metadata_bytes: bytes, payload: bytes) -> str:
    """Name what is wrong with a payload that is not this entry's upload statement."""
    expected = "the canonical JSON statement ledger.upload_payload makes"
    try:
        statement = parse_canonical_object(payload, "signed payload")
    except EncodingError as error:
        return f"{error}; an upload payload must be {expected}"
    if tuple(sorted(statement)) != UPLOAD_STATEMENT_KEYS:
        return (f"signed payload holds {sorted(statement)}; an upload statement holds exactly "
                f"{', '.join(UPLOAD_STATEMENT_KEYS)}")
    if statement["cid"] != cid:
        return f"signed payload names CID {statement['cid']!r}, entry has {cid!r}"
    if statement["kind"] != kind:
        return f"signed payload names kind {statement['kind']!r}, entry has {kind!r}"
    if not isinstance(statement["metadata"], dict):
        return "signed payload metadata must be a JSON object"
    if not isinstance(statement["nonce"], str) or not statement["nonce"]:
        return "signed payload nonce must be a non-empty string"
    return "entry metadata differs from the metadata the submitter signed"


def lab_refusal(metadata: dict[str, Any], record: KeyRecord) -> str | None:
    """An upload may name only its own lab: the one its signing key is registered to."""
    if "lab" not in metadata:
        return None  # the entry's lab is its key's lab
    lab = metadata["lab"]
    if lab != record.lab or not isinstance(lab, str):
        return (
            f"metadata.lab is {lab!r}, but the signing key {record.public_key.hex()[:16]}... "
            f"is registered to lab {record.lab!r}: a lab may only upload under its own name"
        )
    return None


def _json_text(value: str) -> bytes:
    """Canonical JSON of a string (what canonical_json gives, without its generic walk)."""
    return encode_basestring(value).encode("utf-8")


__all__ = [
    "CHECKPOINT_EVERY_FIELD",
    "LedgerRefusal",
    "LedgerState",
    "checkpoint_every_problem",
    "checkpoint_metadata",
    "key_payload_mismatch",
    "lab_refusal",
    "upload_statement_refusal",
]
