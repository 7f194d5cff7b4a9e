"""Wiring of the ingest service: its handlers and the ports they use."""

from __future__ import annotations

import os

from ledger.view import LedgerView
from materialabs.runtime import ServiceSpec
from services.ingest.handlers import EMITS, HANDLERS, IngestPorts


def ingest_ports() -> IngestPorts:
    from materialabs import config
    from materialabs.store import open_store

    ledger = os.environ.get("MATERIALABS_LEDGER") or str(config.ledger_dir())
    return IngestPorts(store=open_store(config.store_url()), ledger=LedgerView(ledger))


SERVICE = ServiceSpec(name="ingest", handlers=HANDLERS, emits=EMITS, ports=ingest_ports,
                      ports_type=IngestPorts,
                      # A leader and standbys: request -> upload map is not partition-affine.
                      single_active=True)
