"""The auditor: check an export (or a live log) with nothing but the ledger's public key.

One sequential pass checks what is inherently ordered: framing, canonical encoding,
sequence numbers, the hash chain, timestamps, the rules (key validity at each entry,
replays), checkpoint roots, the closing tree head and, with a store, the content
behind every CID. Ed25519 verification, the expensive part, runs in worker processes.

Per-entry ledger signatures are checked lazily: an entry inside a range covered by a
valid signed tree head (a checkpoint or the export's closing head) is already
authenticated by that signature over the Merkle root, so its own signature is only
checked when some later check fails (to name the first bad entry exactly) or when it
is not covered by any head. ``all_signatures=True`` checks every one regardless.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import sys
import time
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ledger import ed25519
from ledger.checkpoints import STH_MAGIC, SignedTreeHead
from ledger.entries import (
    KIND_CHECKPOINT,
    ZERO_HASH,
    EncodingError,
    Entry,
    decode_record,
    sha256,
    timestamp_text,
)
from ledger.files import SMALL_FILE, InputFileError, json_type, read_json_object, shown
from ledger.log import EXPORT_MAGIC, FrameProblem, LogError, open_frames
from ledger.merkle import (
    MerkleTree,
    consistency_proof_size,
    leaf_hash,
    verify_consistency,
    verify_inclusion,
)
from ledger.rules import LedgerState

CHUNK = 4096
# Past this many uncovered entries, check their ledger signatures now rather than hold them.
MAX_WINDOW = 1 << 15


@dataclass
class VerifyReport:
    ok: bool
    entries: int
    first_bad_seq: int | None = None
    reason: str = ""
    tree_size: int = 0
    root_hash: bytes = b""
    checkpoints_verified: int = 0
    submitter_signatures: int = 0
    ledger_signatures: int = 0
    content_checked: int = 0
    closing_head: SignedTreeHead | None = None
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "entries": self.entries,
            "first_bad_seq": self.first_bad_seq,
            "reason": self.reason,
            "tree_size": self.tree_size,
            "root_hash": self.root_hash.hex(),
            "checkpoints_verified": self.checkpoints_verified,
            "submitter_signatures_checked": self.submitter_signatures,
            "ledger_signatures_checked": self.ledger_signatures,
            "content_checked": self.content_checked,
            "seconds": round(self.seconds, 3),
            "notes": self.notes,
        }


# --- signature workers --------------------------------------------------------------------

SigJob = tuple[int, bytes, bytes, bytes, str]  # seq, public key, message, signature, whose


def check_signatures(jobs: list[SigJob]) -> tuple[int, str] | None:
    """First (seq, reason) whose signature fails, or None. Runs in a worker process."""
    verify = ed25519.verify
    for seq, public, message, signature, whose in jobs:
        if not verify(public, message, signature):
            return seq, f"{whose} signature does not verify"
    return None


class _SignatureChecker:
    """Feeds signature jobs to worker processes in chunks; remembers the first failure."""

    def __init__(self, workers: int) -> None:
        self._pending: list[SigJob] = []
        self._futures: deque[Future[tuple[int, str] | None]] = deque()
        self._failures: list[tuple[int, str]] = []
        self._pool: ProcessPoolExecutor | None = None
        self.count = 0
        if workers > 1:
            context = multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")
            self._pool = ProcessPoolExecutor(workers, mp_context=context)
            self._max_in_flight = 2 * workers

    def add(self, job: SigJob) -> None:
        self._pending.append(job)
        self.count += 1
        if len(self._pending) >= CHUNK:
            self._flush()

    def _flush(self) -> None:
        jobs, self._pending = self._pending, []
        if not jobs:
            return
        if self._pool is None:
            self._record(check_signatures(jobs))
            return
        self._futures.append(self._pool.submit(check_signatures, jobs))
        while len(self._futures) > self._max_in_flight:
            self._record(self._futures.popleft().result())

    def _record(self, failure: tuple[int, str] | None) -> None:
        if failure is not None:
            self._failures.append(failure)

    def first_failure(self) -> tuple[int, str] | None:
        self._flush()
        while self._futures:
            self._record(self._futures.popleft().result())
        return min(self._failures) if self._failures else None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)


# --- the sequential pass ------------------------------------------------------------------


class _Failure(Exception):
    def __init__(self, seq: int, reason: str) -> None:
        super().__init__(reason)
        self.seq = seq
        self.reason = reason


Item = bytes | FrameProblem


@dataclass(frozen=True)
class TrustedHead:
    """A tree head seen before, and where it came from (named in the report)."""

    head: SignedTreeHead
    origin: str = "a tree head given"


def _trusted_heads(heads: Iterable[SignedTreeHead | TrustedHead]) -> list[TrustedHead]:
    return [h if isinstance(h, TrustedHead) else TrustedHead(h) for h in heads]


class _Audit:
    def __init__(
        self,
        ledger_public: bytes,
        store: Any,
        all_signatures: bool,
        trusted_heads: Sequence[TrustedHead],
        checker: _SignatureChecker,
    ) -> None:
        self.ledger_public = ledger_public
        self.store = store
        self.all_signatures = all_signatures
        self.trusted: dict[int, list[TrustedHead]] = {}
        for trusted in trusted_heads:
            self.trusted.setdefault(trusted.head.tree_size, []).append(trusted)
        self.checker = checker
        self.state = LedgerState(ledger_public)
        self.tree = MerkleTree()
        self.last_hash = ZERO_HASH
        self.last_timestamp = 0
        self.window: list[tuple[int, bytes]] = []  # (seq, record) not yet covered by a head
        self.ledger_sigs = 0
        self.checkpoints = 0
        self.content = 0
        self.closing_head: SignedTreeHead | None = None

    def run(self, items: Iterable[Item]) -> None:
        seq = 0
        for item in items:
            if self.closing_head is not None:
                raise _Failure(seq, "data follows the closing tree head")
            if isinstance(item, FrameProblem):
                raise _Failure(item.index, f"unreadable frame at byte {item.offset}: {item.reason}")
            if item[:4] == STH_MAGIC:
                self._closing_head(seq, item)
                continue
            self._entry(seq, item)
            seq += 1

    def _entry(self, seq: int, record: bytes) -> None:
        try:
            entry = decode_record(record)
        except EncodingError as error:
            raise _Failure(seq, f"malformed entry: {error}") from None
        if self.all_signatures:
            self._check_ledger_signature(seq, record)
        else:
            self.window.append((seq, record))
        if entry.seq != seq:
            raise _Failure(
                seq,
                f"entry at position {seq} says seq {entry.seq}: an entry is missing, inserted "
                "or out of order",
            )
        if entry.prev_hash != self.last_hash:
            raise _Failure(seq, "prev_hash does not match the hash of the previous entry")
        if entry.timestamp_us < self.last_timestamp:
            raise _Failure(seq, "timestamp goes backwards")
        reason = self.state.refusal(
            seq, entry.kind, entry.cid, entry.metadata, entry.payload, entry.submitter_public,
            entry.metadata_bytes,
        )
        if reason:
            raise _Failure(seq, reason)
        if entry.kind == KIND_CHECKPOINT:
            self._checkpoint(seq, entry.payload, entry.submitter_signature)
        else:
            self.checker.add(
                (seq, entry.submitter_public, entry.payload, entry.submitter_signature, "submitter")
            )
        if self.store is not None and entry.cid:
            self._content(seq, entry.cid)
        if seq in self.trusted:
            self._trusted(seq)
        self.state.apply(seq, entry.kind, entry.metadata, entry.payload)
        self.tree.append_leaf_hash(leaf_hash(record))
        self.last_hash = sha256(record)
        self.last_timestamp = entry.timestamp_us
        if len(self.window) > MAX_WINDOW:
            self._flush_window()

    def _checkpoint(self, seq: int, message: bytes, signature: bytes) -> None:
        # The rules already matched payload to metadata and size to seq; the root is ours.
        if message[12:44] != self.tree.root():
            raise _Failure(seq, "checkpoint root does not match the entries before it")
        if not _valid(self.ledger_public, signature, message):
            raise _Failure(seq, "checkpoint tree head signature does not verify")
        self.checkpoints += 1
        self._covered_below(seq)

    def _closing_head(self, seq: int, record: bytes) -> None:
        try:
            head = SignedTreeHead.from_record(record)
        except EncodingError as error:
            raise _Failure(seq, f"closing tree head: {error}") from None
        if not head.signature_valid(self.ledger_public):
            raise _Failure(seq, "closing tree head signature does not verify")
        if head.tree_size != seq:
            first = min(seq, head.tree_size)
            raise _Failure(
                first,
                f"closing tree head covers {head.tree_size} entries but the export holds {seq}"
                + (": entries are missing (truncated)" if head.tree_size > seq else ""),
            )
        if head.root_hash != self.tree.root():
            raise _Failure(seq, "closing tree head root does not match the entries")
        self.closing_head = head
        self._covered_below(seq)

    def _trusted(self, seq: int) -> None:
        """At size ``seq``: the entries so far must be exactly the ones a head given covers."""
        for trusted in self.trusted[seq]:
            if not trusted.head.signature_valid(self.ledger_public):
                raise _Failure(seq, f"{trusted.origin}: not signed by this ledger key")
            if trusted.head.root_hash != self.tree.root():
                raise _Failure(
                    seq,
                    f"entries 0..{seq - 1} are not the ones the tree head of size {seq} "
                    f"({trusted.origin}) covers: this log is not consistent with it "
                    "(rewritten history or a split view)",
                )

    def _covered_below(self, seq: int) -> None:
        """A valid signed head covers every entry before ``seq``: drop them from the window."""
        self.window = [(s, r) for s, r in self.window if s >= seq]

    def _flush_window(self) -> None:
        for seq, record in self.window:
            self._check_ledger_signature(seq, record)
        self.window = []

    def _check_ledger_signature(self, seq: int, record: bytes) -> None:
        self.ledger_sigs += 1
        self.checker.add((seq, self.ledger_public, record[:-64], record[-64:], "ledger"))

    def _content(self, seq: int, cid: str) -> None:
        from materialabs.store.port import ContentError

        try:
            self.store.get(cid)
        except ContentError as error:
            raise _Failure(seq, f"content for CID {cid} fails: {error}") from None
        self.content += 1

    def finish(self, require_closing_head: bool) -> None:
        seq = len(self.tree)
        larger = [size for size in self.trusted if size > seq]
        if larger:
            largest = self.trusted[max(larger)][0]
            raise _Failure(
                seq,
                f"only {seq} entries, but the tree head from {largest.origin} covers "
                f"{largest.head.tree_size}: entries are missing (the log was cut)",
            )
        if seq in self.trusted:
            self._trusted(seq)
        # The RFC 6962 statement an auditor can hand on: a consistency proof from each head
        # given to the size audited, checked against the head's own root.
        root = self.tree.root()
        for size, heads in self.trusted.items():
            proof = self.tree.consistency_proof(size, seq)
            for trusted in heads:
                if not verify_consistency(size, seq, trusted.head.root_hash, root, proof):
                    raise _Failure(size, f"not consistent with the tree head of size {size} "
                                         f"from {trusted.origin}")
        if require_closing_head and self.closing_head is None:
            raise _Failure(seq, "export has no closing signed tree head: it may be truncated")


def _valid(public: bytes, signature: bytes, message: bytes) -> bool:
    return ed25519.verify(public, message, signature)


def verify_export(
    records: Iterable[Item],
    ledger_public_key: bytes,
    store: Any = None,
    *,
    all_signatures: bool = False,
    trusted_head: SignedTreeHead | None = None,
    require_closing_head: bool = True,
    workers: int | None = None,
    trusted_heads: Sequence[SignedTreeHead | TrustedHead] = (),
) -> VerifyReport:
    """Check a sequence of records (entries, then the closing tree head); report the first bad one.

    ``records`` are record bytes as produced by ``Entry.record_bytes`` (a ``FrameProblem``
    stands for an unreadable frame). ``store`` (anything with ``.get(cid)``) makes it
    also re-fetch and re-hash the content behind every CID. ``trusted_heads`` (and
    ``trusted_head``) are tree heads seen before: the records must be at least as many
    and consistent with each (RFC 6962), else entries were cut or history rewritten.
    """
    started = time.perf_counter()
    workers = _default_workers() if workers is None else workers
    checker = _SignatureChecker(workers)
    heads = _trusted_heads([*trusted_heads, *([trusted_head] if trusted_head else [])])
    audit = _Audit(ledger_public_key, store, all_signatures, heads, checker)
    failure: _Failure | None = None
    try:
        try:
            audit.run(records)
            audit.finish(require_closing_head)
        except _Failure as error:
            failure = error
        # Any uncovered entry up to the failure gets its own ledger signature checked,
        # so a tampered entry is named rather than the entry after it.
        audit._flush_window()
        signature_failure = checker.first_failure()
    finally:
        checker.close()
    if signature_failure is not None and (failure is None or signature_failure[0] <= failure.seq):
        failure = _Failure(*signature_failure)
    report = VerifyReport(
        ok=failure is None,
        entries=len(audit.tree),
        first_bad_seq=None if failure is None else failure.seq,
        reason="" if failure is None else failure.reason,
        tree_size=len(audit.tree),
        root_hash=audit.tree.root(),
        checkpoints_verified=audit.checkpoints,
        submitter_signatures=checker.count - audit.ledger_sigs,
        ledger_signatures=audit.ledger_sigs,
        content_checked=audit.content,
        closing_head=audit.closing_head,
        seconds=time.perf_counter() - started,
    )
    if not all_signatures and failure is None:
        report.notes.append(
            "entries covered by a verified signed tree head were authenticated by that "
            "signature; use all_signatures to check each entry's own ledger signature too"
        )
    if failure is None:
        for size in sorted(audit.trusted):
            origins = ", ".join(sorted({t.origin for t in audit.trusted[size]}))
            report.notes.append(
                f"consistent with the tree head of size {size} from {origins} (RFC 6962 "
                f"proof of {consistency_proof_size(size, report.tree_size)} hashes)"
            )
    return report


def _default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


def iter_file_records(path: str | Path) -> tuple[Iterator[Item], bool]:
    """Records of a log or export file, and whether it is an export (expects a closing head)."""
    stream, reader, magic = open_frames(Path(path))

    def items() -> Iterator[Item]:
        with stream:
            yield from (frame.record for frame in reader)
            if reader.problem is not None:
                yield reader.problem

    return items(), magic == EXPORT_MAGIC


def verify_file(
    path: str | Path,
    ledger_public_key: bytes,
    store: Any = None,
    *,
    all_signatures: bool = False,
    trusted_head: SignedTreeHead | None = None,
    workers: int | None = None,
    progress: bool = False,
    trusted_heads: Sequence[SignedTreeHead | TrustedHead] = (),
) -> VerifyReport:
    """Verify an export file (closing head required) or a live ``ledger.log``.

    For a ledger directory, its ``tree-head.json`` (the latest head the writer signed) is
    one of the trusted heads: a log cut below it fails.
    """
    path = Path(path)
    heads = _trusted_heads(trusted_heads)
    if path.is_dir():
        try:
            heads += directory_head(path)
        except EncodingError as error:
            return VerifyReport(ok=False, entries=0, first_bad_seq=None, reason=str(error))
        path = path / "ledger.log"
    try:
        items, is_export = iter_file_records(path)
    except (LogError, OSError) as error:
        return VerifyReport(ok=False, entries=0, first_bad_seq=0, reason=str(error))
    if progress and sys.stderr.isatty():
        from tqdm import tqdm

        items = iter(tqdm(items, desc="verifying", unit=" entries", file=sys.stderr))
    return verify_export(
        items,
        ledger_public_key,
        store,
        all_signatures=all_signatures,
        trusted_head=trusted_head,
        require_closing_head=is_export,
        workers=workers,
        trusted_heads=heads,
    )


def directory_head(directory: Path) -> list[TrustedHead]:
    """The ``tree-head.json`` beside a live log, as a trusted head (none if absent)."""
    path = directory / "tree-head.json"
    if not os.path.lexists(path):
        return []
    try:
        document = read_json_object(path, "tree head", SMALL_FILE)
    except InputFileError as error:
        raise EncodingError(str(error)) from None
    return [TrustedHead(SignedTreeHead.from_json(document, shown(path)), shown(path))]


# --- proofs -------------------------------------------------------------------------------


def check_entry_signatures(entry: Entry, ledger_public_key: bytes) -> str | None:
    """None if the ledger signed this entry and its submitter signed its payload; else why not.

    For a consumer about to trust one entry (e.g. the predictor before loading a model),
    with ``Ledger.find(cid)``; the full audit is ``verify_file``.
    """
    record = entry.record_bytes()
    if not _valid(ledger_public_key, record[-64:], record[:-64]):
        return f"entry {entry.seq}: the ledger signature does not verify"
    if not _valid(entry.submitter_public, entry.submitter_signature, entry.payload):
        return f"entry {entry.seq}: the submitter signature does not verify"
    return None


class DocumentError(ValueError):
    """A receipt, proof or tree head document that is not well-formed; names the field."""


RECEIPT_FIELDS = ("type", "leaf_index", "tree_size", "entry", "audit_path", "tree_head")
# Added to a receipt by the upload path (materialabs upload): each is compared with the entry.
UPLOAD_FIELDS = ("upload_id", "lab", "dataset_cid", "manifest_cid", "record_count")
OPTIONAL_RECEIPT_FIELDS = (*UPLOAD_FIELDS, "ledger_public_key")
CONSISTENCY_FIELDS = ("type", "old_tree_head", "new_tree_head", "proof")


@dataclass(frozen=True)
class Receipt:
    """A parsed inclusion receipt: the proof, and the claims the receipt makes about it."""

    leaf_index: int
    tree_size: int
    record: bytes
    entry: Entry
    audit_path: list[bytes]
    tree_head: SignedTreeHead
    claims: dict[str, Any]

    def describe(self) -> list[str]:
        """What the signed entry says, for people."""
        entry = self.entry
        lines = [
            f"entry {entry.seq}: kind {entry.kind}, cid {entry.cid or '-'}, submitted by key "
            f"{entry.submitter_public.hex()} at {timestamp_text(entry.timestamp_us)}",
        ]
        meta = entry.metadata
        if entry.kind in ("dataset", "model"):
            from materialabs.store import cid_of_bytes

            said = [f"{name} {meta[name]!r}" for name in ("lab", "upload_id", "record_count",
                                                           "dataset_cid") if name in meta]
            said.append(f"manifest_cid {cid_of_bytes(entry.payload)}")
            lines.append("the signed entry says: " + ", ".join(said))
        else:
            text = json.dumps(meta, sort_keys=True)
            lines.append(f"the signed entry's metadata: {text[:300]}")
        head = self.tree_head
        lines.append(
            f"in the tree of size {head.tree_size}, root {head.root_hash.hex()}, signed "
            f"{timestamp_text(head.timestamp_us)}"
        )
        return lines


def parse_receipt(document: Any) -> Receipt:
    """Read an inclusion receipt; DocumentError names the field that is wrong."""
    _expect_fields(document, RECEIPT_FIELDS, OPTIONAL_RECEIPT_FIELDS, "receipt")
    if document["type"] != "inclusion":
        raise DocumentError(f"field type: expected 'inclusion', got {document['type']!r}")
    leaf_index = _field_int(document, "leaf_index")
    tree_size = _field_int(document, "tree_size")
    record = _field_base64(document, "entry")
    try:
        entry = decode_record(record)
    except EncodingError as error:
        raise DocumentError(f"field entry: not a ledger entry record ({error})") from None
    path = _field_hashes(document, "audit_path")
    head = _field_head(document, "tree_head")
    claims = {}
    for name in OPTIONAL_RECEIPT_FIELDS:
        if name in document:
            want, wanted = (int, "an integer") if name == "record_count" else (str, "a string")
            value = document[name]
            if isinstance(value, bool) or not isinstance(value, want):
                raise DocumentError(f"field {name}: expected {wanted}, got {json_type(value)}")
            claims[name] = value
    return Receipt(leaf_index, tree_size, record, entry, path, head, claims)


def receipt_problem(receipt: Receipt, ledger_public_key: bytes) -> str | None:
    """None if the receipt is true: its head and entry are signed by the ledger, the path leads
    from the entry to the head's root, and every field it states is what the entry says."""
    head, entry = receipt.tree_head, receipt.entry
    claimed_key = receipt.claims.get("ledger_public_key")
    if claimed_key is not None and claimed_key.lower() != ledger_public_key.hex():
        return (f"field ledger_public_key says {claimed_key}, but the receipt is being checked "
                f"with ledger key {ledger_public_key.hex()}")
    if not head.signature_valid(ledger_public_key):
        return "field tree_head: its signature does not verify with this ledger key"
    if receipt.tree_size != head.tree_size:
        return (f"field tree_size says {receipt.tree_size}, but the signed tree_head covers "
                f"{head.tree_size}")
    if not _valid(ledger_public_key, receipt.record[-64:], receipt.record[:-64]):
        return f"field entry: the ledger signature of entry {entry.seq} does not verify"
    if not _valid(entry.submitter_public, entry.submitter_signature, entry.payload):
        return f"field entry: the submitter signature of entry {entry.seq} does not verify"
    if receipt.leaf_index != entry.seq:
        return f"field leaf_index says {receipt.leaf_index}, but the signed entry is {entry.seq}"
    if not verify_inclusion(leaf_hash(receipt.record), receipt.leaf_index, head.tree_size,
                            receipt.audit_path, head.root_hash):
        return "field audit_path does not lead from the entry to the signed root"
    return _claims_problem(receipt)


def _claims_problem(receipt: Receipt) -> str | None:
    entry = receipt.entry
    upload = {k: v for k, v in receipt.claims.items() if k in UPLOAD_FIELDS}
    if not upload:
        return None
    if entry.kind != "dataset":
        return (f"fields {', '.join(upload)} describe an upload, but the signed entry "
                f"{entry.seq} is a {entry.kind} entry")
    from materialabs.store import cid_of_bytes

    says = {
        "upload_id": entry.metadata.get("upload_id"),
        "lab": entry.metadata.get("lab"),
        "dataset_cid": entry.cid,
        "manifest_cid": cid_of_bytes(entry.payload),
        "record_count": entry.metadata.get("record_count"),
    }
    wrong = [
        f"field {name} says {value!r}, the signed entry says {says[name]!r}"
        for name, value in upload.items()
        if value != says[name] or type(value) is not type(says[name])
    ]
    dataset_cid = entry.metadata.get("dataset_cid", entry.cid)
    if dataset_cid != entry.cid:
        wrong.append(f"the signed entry's metadata.dataset_cid {dataset_cid!r} is not its CID")
    return "; ".join(wrong) or None


def check_inclusion_receipt(document: dict[str, Any], ledger_public_key: bytes) -> str | None:
    """None if the receipt proves its entry is in a tree the ledger signed; else why not."""
    try:
        receipt = parse_receipt(document)
    except DocumentError as error:
        return f"receipt is malformed: {error}"
    return receipt_problem(receipt, ledger_public_key)


@dataclass(frozen=True)
class Consistency:
    old_head: SignedTreeHead
    new_head: SignedTreeHead
    proof: list[bytes]


def parse_consistency(document: Any) -> Consistency:
    _expect_fields(document, CONSISTENCY_FIELDS, (), "consistency proof")
    if document["type"] != "consistency":
        raise DocumentError(f"field type: expected 'consistency', got {document['type']!r}")
    return Consistency(_field_head(document, "old_tree_head"),
                       _field_head(document, "new_tree_head"), _field_hashes(document, "proof"))


def consistency_problem(proof: Consistency, ledger_public_key: bytes) -> str | None:
    old, new = proof.old_head, proof.new_head
    for name, head in (("old_tree_head", old), ("new_tree_head", new)):
        if not head.signature_valid(ledger_public_key):
            return f"field {name}: its signature does not verify with this ledger key"
    if not verify_consistency(old.tree_size, new.tree_size, old.root_hash, new.root_hash,
                              proof.proof):
        return (
            f"tree of size {new.tree_size} is not an append-only extension of size {old.tree_size}"
        )
    return None


def check_consistency_document(document: dict[str, Any], ledger_public_key: bytes) -> str | None:
    try:
        proof = parse_consistency(document)
    except DocumentError as error:
        return f"consistency proof is malformed: {error}"
    return consistency_problem(proof, ledger_public_key)


def heads_in_document(document: Any, ledger_public_key: bytes) -> list[SignedTreeHead]:
    """The tree heads a file an auditor kept vouches for: a bare head (tree-head.json, the
    output of `ledger checkpoint`), a receipt's head, or a consistency proof's two heads.
    Receipts and proofs are checked first; DocumentError says why one cannot be used."""
    if isinstance(document, dict) and document.get("type") == "inclusion":
        receipt = parse_receipt(document)
        problem = receipt_problem(receipt, ledger_public_key)
        if problem:
            raise DocumentError(f"not a valid receipt: {problem}")
        return [receipt.tree_head]
    if isinstance(document, dict) and document.get("type") == "consistency":
        proof = parse_consistency(document)
        problem = consistency_problem(proof, ledger_public_key)
        if problem:
            raise DocumentError(f"not a valid consistency proof: {problem}")
        return [proof.old_head, proof.new_head]
    try:
        head = SignedTreeHead.from_json(document, "tree head")
    except EncodingError as error:
        raise DocumentError(str(error)) from None
    if not head.signature_valid(ledger_public_key):
        raise DocumentError("tree head: its signature does not verify with this ledger key")
    return [head]


def _expect_fields(document: Any, required: Sequence[str], optional: Sequence[str],
                   what: str) -> None:
    if not isinstance(document, dict):
        raise DocumentError(f"expected a JSON object ({what}), got {json_type(document)}")
    if "type" in required and "type" not in document:
        raise DocumentError("field type is missing: expected 'inclusion' or 'consistency'")
    missing = [name for name in required if name not in document]
    if missing:
        raise DocumentError(f"missing field {', '.join(missing)} (a {what} holds "
                            f"{', '.join(required)})")
    unknown = sorted(set(document) - set(required) - set(optional))
    if unknown:
        raise DocumentError(f"field {unknown[0]!r} is not part of a {what}, so it cannot be "
                            "checked against the ledger")


def _field_int(document: dict[str, Any], name: str) -> int:
    value = document[name]
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**64:
        raise DocumentError(f"field {name}: expected a non-negative integer, got "
                            f"{json_type(value)}")
    return value


def _field_base64(document: dict[str, Any], name: str) -> bytes:
    import base64
    import binascii

    value = document[name]
    if not isinstance(value, str):
        raise DocumentError(f"field {name}: expected base64 text, got {json_type(value)}")
    try:
        return base64.b64decode(value, validate=True)
    except (ValueError, binascii.Error):
        raise DocumentError(f"field {name}: not valid base64") from None


def _field_hashes(document: dict[str, Any], name: str) -> list[bytes]:
    value = document[name]
    if not isinstance(value, list):
        raise DocumentError(f"field {name}: expected a list of hashes, got {json_type(value)}")
    hashes = []
    for i, item in enumerate(value):
        raw = b""
        if isinstance(item, str) and len(item) == 64:
            try:
                raw = bytes.fromhex(item)
            except ValueError:
                raw = b""
        if len(raw) != 32:
            raise DocumentError(f"field {name}[{i}]: expected 64 hex digits")
        hashes.append(raw)
    return hashes


def _field_head(document: dict[str, Any], name: str) -> SignedTreeHead:
    try:
        return SignedTreeHead.from_json(document[name], f"field {name}")
    except EncodingError as error:
        raise DocumentError(str(error)) from None
