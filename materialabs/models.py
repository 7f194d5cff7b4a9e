"""Model versions the predictor may use: only those on the ledger, only with verified bytes.

A model is refused when its CID has no ``model`` entry in the ledger, or when the store's
bytes do not hash to the CID (the store checks that on read), or when the bundle is not a
well-formed tensors-only archive (``ensemble_from_bundle`` refuses pickled objects).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


class ModelRefused(Exception):
    """A model CID failed the ledger or content check; the message says which and why."""


class LedgerView:
    """A read-only view of the ledger file that refreshes when the file grows."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self._ledger: Any = None
        self._size = -1

    def _log_size(self) -> int:
        files = sorted(self.directory.glob("*.log"))
        return sum(f.stat().st_size for f in files) if files else 0

    def current(self) -> Any:
        from ledger import Ledger

        size = self._log_size()
        if self._ledger is None or size != self._size:
            self._ledger = Ledger.open(self.directory, readonly=True)
            self._size = size
        return self._ledger

    def find(self, cid: str) -> Any:
        return self.current().find(cid)

    def latest_model_cid(self) -> str | None:
        ledger = self.current()
        for seq in range(len(ledger) - 1, -1, -1):
            entry = ledger.get(seq)
            if entry.kind == "model":
                return str(entry.cid)
        return None


class ModelRegistry:
    def __init__(self, store: Any, ledger: LedgerView) -> None:
        self.store = store
        self.ledger = ledger
        self._loaded: dict[str, Any] = {}
        self.refused: dict[str, str] = {}

    def load(self, cid: str) -> Any:
        """The ensemble behind ``cid``, after the ledger and content checks."""
        if cid in self._loaded:
            return self._loaded[cid]
        from materialabs.ml.bundle import BundleError, ensemble_from_bundle
        from materialabs.store import ContentError

        entry = self.ledger.find(cid)
        if entry is None or entry.kind != "model":
            reason = f"model {cid}: no model entry in the ledger; refusing to load it"
            self.refused[cid] = reason
            raise ModelRefused(reason)
        try:
            ensemble = ensemble_from_bundle(self.store.get(cid))
        except (ContentError, BundleError) as error:
            reason = f"model {cid} (ledger seq {entry.seq}): {error}"
            self.refused[cid] = reason
            raise ModelRefused(reason) from error
        self._loaded[cid] = ensemble
        return ensemble

    def latest(self) -> str | None:
        return self.ledger.latest_model_cid()
