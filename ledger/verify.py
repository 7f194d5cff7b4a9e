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

import multiprocessing
import os
import sys
import time
from collections import deque
from collections.abc import Iterable, Iterator
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
)
from ledger.log import EXPORT_MAGIC, FrameProblem, LogError, open_frames
from ledger.merkle import (
    MerkleTree,
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


class _Audit:
    def __init__(
        self,
        ledger_public: bytes,
        store: Any,
        all_signatures: bool,
        trusted_head: SignedTreeHead | None,
        checker: _SignatureChecker,
    ) -> None:
        self.ledger_public = ledger_public
        self.store = store
        self.all_signatures = all_signatures
        self.trusted_head = trusted_head
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
            seq, entry.kind, entry.cid, entry.metadata, entry.payload, entry.submitter_public
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
        if self.trusted_head is not None and self.trusted_head.tree_size == seq:
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
        head = self.trusted_head
        assert head is not None
        if not head.signature_valid(self.ledger_public):
            raise _Failure(seq, "the trusted tree head given is not signed by this ledger key")
        if head.root_hash != self.tree.root():
            raise _Failure(
                seq, f"entries 0..{seq - 1} do not match the trusted tree head of size {seq}"
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
        if self.trusted_head is not None and self.trusted_head.tree_size > seq:
            raise _Failure(
                seq,
                f"only {seq} entries, but a trusted tree head covers "
                f"{self.trusted_head.tree_size}: entries are missing",
            )
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
) -> VerifyReport:
    """Check a sequence of records (entries, then the closing tree head); report the first bad one.

    ``records`` are record bytes as produced by ``Entry.record_bytes`` (a ``FrameProblem``
    stands for an unreadable frame). ``store`` (anything with ``.get(cid)``) makes it
    also re-fetch and re-hash the content behind every CID.
    """
    started = time.perf_counter()
    workers = _default_workers() if workers is None else workers
    checker = _SignatureChecker(workers)
    audit = _Audit(ledger_public_key, store, all_signatures, trusted_head, checker)
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
) -> VerifyReport:
    """Verify an export file (closing head required) or a live ``ledger.log``."""
    path = Path(path)
    if path.is_dir():
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
    )


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


def check_inclusion_receipt(document: dict[str, Any], ledger_public_key: bytes) -> str | None:
    """None if the receipt proves its entry is in a tree the ledger signed; else why not."""
    import base64

    try:
        head = SignedTreeHead.from_json(document["tree_head"], "tree_head")
        record = base64.b64decode(document["entry"], validate=True)
        index = int(document["leaf_index"])
        path = [bytes.fromhex(h) for h in document["audit_path"]]
        entry = decode_record(record)
    except (KeyError, TypeError, ValueError) as error:
        return f"receipt is malformed: {error}"
    if not head.signature_valid(ledger_public_key):
        return "tree head signature does not verify with this ledger key"
    if entry.seq != index:
        return f"entry says seq {entry.seq} but the proof is for leaf {index}"
    if not _valid(ledger_public_key, record[-64:], record[:-64]):
        return "the entry's ledger signature does not verify"
    if not verify_inclusion(leaf_hash(record), index, head.tree_size, path, head.root_hash):
        return "audit path does not lead from the entry to the signed root"
    return None


def check_consistency_document(document: dict[str, Any], ledger_public_key: bytes) -> str | None:
    try:
        old = SignedTreeHead.from_json(document["old_tree_head"], "old_tree_head")
        new = SignedTreeHead.from_json(document["new_tree_head"], "new_tree_head")
        proof = [bytes.fromhex(h) for h in document["proof"]]
    except (KeyError, TypeError, ValueError) as error:
        return f"consistency proof is malformed: {error}"
    for name, head in (("old", old), ("new", new)):
        if not head.signature_valid(ledger_public_key):
            return f"{name} tree head signature does not verify with this ledger key"
    if not verify_consistency(old.tree_size, new.tree_size, old.root_hash, new.root_hash, proof):
        return (
            f"tree of size {new.tree_size} is not an append-only extension of size {old.tree_size}"
        )
    return None
