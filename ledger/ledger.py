"""The ledger: one writer appends signed entries to a file log and keeps the Merkle tree.

A ledger lives in a directory:
    ledger.log        the append-only log (docs/ledger.md, "Log and export files")
    ledger.log.lock   held by the single writer
    ledger.key        the ledger's Ed25519 private key (0600), unless kept elsewhere
    ledger.pub        its public key, 64 hex digits: what auditors are given
    tree-head.json    the latest signed tree head, rewritten at every checkpoint
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import threading
import time
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.checkpoints import SignedTreeHead, checkpoint_metadata, sign_tree_head
from ledger.entries import (
    KEY_KINDS,
    KIND_CHECKPOINT,
    KIND_KEY_REGISTERED,
    KIND_KEY_REVOKED,
    UPLOAD_KINDS,
    ZERO_HASH,
    EncodingError,
    Entry,
    canonical_json,
    decode_record,
    encode_body,
    parse_canonical_object,
    sha256,
)
from ledger.files import SMALL_FILE, InputFileError, read_json_object, shown
from ledger.keys import (
    ROLE_ADMIN,
    ROLE_LAB,
    KeyFileError,
    KeyRecord,
    key_registration_payload,
    key_revocation_payload,
    public_bytes,
    read_private_key,
    read_public_key,
    signature_is_valid,
    write_private_key,
    write_public_key,
)
from ledger.log import (
    EXPORT_MAGIC,
    HEADER_SIZE,
    MAX_RECORD,
    AppendOnlyLog,
    LogError,
    encode_frame,
    open_frames,
)
from ledger.merkle import MerkleTree, leaf_hash
from ledger.rules import LedgerRefusal, LedgerState, checkpoint_every_problem

LOG_NAME = "ledger.log"
KEY_NAME = "ledger.key"
PUBLIC_NAME = "ledger.pub"
HEAD_NAME = "tree-head.json"
DEFAULT_CHECKPOINT_EVERY = 1000

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class InclusionReceipt:
    """What a submitter keeps: its entry, the audit path, and the signed head it leads to."""

    entry: Entry
    leaf_index: int
    audit_path: list[bytes]
    tree_head: SignedTreeHead

    def to_json(self) -> dict[str, Any]:
        return {
            "type": "inclusion",
            "leaf_index": self.leaf_index,
            "tree_size": self.tree_head.tree_size,
            "entry": base64.b64encode(self.entry.record_bytes()).decode("ascii"),
            "audit_path": [h.hex() for h in self.audit_path],
            "tree_head": self.tree_head.to_json(),
        }


@dataclass(frozen=True)
class ConsistencyProof:
    old_head: SignedTreeHead
    new_head: SignedTreeHead
    proof: list[bytes]

    def to_json(self) -> dict[str, Any]:
        return {
            "type": "consistency",
            "old_tree_head": self.old_head.to_json(),
            "new_tree_head": self.new_head.to_json(),
            "proof": [h.hex() for h in self.proof],
        }


def now_us() -> int:
    return time.time_ns() // 1000


class Ledger:
    """Open with ``Ledger.open`` (writer, or ``readonly=True``) or make with ``Ledger.create``."""

    def __init__(
        self,
        directory: Path,
        ledger_public: bytes,
        ledger_key: Ed25519PrivateKey | None,
        log: AppendOnlyLog | None,
        checkpoint_every: int | None,
    ) -> None:
        self.directory = directory
        self.ledger_public = ledger_public
        self._key = ledger_key
        self._log = log
        self._checkpoint_every_asked = checkpoint_every
        self.state = LedgerState(ledger_public)
        self.tree = MerkleTree()
        self._offsets = array("Q")
        self._end = HEADER_SIZE  # byte offset just past the last entry read or written
        self._latest: dict[str, int] = {}  # kind -> seq of its latest entry
        self._head_stamp: tuple[int, int, int] | None = None  # tree-head.json last checked
        self._by_cid: dict[str, list[int]] = {}
        self._checkpoints: list[SignedTreeHead] = []
        self._last_hash = ZERO_HASH
        self._last_timestamp = 0
        self._mutex = threading.RLock()
        self._batch_depth = 0

    # --- opening -----------------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        path: str | Path,
        ledger_key: Ed25519PrivateKey,
        admin_public_key: bytes,
        *,
        checkpoint_every: int = DEFAULT_CHECKPOINT_EVERY,
        admin_name: str = "admin",
    ) -> Ledger:
        """Start a new ledger whose entry 0 registers the admin key (signed by the ledger key).

        Entry 0 also records ``checkpoint_every`` (K), so every reader and auditor knows
        where the periodic heads must be.
        """
        problem = checkpoint_every_problem(checkpoint_every)
        if problem:
            raise LogError(problem)
        directory = Path(path)
        directory.mkdir(parents=True, exist_ok=True)
        log = AppendOnlyLog.create(directory / LOG_NAME)
        ledger_public = public_bytes(ledger_key)
        write_public_key(ledger_public, directory / PUBLIC_NAME)
        ledger = cls(directory, ledger_public, ledger_key, log, checkpoint_every)
        payload = key_registration_payload(
            admin_name, admin_public_key, ROLE_ADMIN, checkpoint_every=checkpoint_every
        )
        ledger.append_signed(
            KIND_KEY_REGISTERED, "", None, payload, ledger_public, ledger_key.sign(payload)
        )
        return ledger

    @classmethod
    def open(
        cls,
        path: str | Path,
        *,
        ledger_key: Ed25519PrivateKey | None = None,
        passphrase: bytes | None = None,
        readonly: bool = False,
        checkpoint_every: int | None = None,
    ) -> Ledger:
        """Replay the log into memory. The writer takes the lock and repairs a torn tail.

        K (``checkpoint_every``) is the one entry 0 records; ``checkpoint_every`` applies
        only to ledgers made before K was recorded (default 1000), and a different value
        for a ledger that records K is an error.

        The private key comes from ``ledger_key`` or ``<dir>/ledger.key`` (a read-only
        ledger without a key can still show, prove from checkpoints, and verify).
        """
        directory = Path(path)
        log_path = directory / LOG_NAME
        if not os.path.lexists(log_path):
            raise LogError(
                f"no ledger at {shown(directory)} (missing {LOG_NAME}); run "
                "`materialabs ledger init`"
            )
        key_path = directory / KEY_NAME
        if ledger_key is None and os.path.lexists(key_path):
            try:
                ledger_key = read_private_key(key_path, passphrase)
            except KeyFileError:
                if not readonly:
                    raise
        if ledger_key is None and not readonly:
            raise LogError(
                f"{shown(directory)}: the writer needs the ledger private key ({shown(key_path)})"
            )
        ledger_public = (
            public_bytes(ledger_key) if ledger_key else read_public_key(directory / PUBLIC_NAME)
        )
        if readonly:
            ledger = cls(directory, ledger_public, ledger_key, None, checkpoint_every)
            ledger.refresh()
            return ledger
        log, frames = AppendOnlyLog.open_for_append(log_path)
        ledger = cls(directory, ledger_public, ledger_key, log, checkpoint_every)
        try:
            # Under the writer's lock: the head file cannot change while the log is read.
            head = _signed_head_file(directory, ledger_public)
            for frame in frames:
                ledger._replay(frame.offset, frame.record)
            ledger._check_against(head)
            recorded = ledger.state.checkpoint_every
            if recorded is not None and checkpoint_every not in (None, recorded):
                raise LogError(
                    f"{shown(directory)} records checkpoint_every = {recorded} in entry 0; "
                    f"it cannot be opened with {checkpoint_every}"
                )
        except Exception:
            log.close()
            raise
        return ledger

    def refresh(self) -> int:
        """Read-only ledgers: replay the entries appended since the last look; how many.

        Only the new frames are read. The log must still hold, at the same place, the last
        entry read before (else it was replaced or rewritten underneath) and must not have
        shrunk; corruption raises LogError; an incomplete final frame (an append in
        progress) is left for the next look.
        """
        if self._log is not None:
            return 0
        with self._mutex:
            log_path = self.directory / LOG_NAME
            # The head file first: the writer writes it only after the entries it covers
            # are on disk, so the log read next is at least as long. Unchanged since the
            # last look, it was already checked (and this log extends that one).
            head_stamp = _file_stamp(self.directory / HEAD_NAME)
            head = None
            if head_stamp != self._head_stamp:
                head = _signed_head_file(self.directory, self.ledger_public)
            stream, reader, magic = open_frames(log_path, self._end, len(self.tree))
            with stream:
                if reader.size < self._end:
                    raise LogError(
                        f"{shown(log_path)} shrank from {self._end} to {reader.size} bytes "
                        "underneath this reader: entries were cut or the log was replaced"
                    )
                if len(self.tree):
                    self._check_last_entry(stream)
                before = len(self.tree)
                for frame in reader:
                    self._replay(frame.offset, frame.record)
            problem = reader.problem
            if problem is not None and not problem.at_tail:
                raise LogError(
                    f"{shown(log_path)}: entry {problem.index} at byte offset {problem.offset} "
                    f"is corrupt ({problem.reason})"
                )
            self._check_against(head)
            self._head_stamp = head_stamp
            return len(self.tree) - before

    def _check_last_entry(self, stream: Any) -> None:
        seq = len(self.tree) - 1
        stream.seek(self._offsets[seq])
        length = int.from_bytes(stream.read(4), "big")
        record = stream.read(length) if length <= MAX_RECORD else b""
        if leaf_hash(record) != self.tree.leaf_hash_at(seq):
            raise LogError(
                f"{shown(self.directory / LOG_NAME)}: entry {seq} is no longer the entry "
                "read before: the log was replaced or rewritten underneath this reader"
            )

    def _check_against(self, head: SignedTreeHead | None) -> None:
        """The log must extend the latest tree head this ledger signed and kept beside it."""
        if head is None:
            return
        where = shown(self.directory / HEAD_NAME)
        if head.tree_size > len(self.tree):
            raise LogError(
                f"{shown(self.directory / LOG_NAME)} holds {len(self.tree)} entries but "
                f"{where}, signed by this ledger, covers {head.tree_size}: entries are "
                "missing (the log was cut or replaced); refusing to use it. Every byte is "
                "kept; restore the log from an export or backup"
            )
        if self.tree.root(head.tree_size) != head.root_hash:
            raise LogError(
                f"{shown(self.directory / LOG_NAME)}: its first {head.tree_size} entries differ "
                f"from the ones {where} (signed by this ledger) covers: the log was replaced "
                "or rewritten; refusing to use it"
            )

    def _replay(self, offset: int, record: bytes) -> None:
        try:
            entry = decode_record(record)
        except EncodingError as error:
            raise LogError(
                f"{shown(self.directory)}: entry {len(self.tree)} at byte offset {offset} is "
                f"corrupt (unreadable: {error})"
            ) from None
        if entry.seq != len(self.tree) or entry.prev_hash != self._last_hash:
            raise LogError(
                f"{shown(self.directory)}: entry {len(self.tree)} at byte offset {offset} is "
                "corrupt (it does not chain to its predecessor); run `materialabs ledger verify`"
            )
        self._record_appended(entry, offset, record)

    def close(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- reading -----------------------------------------------------------------------------

    @property
    def checkpoint_every(self) -> int:
        """K: a periodic head covers every multiple of K entries (0: none)."""
        recorded = self.state.checkpoint_every
        if recorded is not None:
            return recorded
        asked = self._checkpoint_every_asked
        return DEFAULT_CHECKPOINT_EVERY if asked is None else asked

    def __len__(self) -> int:
        return len(self.tree)

    @property
    def size(self) -> int:
        return len(self.tree)

    @property
    def root_hash(self) -> bytes:
        return self.tree.root()

    @property
    def registry(self) -> dict[bytes, KeyRecord]:
        return self.state.registry.keys

    def get(self, seq: int) -> Entry:
        """Entry ``seq``, re-read from the log and checked against the one replayed before."""
        if not 0 <= seq < len(self.tree):
            raise IndexError(f"entry {seq} does not exist (ledger has {len(self.tree)} entries)")
        with open(self.directory / LOG_NAME, "rb") as stream:
            stream.seek(self._offsets[seq])
            length = int.from_bytes(stream.read(4), "big")
            record = stream.read(length) if length <= MAX_RECORD else b""
        return self._known(seq, record)

    def _known(self, seq: int, record: bytes) -> Entry:
        if leaf_hash(record) != self.tree.leaf_hash_at(seq):
            raise LogError(
                f"{shown(self.directory / LOG_NAME)}: entry {seq} at byte offset "
                f"{self._offsets[seq]} is not the entry read before: the log is corrupt or "
                "was changed underneath this process"
            )
        return decode_record(record)

    def entries(self, start: int = 0, stop: int | None = None) -> Iterator[Entry]:
        """Entries [start, stop), each checked against the one replayed before."""
        stop = len(self.tree) if stop is None else min(stop, len(self.tree))
        start = max(0, start)
        if start >= stop:
            return
        stream, reader, _ = open_frames(self.directory / LOG_NAME, self._offsets[start], start)
        following = start
        with stream:
            for frame in reader:
                if frame.index >= stop:
                    return
                yield self._known(frame.index, frame.record)
                following = frame.index + 1
        if following >= stop:
            return
        problem = reader.problem
        raise LogError(
            f"{shown(self.directory / LOG_NAME)}: reading stopped before entry {stop}: "
            + (f"entry {problem.index} at byte offset {problem.offset} is corrupt "
               f"({problem.reason})" if problem
               else f"the log ends after entry {following - 1}, shorter than read before")
        )

    def latest(self, kind: str) -> Entry | None:
        """The latest entry of ``kind``, or None."""
        seq = self._latest.get(kind)
        return None if seq is None else self.get(seq)

    def find(self, cid: str) -> Entry | None:
        """The latest entry naming ``cid``, or None."""
        seqs = self._by_cid.get(cid)
        return self.get(seqs[-1]) if seqs else None

    def find_all(self, cid: str) -> list[Entry]:
        return [self.get(seq) for seq in self._by_cid.get(cid, [])]

    def find_payload(self, payload: bytes) -> Entry | None:
        """The entry that carries exactly this signed payload, or None."""
        seq = self.state.seen_payloads.get(sha256(payload))
        return None if seq is None else self.get(seq)

    def key_record(self, public: bytes) -> KeyRecord | None:
        return self.state.registry.lookup(public)

    @property
    def checkpoints(self) -> list[SignedTreeHead]:
        return list(self._checkpoints)

    # --- writing -----------------------------------------------------------------------------

    def append_signed(
        self,
        kind: str,
        cid: str,
        metadata: dict[str, Any] | None,
        payload: bytes,
        signer_public: bytes,
        signature: bytes,
    ) -> Entry:
        """Append an entry a submitter signed; raise LedgerRefusal (with a reason) if not allowed.

        For key entries ``metadata`` may be None: it is read from the admin-signed payload.
        The entry is on disk (fsync) when this returns, unless inside ``batch()``.
        """
        with self._mutex:
            writer_key = self._writer_key()
            for name, text in (("kind", kind), ("cid", cid)):
                if not isinstance(text, str) or not text.isascii() and not _encodable(text):
                    raise LedgerRefusal(f"{name} must be UTF-8 text, got {text!r}")
            if not isinstance(payload, bytes):
                raise LedgerRefusal(f"payload must be bytes, got {type(payload).__name__}")
            metadata = _metadata_for(kind, metadata, payload)
            try:
                metadata_bytes = canonical_json(metadata)
            except (ValueError, TypeError) as error:
                raise LedgerRefusal(f"metadata is not JSON the ledger can store: {error}") from None
            # A periodic head due before this entry (the writer stopped between an append and
            # its checkpoint, or an on-demand head reached the multiple) is written first.
            self._periodic_checkpoint_if_due()
            seq = len(self.tree)
            reason = self.state.refusal(
                seq, kind, cid, metadata, payload, signer_public, metadata_bytes
            )
            if reason is None and not signature_is_valid(signer_public, signature, payload):
                reason = "submitter signature does not verify over the payload with the given key"
            if reason is not None:
                raise LedgerRefusal(reason)
            entry = self._write(writer_key, kind, cid, metadata, payload, signer_public, signature)
            self._periodic_checkpoint_if_due()
            return entry

    def _periodic_checkpoint_if_due(self) -> None:
        # Periodic heads sit at tree sizes that are multiples of checkpoint_every (the
        # checkpoint entries count as leaves too): sizes with many trailing zero bits
        # keep consistency proofs between heads short (<= 18 hashes at 10^6 for 1000).
        # The rules require the entry at each such seq to be that checkpoint.
        every, size = self.checkpoint_every, len(self.tree)
        if every and size and size % every == 0:
            self._write_checkpoint()

    def register_key(
        self, admin_key: Ed25519PrivateKey, lab: str, public_key: bytes, role: str = ROLE_LAB
    ) -> Entry:
        payload = key_registration_payload(lab, public_key, role)
        return self.append_signed(
            KIND_KEY_REGISTERED, "", None, payload, public_bytes(admin_key), admin_key.sign(payload)
        )

    def revoke_key(
        self, admin_key: Ed25519PrivateKey, public_key: bytes, reason: str = ""
    ) -> Entry:
        payload = key_revocation_payload(public_key, reason)
        return self.append_signed(
            KIND_KEY_REVOKED, "", None, payload, public_bytes(admin_key), admin_key.sign(payload)
        )

    def checkpoint(self) -> Entry:
        """Sign the tree head over every entry so far and append it as a checkpoint entry."""
        with self._mutex:
            entry = self._write_checkpoint()
            self._periodic_checkpoint_if_due()
            return entry

    def _write_checkpoint(self) -> Entry:
        with self._mutex:
            key = self._writer_key()
            size = len(self.tree)
            head = sign_tree_head(key, size, self.tree.root(), max(now_us(), self._last_timestamp))
            entry = self._write(
                key,
                KIND_CHECKPOINT,
                "",
                checkpoint_metadata(head),
                head.message(),
                self.ledger_public,
                head.signature,
            )
            # The head file claims the log holds these entries: they must be on disk first,
            # also inside a batch (a reopened writer refuses a log shorter than the head).
            assert self._log is not None
            self._log.sync()
            _write_json_atomically(self.directory / HEAD_NAME, head.to_json())
            return entry

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Group commit: appends inside are fsynced once, when the block ends."""
        with self._mutex:
            self._batch_depth += 1
            try:
                yield
            finally:
                self._batch_depth -= 1
                if self._batch_depth == 0 and self._log is not None:
                    self._log.sync()

    def _writer_key(self) -> Ed25519PrivateKey:
        if self._log is None or self._key is None:
            raise LogError(f"{self.directory} is open read-only; appends need the writer")
        return self._key

    def _write(
        self,
        key: Ed25519PrivateKey,
        kind: str,
        cid: str,
        metadata: dict[str, Any],
        payload: bytes,
        signer_public: bytes,
        signature: bytes,
    ) -> Entry:
        assert self._log is not None
        draft = Entry(
            seq=len(self.tree),
            prev_hash=self._last_hash,
            kind=kind,
            cid=cid,
            metadata=metadata,
            timestamp_us=max(now_us(), self._last_timestamp),
            submitter_public=signer_public,
            payload=payload,
            submitter_signature=signature,
        )
        try:
            body = encode_body(draft)
        except (EncodingError, ValueError, TypeError) as error:
            raise LedgerRefusal(f"entry cannot be encoded: {error}") from None
        record = body + key.sign(body)
        offset = self._log.append(record, sync=self._batch_depth == 0)
        entry = decode_record(record)
        self._record_appended(entry, offset, record)
        return entry

    def _record_appended(self, entry: Entry, offset: int, record: bytes) -> None:
        self.state.apply(entry.seq, entry.kind, entry.metadata, entry.payload)
        self.tree.append_leaf_hash(leaf_hash(record))
        self._offsets.append(offset)
        self._end = offset + len(record) + 8
        self._latest[entry.kind] = entry.seq
        self._last_hash = sha256(record)
        self._last_timestamp = entry.timestamp_us
        if entry.cid:
            self._by_cid.setdefault(entry.cid, []).append(entry.seq)
        if entry.kind == KIND_CHECKPOINT:
            self._checkpoints.append(
                SignedTreeHead(
                    entry.metadata["tree_size"],
                    bytes.fromhex(entry.metadata["root_hash"]),
                    entry.metadata["timestamp_us"],
                    entry.submitter_signature,
                )
            )

    # --- proofs ------------------------------------------------------------------------------

    def tree_head(self, size: int | None = None) -> SignedTreeHead:
        """A signed head for ``size`` (default: now): freshly signed, or a stored checkpoint."""
        size = len(self.tree) if size is None else size
        if self._key is not None:
            return sign_tree_head(self._key, size, self.tree.root(size), now_us())
        for head in self._checkpoints:
            if head.tree_size == size:
                return head
        raise LogError(f"no signed tree head for size {size} and no ledger key to sign one")

    def checkpoint_note(self, origin: str | None = None, size: int | None = None) -> bytes:
        """The C2SP checkpoint (a signed note) of the tree at ``size``, signed by the ledger key.

        ``origin`` (also the note's key name) defaults to ``ledger.tlog.default_origin``.
        """
        from ledger.tlog import default_origin, signed_checkpoint

        size = len(self.tree) if size is None else size
        if self._key is None:
            raise LogError("signing a checkpoint note needs the ledger key (ledger.key)")
        origin = origin or default_origin(self.ledger_public)
        return signed_checkpoint(self._key.sign, self.ledger_public, origin, size,
                                 self.tree.root(size))

    def _head_covering(self, seq: int) -> SignedTreeHead:
        if self._key is not None:
            return self.tree_head()
        for head in reversed(self._checkpoints):
            if head.tree_size > seq:
                return head
        raise LogError(
            f"entry {seq} is not yet covered by a checkpoint and this ledger was opened "
            "without its key; run `materialabs ledger checkpoint` or use the writer"
        )

    def resolve(self, seq_or_cid: int | str) -> int:
        if isinstance(seq_or_cid, int) or (isinstance(seq_or_cid, str) and seq_or_cid.isdigit()):
            seq = int(seq_or_cid)
            if not 0 <= seq < len(self.tree):
                raise LookupError(f"entry {seq} does not exist ({len(self.tree)} entries)")
            return seq
        seqs = self._by_cid.get(seq_or_cid)
        if not seqs:
            raise LookupError(f"no entry names CID {seq_or_cid}")
        return seqs[-1]

    def prove_inclusion(self, seq_or_cid: int | str) -> InclusionReceipt:
        seq = self.resolve(seq_or_cid)
        head = self._head_covering(seq)
        path = self.tree.inclusion_proof(seq, head.tree_size)
        return InclusionReceipt(self.get(seq), seq, path, head)

    def prove_consistency(self, old_size: int, new_size: int | None = None) -> ConsistencyProof:
        new_size = len(self.tree) if new_size is None else new_size
        if not 0 <= old_size <= new_size <= len(self.tree):
            raise LookupError(
                f"need 0 <= OLD <= NEW <= {len(self.tree)} (got OLD={old_size}, NEW={new_size})"
            )
        proof = self.tree.consistency_proof(old_size, new_size)
        return ConsistencyProof(self.tree_head(old_size), self.tree_head(new_size), proof)

    # --- export ------------------------------------------------------------------------------

    def export(self, out: str | Path) -> SignedTreeHead:
        """Write every entry plus a closing signed tree head: all an auditor needs.

        Each frame is re-read from the log and checked against the entry replayed before,
        so the export holds exactly the entries its closing head signs; on any difference
        it fails (LogError) and leaves nothing at ``out``.
        """
        with self._mutex:
            size = len(self.tree)
            head = self.tree_head(size)
        out = Path(out)
        tmp = out.with_name(out.name + ".part")
        try:
            self._write_export(tmp, size, head)
            os.replace(tmp, out)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        return head

    def _write_export(self, tmp: Path, size: int, head: SignedTreeHead) -> None:
        stream, reader, _ = open_frames(self.directory / LOG_NAME)
        with stream, open(tmp, "wb") as sink:
            sink.write(EXPORT_MAGIC)
            written = 0
            for frame in reader:
                if frame.index >= size:
                    break
                if leaf_hash(frame.record) != self.tree.leaf_hash_at(frame.index):
                    raise LogError(
                        f"{shown(self.directory / LOG_NAME)}: entry {frame.index} at byte "
                        f"offset {frame.offset} is not the entry read before; not exporting"
                    )
                sink.write(encode_frame(frame.record))
                written += 1
            if written < size:
                problem = reader.problem
                raise LogError(
                    f"{shown(self.directory / LOG_NAME)}: entry {written} "
                    + (f"at byte offset {problem.offset} is corrupt ({problem.reason})"
                       if problem else "is missing: the log shrank")
                    + f"; not exporting (the ledger holds {size} entries)"
                )
            sink.write(encode_frame(head.to_record()))
            sink.flush()
            os.fsync(sink.fileno())


def _metadata_for(kind: str, metadata: dict[str, Any] | None, payload: bytes) -> dict[str, Any]:
    """The entry's metadata; when omitted, what the submitter signed (the rules check it)."""
    if metadata is None and kind in KEY_KINDS + UPLOAD_KINDS:
        try:
            statement = parse_canonical_object(payload, f"{kind} payload")
        except EncodingError as error:
            raise LedgerRefusal(str(error)) from None
        if kind in KEY_KINDS:
            statement.pop("kind", None)
            return statement
        signed = statement.get("metadata")
        if not isinstance(signed, dict):
            raise LedgerRefusal(f"{kind} payload: metadata must be a JSON object")
        return signed
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise LedgerRefusal(f"metadata must be a JSON object, got {type(metadata).__name__}")
    return metadata


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate, e.g. from JSON "\ud800"
        return False
    return True


def _write_json_atomically(path: Path, value: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as stream:
        stream.write(json.dumps(value, indent=2) + "\n")
        stream.flush()
        os.fsync(stream.fileno())
    os.replace(tmp, path)


def _file_stamp(path: Path) -> tuple[int, int, int] | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_ino, info.st_size, info.st_mtime_ns


def _signed_head_file(directory: Path, ledger_public: bytes) -> SignedTreeHead | None:
    """The tree head the writer keeps beside the log, if present and signed by this ledger.

    It is derived (rewritten at every checkpoint), so an unreadable or unsigned one is
    only logged; a good one is proof of how long the log was, and ``_check_against``
    holds the log to it.
    """
    path = directory / HEAD_NAME
    if not os.path.lexists(path):
        return None
    try:
        head = SignedTreeHead.from_json(read_json_object(path, "tree head", SMALL_FILE),
                                        shown(path))
    except (InputFileError, EncodingError) as error:
        logger.warning("%s; ignored (it is rewritten at the next checkpoint)", error)
        return None
    if not head.signature_valid(ledger_public):
        logger.warning("%s is not signed by this ledger's key; ignored", shown(path))
        return None
    return head


def init_ledger(
    directory: str | Path,
    *,
    passphrase: bytes | None = None,
    admin_dir: str | Path | None = None,
    admin_passphrase: bytes | None = None,
    checkpoint_every: int = DEFAULT_CHECKPOINT_EVERY,
) -> tuple[Ledger, Path]:
    """Make the ledger key, the admin key and the ledger; return (ledger, admin key path)."""
    directory = Path(directory)
    if (directory / LOG_NAME).exists():
        raise LogError(f"{directory} already holds a ledger")
    ledger_key = Ed25519PrivateKey.generate()
    admin_key = Ed25519PrivateKey.generate()
    admin_dir = Path(admin_dir) if admin_dir else directory
    admin_path = admin_dir / "admin.key"
    write_private_key(ledger_key, directory / KEY_NAME, passphrase)
    write_private_key(admin_key, admin_path, admin_passphrase)
    write_public_key(public_bytes(admin_key), admin_dir / "admin.pub")
    ledger = Ledger.create(
        directory, ledger_key, public_bytes(admin_key), checkpoint_every=checkpoint_every
    )
    return ledger, admin_path


__all__ = [
    "ConsistencyProof",
    "InclusionReceipt",
    "Ledger",
    "LedgerRefusal",
    "init_ledger",
]
