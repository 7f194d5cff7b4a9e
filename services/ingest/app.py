"""Wiring of the ingest service: topics, and the ports its handler uses."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from materialabs.runtime import ServiceSpec
from services.ingest.handlers import handle

CONSUMES = ["uploads.submitted", "ledger.entries", "uploads.rejected"]
PRODUCES = ["ledger.requests", "datasets.accepted", "materials.records"]


class LedgerReadView:
    """The ledger's key registry and payloads, re-read when the log file grows.

    Ingest never writes the ledger (the ledger service is the single writer); it reads the
    log to refuse unknown or revoked keys and replays before asking for an append.
    """

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self._ledger: Any = None
        self._stamp: tuple[int, int] | None = None

    def _current(self) -> Any:
        from ledger import Ledger

        stat = (self.directory / "ledger.log").stat()
        stamp = (stat.st_size, stat.st_mtime_ns)
        if stamp != self._stamp:
            self._ledger = Ledger.open(self.directory, readonly=True)
            self._stamp = stamp
        return self._ledger

    def key_record(self, public: bytes) -> Any:
        return self._current().key_record(public)

    def find_payload(self, payload: bytes) -> Any:
        return self._current().find_payload(payload)

    def __len__(self) -> int:
        return len(self._current())


def ingest_ports() -> dict[str, Any]:
    from materialabs import config
    from materialabs.catalog import Catalog
    from materialabs.store import open_store

    ledger = os.environ.get("MATERIALABS_LEDGER") or str(config.ledger_dir())
    return {
        "store": open_store(config.store_url()),
        "ledger": LedgerReadView(ledger),
        "catalog": Catalog(config.catalog_dir()),
    }


SERVICE = ServiceSpec(
    name="ingest",
    consumes=CONSUMES,
    handler=handle,
    produces=PRODUCES,
    ports=ingest_ports,
)
