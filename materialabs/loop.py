"""Run a discovery campaign: start it, watch its events, write the report.

Embedded (default): the services (the catalog projector among them) run in this process,
round-robin over the file-backed embedded bus in ``<home>/bus``. Distributed: the services
run as their own processes (``make up``) against Kafka; this process only publishes
``CampaignStarted`` and watches. Either way the watcher is the same consumer and the report
reads the same catalog, which only the catalog service writes.
"""

from __future__ import annotations

import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from materialabs import config
from materialabs.bootstrap import RUN, SERVICE_NAMES, runners
from materialabs.campaign import Campaign
from materialabs.catalog import Catalog
from materialabs.events import Event, decode, default_registry, encode, new_event

SERVICES = SERVICE_NAMES
WATCHED = tuple(RUN.topics)  # what the campaign's watcher reads


@dataclass
class CampaignOutcome:
    campaign_id: str
    finished: Event | None
    report: Path | None
    dft_requests: list[str] = field(default_factory=list)   # candidate ids, in order
    promoted: list[tuple[str, str]] = field(default_factory=list)  # (candidate id, reason)
    counts: Counter = field(default_factory=Counter)
    wall_time_s: float = 0.0
    gpaw_checks: Any = None  # materialabs.dft.check.GpawCheckReport when checks were asked for


class Watcher:
    """Follows one campaign's events; keeps the progress bars and the promotions (the
    catalog service, not the watcher, writes the catalog)."""

    def __init__(self, campaign: Campaign, campaign_id: str, catalog: Catalog,
                 progress: bool) -> None:
        self.campaign = campaign
        self.campaign_id = campaign_id
        self.catalog = catalog
        self.outcome = CampaignOutcome(campaign_id, None, None)
        self.promoted_rows: list[dict[str, Any]] = []
        self.promotions: list[Event] = []  # kept whole: the GPAW check needs their crystals
        self.generation: Counter = Counter()
        self._seen: set[str] = set()
        self._bars = _Bars(campaign, progress)

    def see(self, event: Event) -> None:
        # At-least-once delivery: a redelivered event carries the same id; count it once.
        if event.campaign_id != self.campaign_id or event.event_id in self._seen:
            return
        self._seen.add(event.event_id)
        self.outcome.counts[event.type] += 1
        handler = getattr(self, f"_on_{event.type}", None)
        if handler is not None:
            handler(event)

    def _on_GenerationFinished(self, event: Event) -> None:
        self.generation.update({k: int(v) for k, v in event["counts"].items()})
        self._bars.round(event["round"], event["count"])

    def _on_CandidatePredicted(self, event: Event) -> None:
        self._bars.predicted()

    def _on_DftRequested(self, event: Event) -> None:
        self.outcome.dft_requests.append(event["candidate_id"])

    def _on_DftCompleted(self, event: Event) -> None:
        self._bars.dft(event["status"])

    def _on_CandidatePromoted(self, event: Event) -> None:
        self.outcome.promoted.append((event["candidate_id"], event["reason"]))
        self.promotions.append(event)
        row = {"candidate_id": event["candidate_id"], "reduced_formula": event["reduced_formula"],
               "reason": event["reason"]}
        for value in event["values"]:
            row[f"{value['name']} ({value['unit']}, {value['source']})"] = value["value"]
        self.promoted_rows.append(row)

    def _on_CampaignFinished(self, event: Event) -> None:
        self.outcome.finished = event
        self._bars.close()

    def flush(self) -> None:
        """Nothing to write: kept for callers of the former row-writing watcher."""


def wait_for_catalog(catalog: Catalog, campaign_id: str, dft_results: int,
                     timeout_s: float = 60.0) -> None:
    """Until the catalog holds this campaign's ``dft_results`` DFT rows (a distributed
    catalog service may still be projecting the last events when the campaign finishes)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if catalog.count("campaign_id = ? AND kind = 'dft'", (campaign_id,)) >= dft_results:
            return
        time.sleep(0.2)
    print(f"warning: the catalog has not caught up with campaign {campaign_id} after "
          f"{timeout_s:.0f} s; the report may miss its last results", file=sys.stderr)


class _Bars:
    def __init__(self, campaign: Campaign, enabled: bool) -> None:
        self.enabled = enabled and sys.stderr.isatty()
        self._predicted = self._dft = None
        if self.enabled:
            from tqdm import tqdm

            self._dft = tqdm(total=campaign.dft_budget, desc="DFT calls", unit="job",
                             position=0)
            self._predicted = tqdm(desc="candidates scored", unit="cand", position=1)

    def round(self, number: int, count: int) -> None:
        message = f"round {number}: {count} candidates generated"
        if self.enabled and self._dft is not None:
            self._dft.set_postfix_str(f"round {number}")
            self._dft.write(message)
        elif not self.enabled:
            print(message, file=sys.stderr)

    def predicted(self) -> None:
        if self._predicted is not None:
            self._predicted.update()

    def dft(self, status: str) -> None:
        if self._dft is not None:
            self._dft.update()

    def close(self) -> None:
        for bar in (self._dft, self._predicted):
            if bar is not None:
                bar.close()


def run_campaign(campaign: Campaign, *, home: Path | None = None, distributed: bool = False,
                 report_dir: Path | None = None, progress: bool = True,
                 campaign_id: str | None = None, timeout_s: float | None = None,
                 gpaw_checks: int = 0) -> CampaignOutcome:
    """Run one campaign and write its report. ``gpaw_checks`` > 0 then re-runs that many of
    the smallest promoted candidates with real GPAW (quick settings) for the report only:
    nothing of it reaches the bus, so the campaign's decisions do not depend on it."""
    from materialabs.bus import open_bus
    from materialabs.platform import ensure_platform, platform_paths, publish_default_model

    started = time.monotonic()
    home = home or config.home()
    if distributed:
        # The services own the ledger (one writer); `materialabs setup` prepared the home.
        platform = platform_paths(home)
    else:
        platform = ensure_platform(home)
        publish_default_model(platform)
    campaign_id = campaign_id or str(uuid.uuid4())
    bootstrap = config.kafka_bootstrap() if distributed else None
    if distributed and not bootstrap:
        raise RuntimeError("--distributed needs MATERIALABS_KAFKA (run `make up` first)")
    bus = open_bus(bootstrap, directory=None if bootstrap else home / "bus")
    registry = default_registry()
    in_process = [] if distributed else runners(bus)
    bus.create_topics(list(WATCHED))
    watcher = Watcher(campaign, campaign_id, Catalog(config.catalog_dir()), progress)
    consumer = bus.consumer(f"campaign-watch-{campaign_id}", list(WATCHED))
    start = new_event("CampaignStarted", campaign.to_event_fields(), producer="materialabs-run",
                      campaign_id=campaign_id, key=campaign_id)
    producer = bus.producer()
    producer.send(start.topic or "campaigns", encode(start, registry), key=campaign_id.encode())
    producer.flush()
    limit = timeout_s if timeout_s is not None else campaign.wall_time_budget_s
    try:
        while watcher.outcome.finished is None:
            for runner in in_process:
                runner.step(0.0)
            for record in consumer.poll(0.05 if in_process else 0.5):
                watcher.see(decode(record.value, registry, topic=record.topic))
            watcher.flush()
            if time.monotonic() - started > limit:
                raise TimeoutError(f"campaign {campaign.name} did not finish within {limit:.0f} s "
                                   "(wall_time_budget_s)")
        # Let the services settle what the last events caused (offset commits, state).
        for runner in in_process:
            while runner.step(0.0):
                pass
    finally:
        watcher.flush()
        consumer.close()
        for runner in in_process:
            runner.close()
            close = getattr(getattr(runner.context.ports, "ledger", None), "close", None)
            if close is not None:
                close()  # the embedded ledger writer holds the file lock
        bus.close()
    wait_for_catalog(watcher.catalog, campaign_id, watcher.outcome.counts["DftCompleted"])
    watcher.outcome.wall_time_s = time.monotonic() - started
    if gpaw_checks > 0:
        watcher.outcome.gpaw_checks = _gpaw_checks(campaign, watcher, gpaw_checks)
    folder = report_dir or (home / "reports" / f"{campaign.name}-{campaign_id[:8]}")
    watcher.outcome.report = _write_report(campaign, watcher, platform, folder)
    return watcher.outcome


def _gpaw_checks(campaign: Campaign, watcher: Watcher, count: int) -> Any:
    from materialabs import ports
    from materialabs.dft.check import candidates_from_promotions, run_gpaw_checks

    return run_gpaw_checks(candidates_from_promotions(watcher.promotions), count,
                           store=ports.store(), campaign_id=watcher.campaign_id,
                           round_number=campaign.rounds,  # after the campaign's last round
                           say=lambda line: print(line, file=sys.stderr, flush=True))


def _write_report(campaign: Campaign, watcher: Watcher, platform: Any, folder: Path) -> Path:
    import pandas as pd

    from materialabs.catalog import SCHEMA
    from materialabs.report import ReportInputs, write_report

    rows = pd.DataFrame(watcher.catalog.select("campaign_id = ?", (watcher.campaign_id,)),
                        columns=list(SCHEMA.names))
    inputs = ReportInputs(
        campaign=campaign, campaign_id=watcher.campaign_id,
        predictions=rows[rows["kind"] == "prediction"], dft=rows[rows["kind"] == "dft"],
        promoted=pd.DataFrame(watcher.promoted_rows),
        ledger_verdict=verify_ledger(platform.ledger_dir),
        generation_counts=dict(watcher.generation),
        wall_time_s=watcher.outcome.wall_time_s,
        gpaw_checks=watcher.outcome.gpaw_checks)
    return write_report(inputs, folder)


def verify_ledger(ledger_dir: Path) -> str:
    """Export the ledger and verify the export as an auditor would; one line back."""
    import tempfile

    from ledger import Ledger
    from ledger.log import LogError
    from ledger.verify import verify_file

    with tempfile.TemporaryDirectory() as tmp:
        export = Path(tmp) / "ledger.export"
        try:
            with Ledger.open(ledger_dir, readonly=True) as ledger:
                ledger.export(export)
                public = ledger.ledger_public
                size = len(ledger)
        except LogError as error:  # corruption: the ledger refuses to read past it
            return f"`ledger verify` FAILED: {error}"
        report = verify_file(export, public)
    if report.ok:
        return f"`ledger verify` passed: {size} entries, chain, signatures and tree heads"
    return f"`ledger verify` FAILED at entry {report.first_bad_seq}: {report.reason}"
