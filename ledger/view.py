"""A read-only view of a live ledger for the services that read it but never write it.

The ledger service is the single writer. Ingest (key checks, replays), the predictor and
the retrainer (is this model on record?) read the log file instead. When the file has
changed since the last look, the view reads only the entries appended since
(``Ledger.refresh``), so a look costs one ``stat`` plus the new entries, not the whole log.

It still notices a log changed underneath it: a log that shrank, whose last entry read
before is no longer where it was, or that is a different file (replaced) whose first
entries are not the ones read before, raises LogError. (A change further back inside a log
that keeps its size and inode is for the writer, which re-reads everything on open, and
for auditors.)
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ledger.files import shown
from ledger.ledger import LOG_NAME, Ledger
from ledger.log import LogError


class LedgerView:
    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self._ledger: Ledger | None = None
        self._file: tuple[int, int] | None = None  # (device, inode) of the log read
        self._stamp: tuple[int, int] | None = None  # (size, mtime) at the last look

    def current(self) -> Ledger:
        path = self.directory / LOG_NAME
        try:
            info = os.stat(path)
        except OSError as error:
            raise LogError(f"cannot read the ledger log {shown(path)}: {error.strerror}") from None
        file, stamp = (info.st_dev, info.st_ino), (info.st_size, info.st_mtime_ns)
        if self._ledger is None:
            self._ledger = Ledger.open(self.directory, readonly=True)
        elif file != self._file:
            self._ledger = self._reopened(self._ledger)
        elif stamp != self._stamp:
            self._ledger.refresh()
        self._file, self._stamp = file, stamp
        return self._ledger

    def _reopened(self, seen: Ledger) -> Ledger:
        """The log is another file now: fine only if it extends what was read before."""
        fresh = Ledger.open(self.directory, readonly=True)
        size = len(seen)
        if len(fresh) < size or fresh.tree.root(size) != seen.root_hash:
            raise LogError(
                f"{shown(self.directory / LOG_NAME)} was replaced by a log that does not "
                f"extend the {size} entries read before (it holds {len(fresh)}); refusing "
                "to use it"
            )
        return fresh

    def __len__(self) -> int:
        return len(self.current())

    def key_record(self, public: bytes) -> Any:
        return self.current().key_record(public)

    def find_payload(self, payload: bytes) -> Any:
        return self.current().find_payload(payload)

    def find(self, cid: str) -> Any:
        return self.current().find(cid)

    def latest_model_cid(self) -> str | None:
        entry = self.current().latest("model")
        return None if entry is None else str(entry.cid)
