"""Every event the catalog service reads, delivered twice (the second time in reverse order,
so cross-topic references arrive both ways round): the projection equals the live catalog."""

from __future__ import annotations

import uuid

from ledger.view import LedgerView
from materialabs import ports
from materialabs.bus.embedded import EmbeddedBus
from materialabs.catalog import Catalog
from materialabs.events import decode, default_registry
from materialabs.runtime import Context, dispatch
from services.catalog.app import SERVICE
from services.catalog.handlers import HANDLERS, CatalogPorts


def _all_events(home):
    bus = EmbeddedBus(home / "bus")
    try:
        consumer = bus.consumer(f"redelivery-{uuid.uuid4().hex}", SERVICE.input_topics)
        registry, events = default_registry(), []
        while batch := consumer.poll(0.2, 1000):
            events += [decode(r.value, registry, topic=r.topic) for r in batch]
        consumer.close()
    finally:
        bus.close()
    return events


def _rows(catalog):
    return {
        "rows": sorted(catalog.fetch("SELECT * FROM rows"), key=lambda r: r["record_id"]),
        "promotions": catalog.fetch("SELECT * FROM promotions ORDER BY campaign_id, "
                                    "candidate_id"),
        "datasets": catalog.fetch("SELECT * FROM datasets ORDER BY dataset_cid"),
        "campaigns": catalog.fetch("SELECT * FROM campaigns ORDER BY campaign_id"),
    }


def test_every_event_twice_leaves_the_catalog_as_the_live_run_made_it(gateway_home, tmp_path):
    events = _all_events(gateway_home)
    kinds = {e.type for e in events}
    assert {"MaterialRecord", "DatasetAccepted", "CandidatePredicted", "DftCompleted",
            "CandidatePromoted", "CampaignStarted"} <= kinds
    fresh = Catalog(tmp_path / "catalog")
    ctx = Context("catalog", {}, CatalogPorts(catalog=fresh, hull=ports.hull,
                                              ledger=LedgerView(gateway_home / "ledger")))
    for event in events:
        list(dispatch(HANDLERS, event, ctx))
    once = _rows(fresh)
    for event in reversed(events):
        list(dispatch(HANDLERS, event, ctx))
    assert _rows(fresh) == once
    live = _rows(Catalog(gateway_home / "catalog", readonly=True))
    assert once == live
    assert len(once["rows"]) == len({r["record_id"] for r in once["rows"]}) > 0
