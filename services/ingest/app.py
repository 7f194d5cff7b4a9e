"""Wiring of the ingest service: topics, and the ports its handler uses."""

from __future__ import annotations

import os
from typing import Any

from ledger.view import LedgerView
from materialabs.runtime import ServiceSpec
from services.ingest.handlers import handle

CONSUMES = ["uploads.submitted", "ledger.entries", "uploads.rejected"]
PRODUCES = ["ledger.requests", "datasets.accepted", "materials.records"]


def ingest_ports() -> dict[str, Any]:
    from materialabs import config
    from materialabs.catalog import Catalog
    from materialabs.store import open_store

    ledger = os.environ.get("MATERIALABS_LEDGER") or str(config.ledger_dir())
    return {
        "store": open_store(config.store_url()),
        "ledger": LedgerView(ledger),
        "catalog": Catalog(config.catalog_dir()),
    }


SERVICE = ServiceSpec(
    name="ingest",
    consumes=CONSUMES,
    handler=handle,
    produces=PRODUCES,
    ports=ingest_ports,
    # Its request -> upload map is written on the upload's partition but read on the
    # ledger entry's (keyed by seq): not partition-affine (docs/events.md, Scale-out).
    single_active=True,
)
