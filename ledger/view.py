"""A read-only view of a live ledger for the services that read it but never write it.

The ledger service is the single writer. Ingest (key checks, replays), the predictor and
the retrainer (is this model on record?) read the log file instead, re-opening it read-only
whenever it has grown, so they always see entries appended since their last look.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ledger.ledger import LOG_NAME, Ledger


class LedgerView:
    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self._ledger: Ledger | None = None
        self._stamp: tuple[int, int] | None = None

    def current(self) -> Ledger:
        stat = (self.directory / LOG_NAME).stat()
        stamp = (stat.st_size, stat.st_mtime_ns)
        if self._ledger is None or stamp != self._stamp:
            self._ledger = Ledger.open(self.directory, readonly=True)
            self._stamp = stamp
        return self._ledger

    def __len__(self) -> int:
        return len(self.current())

    def key_record(self, public: bytes) -> Any:
        return self.current().key_record(public)

    def find_payload(self, payload: bytes) -> Any:
        return self.current().find_payload(payload)

    def find(self, cid: str) -> Any:
        return self.current().find(cid)

    def latest_model_cid(self) -> str | None:
        ledger = self.current()
        for seq in range(len(ledger) - 1, -1, -1):
            entry = ledger.get(seq)
            if entry.kind == "model":
                return str(entry.cid)
        return None
