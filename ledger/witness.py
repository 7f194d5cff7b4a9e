"""Audit a remote ledger from its C2SP transparency-log API, and remember what was seen.

``audit_remote(url, ledger_public)`` does a witness's job over ``<url>/checkpoint`` and
``<url>/tile/...``:

1. the checkpoint note must be signed by the ledger key (signed-note, Ed25519);
2. every entry bundle is fetched; its records must hash to the served level-0 tiles, the
   root computed from the hash tiles alone must be the checkpoint's, and so must the root of
   the records themselves;
3. the records get the full audit (``verify_export``: chain, rules, key roles, replays,
   signatures, checkpoints, K);
4. the last checkpoint seen (kept in a state file) must be a prefix of this one: its size no
   larger and its root the root of the first that-many records. A log that was cut or
   rewritten, or shows another history (a split view), is refused and the state is kept.

Only after all of that is the new checkpoint written to the state file. Each run reads the
whole log (a few hundred bytes per entry): fine for an auditor, not an incremental monitor.
"""

from __future__ import annotations

import base64
import json
import os
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ledger.merkle import MerkleTree, leaf_hash
from ledger.tlog import (
    TILE_WIDTH,
    Checkpoint,
    TlogError,
    default_origin,
    open_checkpoint,
    parse_entry_bundle,
    root_from_tiles,
    tile_path,
    tile_span,
)
from ledger.verify import VerifyReport, verify_export

MAX_RESOURCE = 64 << 20  # a bundle of 256 records is far below this
Fetch = Callable[[str], bytes]


class RemoteError(Exception):
    """The remote log could not be read (network, HTTP status): not a verdict on it."""


@dataclass
class RemoteAudit:
    ok: bool
    reason: str = ""
    checkpoint: Checkpoint | None = None
    previous_size: int | None = None
    report: VerifyReport | None = None
    notes: list[str] = field(default_factory=list)


def http_fetch(timeout: float = 30.0) -> Fetch:
    def fetch(url: str) -> bytes:
        try:
            with urllib.request.urlopen(url, timeout=timeout) as reply:  # noqa: S310
                data = reply.read(MAX_RESOURCE + 1)
        except urllib.error.HTTPError as error:
            raise RemoteError(f"GET {url}: HTTP {error.code} {error.reason}") from None
        except (urllib.error.URLError, OSError) as error:
            raise RemoteError(f"GET {url}: {getattr(error, 'reason', error)}") from None
        if len(data) > MAX_RESOURCE:
            raise RemoteError(f"GET {url}: more than {MAX_RESOURCE} bytes")
        return data
    return fetch


def default_state(home: Path, origin: str) -> Path:
    """Where the last checkpoint of ``origin`` is remembered inside a home."""
    return home / "witness" / (origin.replace("/", "_") + ".json")


def read_state(path: Path, origin: str, public: bytes) -> Checkpoint | None:
    """The checkpoint remembered at ``path`` (re-verified), or None if there is none yet."""
    if not path.exists():
        return None
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        note = base64.b64decode(document["checkpoint"], validate=True)
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise TlogError(f"state file {path}: unreadable ({error})") from None
    return open_checkpoint(note, origin, public)


def write_state(path: Path, checkpoint: Checkpoint, url: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    document = {"origin": checkpoint.origin, "tree_size": checkpoint.size,
                "root_hash": checkpoint.root.hex(), "url": url,
                "checkpoint": base64.b64encode(checkpoint.note).decode("ascii")}
    tmp.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def audit_remote(
    url: str,
    ledger_public: bytes,
    state_path: Path | None,
    *,
    origin: str | None = None,
    fetch: Fetch | None = None,
    workers: int | None = None,
) -> RemoteAudit:
    """Audit the log at ``url`` (the /log prefix); see the module docstring."""
    url = url.rstrip("/")
    fetch = fetch or http_fetch()
    origin = origin or default_origin(ledger_public)
    try:
        previous = read_state(state_path, origin, ledger_public) if state_path else None
    except TlogError as error:
        return RemoteAudit(False, str(error))
    try:
        checkpoint = open_checkpoint(fetch(f"{url}/checkpoint"), origin, ledger_public)
    except TlogError as error:
        return RemoteAudit(False, str(error))
    size = checkpoint.size
    audit = RemoteAudit(False, checkpoint=checkpoint,
                        previous_size=None if previous is None else previous.size)
    served: dict[tuple[int, int], bytes] = {}

    def tile(level: int, index: int, width: int) -> bytes:
        # Ask for the tile as the checkpoint's tree has it (full if it is full) and cut it:
        # a log may drop an old partial tile once the full one exists (tlog-tiles).
        have = min(TILE_WIDTH, size // tile_span(level) - index * TILE_WIDTH)
        if (level, index) not in served:
            data = fetch(f"{url}/{tile_path(level, index, have)}")
            if len(data) != 32 * have:
                raise TlogError(f"{tile_path(level, index, have)}: {len(data)} bytes, expected "
                                f"{32 * have}")
            served[(level, index)] = data
        return served[(level, index)][:32 * width]

    records: list[bytes] = []
    tree = MerkleTree()
    try:
        for index in range(-(-size // TILE_WIDTH)):
            width = min(TILE_WIDTH, size - index * TILE_WIDTH)
            bundle = parse_entry_bundle(fetch(f"{url}/{tile_path(None, index, width)}"))
            if len(bundle) != width:
                raise TlogError(f"{tile_path(None, index, width)}: {len(bundle)} entries, "
                                f"expected {width}")
            hashes = [leaf_hash(record) for record in bundle]
            if b"".join(hashes) != tile(0, index, width):
                first = next(i for i, h in enumerate(hashes)
                             if h != tile(0, index, width)[32 * i:32 * i + 32])
                raise TlogError(f"entry {index * TILE_WIDTH + first}: its bundle bytes do not "
                                "hash to its level-0 tile hash")
            records += bundle
            for h in hashes:
                tree.append_leaf_hash(h)
        if root_from_tiles(tile, size) != checkpoint.root:
            raise TlogError("the root computed from the hash tiles is not the checkpoint's")
    except TlogError as error:
        audit.reason = str(error)
        return audit
    if tree.root() != checkpoint.root:
        audit.reason = "the root of the entries is not the checkpoint's"
        return audit
    if previous is not None:
        if previous.size > size:
            audit.reason = (f"INCONSISTENT: the log shows {size} entries, but a checkpoint seen "
                            f"before covered {previous.size}: entries were cut")
            return audit
        if tree.root(previous.size) != previous.root:
            audit.reason = (f"INCONSISTENT: the first {previous.size} entries are not the ones "
                            "the checkpoint seen before covered (rewritten history or a split "
                            "view)")
            return audit
        audit.notes.append(f"consistent with the checkpoint seen before (size {previous.size})")
    report = verify_export(records, ledger_public, require_closing_head=False, workers=workers)
    audit.report = report
    if not report.ok:
        audit.reason = f"entry {report.first_bad_seq}: {report.reason}"
        return audit
    audit.ok = True
    if state_path is not None:
        write_state(state_path, checkpoint, url)
    return audit


__all__ = ["RemoteAudit", "RemoteError", "audit_remote", "default_state", "http_fetch"]
