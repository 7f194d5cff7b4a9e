"""Model versions the predictor may use: only those on the ledger, only with verified bytes.

A model is refused when its CID has no ``model`` entry in the ledger, or when the store's
bytes do not hash to the CID (the store checks that on read), or when the bundle is not a
well-formed tensors-only archive (``ensemble_from_bundle`` refuses pickled objects).
"""

from __future__ import annotations

import logging
from typing import Any

from ledger.view import LedgerView

log = logging.getLogger(__name__)


class ModelRefused(Exception):
    """A model CID failed the ledger or content check; the message says which and why."""


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
