"""Run a discovery campaign: start it, watch its events, write the report.

Embedded (default): the services (the catalog projector among them) run in this process,
round-robin over the file-backed embedded bus in ``<home>/bus``. Distributed: the services
run as their own processes (``make up``) against Kafka; this process only publishes
``CampaignStarted`` and watches. Either way the watcher is the same consumer and the report
reads the same catalog, which only the catalog service writes.
"""

from __future__ import annotations

import json
import os
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from materialabs import config
from materialabs import progress as progress_
from materialabs.bootstrap import RUN, SERVICE_NAMES, runners
from materialabs.campaign import Campaign
from materialabs.catalog import Catalog
from materialabs.events import Event, decode, default_registry, encode, new_event

SERVICES = SERVICE_NAMES
WATCHED = tuple(RUN.topics)  # what the campaign's watcher reads
RUN_RECORD = "run.json"      # in the report folder and as <home>/runs/<campaign id>.json
PARTIAL_EXIT = 75            # EX_TEMPFAIL: stopped at the wall-time budget, resumable


@dataclass
class CampaignOutcome:
    campaign_id: str
    finished: Event | None
    report: Path | None
    dft_requests: list[str] = field(default_factory=list)   # candidate ids, in order
    promoted: list[tuple[str, str]] = field(default_factory=list)  # (candidate id, reason)
    counts: Counter = field(default_factory=Counter)
    wall_time_s: float = 0.0  # over every session of the campaign (a resumed one adds up)
    gpaw_checks: Any = None  # materialabs.dft.check.GpawCheckReport when checks were asked for
    partial: bool = False    # stopped at the wall-time budget; resumable (`run --resume`)
    stopped: str = ""        # why it stopped early, for the report and the command line


class Watcher:
    """Follows one campaign's events; reports progress and keeps the promotions (the
    catalog service, not the watcher, writes the catalog). It never commits offsets, so a
    watcher of a resumed campaign reads the campaign from its first event again."""

    def __init__(self, campaign: Campaign, campaign_id: str, catalog: Catalog) -> None:
        self.campaign = campaign
        self.campaign_id = campaign_id
        self.catalog = catalog
        self.outcome = CampaignOutcome(campaign_id, None, None)
        self.promotions: list[Event] = []  # kept whole: the GPAW check needs their crystals
        self.generation: Counter = Counter()
        self._seen: set[str] = set()

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
        progress_.expect("candidates", int(event["count"]))
        progress_.advance("rounds")
        progress_.note(f"round {event['round']}: {event['count']} candidates generated")

    def _on_CandidatePredicted(self, event: Event) -> None:
        progress_.advance("candidates")

    def _on_DftRequested(self, event: Event) -> None:
        self.outcome.dft_requests.append(event["candidate_id"])

    def _on_DftCompleted(self, event: Event) -> None:
        progress_.advance("dft")

    def _on_CandidatePromoted(self, event: Event) -> None:
        self.outcome.promoted.append((event["candidate_id"], event["reason"]))
        self.promotions.append(event)

    def _on_CampaignFinished(self, event: Event) -> None:
        self.outcome.finished = event

    def flush(self) -> None:
        """Nothing to write: kept for callers of the former row-writing watcher."""


def wait_for_catalog(catalog: Catalog, campaign_id: str, dft_results: int,
                     timeout_s: float = 60.0, promoted: int = 0) -> None:
    """Until the catalog holds this campaign's ``dft_results`` DFT rows and ``promoted``
    promoted candidates (a distributed catalog service may still be projecting the last
    events when the campaign finishes)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if catalog.count("campaign_id = ? AND kind = 'dft'", (campaign_id,)) >= dft_results \
                and _promoted_count(catalog, campaign_id) >= promoted:
            return
        time.sleep(0.2)
    print(f"warning: the catalog has not caught up with campaign {campaign_id} after "
          f"{timeout_s:.0f} s; the report may miss its last results", file=sys.stderr)


def _promoted_count(catalog: Catalog, campaign_id: str) -> int:
    found = catalog.fetch("SELECT COUNT(*) AS n FROM promotions WHERE campaign_id = ?",
                          (campaign_id,))
    return int(found[0]["n"]) if found else 0


def run_campaign(campaign: Campaign, *, home: Path | None = None, distributed: bool = False,
                 report_dir: Path | None = None, progress: bool | progress_.Sink = True,
                 campaign_id: str | None = None, timeout_s: float | None = None,
                 gpaw_checks: int = 0, resume: bool = False, wall_time_before_s: float = 0.0,
                 budget_clock: Callable[[], float] = time.monotonic) -> CampaignOutcome:
    """Run one campaign and write its report. ``gpaw_checks`` > 0 then re-runs that many of
    the smallest promoted candidates with real GPAW (quick settings) for the report only:
    nothing of it reaches the bus, so the campaign's decisions do not depend on it.

    At ``timeout_s`` (default: the campaign's ``wall_time_budget_s``) of this session the
    campaign stops between two steps of its services, writes a partial report and returns
    with ``outcome.partial`` set. Every service's offsets, processed ids and state are
    durable in the home's bus, so ``resume=True`` with the same ``campaign_id`` and home
    re-opens them and carries on (without a second ``CampaignStarted``) to the result an
    uninterrupted run gives. ``budget_clock`` (seconds, monotonic) is what the budget is
    measured on; a test's clock cuts the campaign where it wants.
    """
    from materialabs.bus import open_bus
    from materialabs.platform import ensure_platform, platform_paths, publish_default_model

    started = time.monotonic()
    budget_started = budget_clock()
    home = home or config.home()
    if distributed:
        # The services own the ledger (one writer); `materialabs setup` prepared the home.
        platform = platform_paths(home)
    else:
        platform = ensure_platform(home)
        publish_default_model(platform)
    if resume and not campaign_id:
        raise ValueError("resume=True needs the campaign_id of the campaign to resume")
    campaign_id = campaign_id or str(uuid.uuid4())
    folder = report_dir or default_report_dir(home, campaign.name, campaign_id)
    bootstrap = config.kafka_bootstrap() if distributed else None
    if distributed and not bootstrap:
        raise RuntimeError("--distributed needs MATERIALABS_KAFKA (run `make up` first)")
    record = RunRecord(campaign_id, Path(home).resolve(), Path(folder).resolve(), distributed,
                       gpaw_checks, "running", wall_time_before_s,
                       campaign.to_event_fields())
    record.write()
    bus = open_bus(bootstrap, directory=None if bootstrap else home / "bus")
    registry = default_registry()
    in_process = [] if distributed else runners(bus)
    bus.create_topics(list(WATCHED))
    watcher = Watcher(campaign, campaign_id, Catalog(config.catalog_dir()))
    consumer = bus.consumer(f"campaign-watch-{campaign_id}", list(WATCHED))
    if not resume:
        start = new_event("CampaignStarted", campaign.to_event_fields(),
                          producer="materialabs-run", campaign_id=campaign_id, key=campaign_id)
        producer = bus.producer()
        producer.send(start.topic or "campaigns", encode(start, registry),
                      key=campaign_id.encode())
        producer.flush()
    limit = timeout_s if timeout_s is not None else campaign.wall_time_budget_s
    sink = progress if not isinstance(progress, bool) else progress_.for_terminal(
        progress, {"rounds": campaign.rounds, "dft": campaign.dft_budget})
    outcome = watcher.outcome
    with progress_.showing(sink):
        try:
            while outcome.finished is None:
                if budget_clock() - budget_started > limit:
                    outcome.partial = True
                    outcome.stopped = (f"stopped at the wall-time budget ({limit:.0f} s of "
                                       "this session)")
                    break
                for runner in in_process:
                    runner.step(0.0)
                for record_ in consumer.poll(0.05 if in_process else 0.5):
                    watcher.see(decode(record_.value, registry, topic=record_.topic))
            # Let the services settle what the last events caused (offset commits, state);
            # a stopped campaign lets only the catalog (it emits nothing) catch up, so the
            # partial report shows everything done so far and nothing more is started.
            settling = in_process if not outcome.partial else \
                [r for r in in_process if r.spec.name == "catalog"]
            for runner in settling:
                while runner.step(0.0):
                    pass
            while True:  # what the watcher has not seen yet (the settled services' output)
                records = consumer.poll(0.0)
                if not records:
                    break
                for record_ in records:
                    watcher.see(decode(record_.value, registry, topic=record_.topic))
        finally:
            consumer.close()
            for runner in in_process:
                runner.close()
                close = getattr(getattr(runner.context.ports, "ledger", None), "close", None)
                if close is not None:
                    close()  # the embedded ledger writer holds the file lock
            bus.close()
    promoted = len({cid for cid, _ in outcome.promoted})
    wait_for_catalog(watcher.catalog, campaign_id, outcome.counts["DftCompleted"],
                     promoted=promoted)
    outcome.wall_time_s = wall_time_before_s + time.monotonic() - started
    if gpaw_checks > 0 and not outcome.partial:
        outcome.gpaw_checks = _gpaw_checks(campaign, watcher, gpaw_checks)
    outcome.report = _write_report(campaign, watcher, platform, folder, resumed=resume)
    record.status = "partial" if outcome.partial else "finished"
    record.wall_time_s = outcome.wall_time_s
    record.write()
    return outcome


def default_report_dir(home: Path, name: str, campaign_id: str) -> Path:
    return Path(home) / "reports" / f"{name}-{campaign_id[:8]}"


class RunError(ValueError):
    """A run record that cannot be found or read; the message names the path."""


@dataclass
class RunRecord:
    """What resuming a campaign needs: written when it starts, updated when it stops.

    Kept in the report folder (``run.json``) and in ``<home>/runs/<campaign id>.json``, so
    ``materialabs run --resume`` takes either the report folder or the home.
    """

    campaign_id: str
    home: Path
    report_dir: Path
    distributed: bool
    gpaw_checks: int
    status: str            # running | partial | finished
    wall_time_s: float     # spent so far, over every session
    campaign: dict[str, Any]  # CampaignStarted fields (Campaign.to_event_fields)

    def to_json(self) -> str:
        return json.dumps({"format": 1, "campaign_id": self.campaign_id,
                           "home": str(self.home), "report_dir": str(self.report_dir),
                           "distributed": self.distributed, "gpaw_checks": self.gpaw_checks,
                           "status": self.status, "wall_time_s": round(self.wall_time_s, 3),
                           "campaign": self.campaign}, indent=2, sort_keys=True) + "\n"

    def write(self) -> None:
        text = self.to_json()
        for path in (self.report_dir / RUN_RECORD,
                     self.home / "runs" / f"{self.campaign_id}.json"):
            path.parent.mkdir(parents=True, exist_ok=True)
            temporary = path.with_suffix(".tmp")
            temporary.write_text(text)
            os.replace(temporary, path)

    def campaign_spec(self) -> Campaign:
        return Campaign.from_event_fields(self.campaign)

    @classmethod
    def read(cls, path: Path) -> RunRecord:
        try:
            data = json.loads(Path(path).read_text())
            return cls(data["campaign_id"], Path(data["home"]), Path(data["report_dir"]),
                       bool(data["distributed"]), int(data["gpaw_checks"]), data["status"],
                       float(data["wall_time_s"]), dict(data["campaign"]))
        except FileNotFoundError:
            raise RunError(f"{path}: no such run record") from None
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise RunError(f"{path}: not a readable run record ({error})") from None


def find_run(path: Path) -> RunRecord:
    """The campaign to resume: a report folder (its run.json), a run record itself, or a
    home with exactly one unfinished campaign under runs/."""
    path = Path(path)
    if path.is_file():
        return RunRecord.read(path)
    if (path / RUN_RECORD).is_file():
        return RunRecord.read(path / RUN_RECORD)
    if not path.is_dir():
        raise RunError(f"{path}: no such report folder or home")
    records = [RunRecord.read(p) for p in sorted((path / "runs").glob("*.json"))]
    open_ = [r for r in records if r.status != "finished"]
    if not open_:
        raise RunError(f"{path}: no {RUN_RECORD} here and no unfinished campaign under "
                       f"{path / 'runs'}; expected a report folder or a home")
    if len(open_) > 1:
        listed = ", ".join(str(r.report_dir) for r in open_)
        raise RunError(f"{path}: {len(open_)} unfinished campaigns; name one by its report "
                       f"folder: {listed}")
    return open_[0]


def _gpaw_checks(campaign: Campaign, watcher: Watcher, count: int) -> Any:
    from materialabs import ports
    from materialabs.dft.check import candidates_from_promotions, run_gpaw_checks

    return run_gpaw_checks(candidates_from_promotions(watcher.promotions), count,
                           store=ports.store(), campaign_id=watcher.campaign_id,
                           round_number=campaign.rounds,  # after the campaign's last round
                           say=lambda line: print(line, file=sys.stderr, flush=True))


def _write_report(campaign: Campaign, watcher: Watcher, platform: Any, folder: Path,
                  resume_hint: str = "", resumed: bool = False) -> Path:
    import pandas as pd

    from materialabs.campaign_results import first_model
    from materialabs.catalog import SCHEMA
    from materialabs.report import ReportInputs, write_report

    found = watcher.catalog.select("campaign_id = ?", (watcher.campaign_id,))
    rows = pd.DataFrame(found, columns=list(SCHEMA.names))
    predictions = [r for r in found if r["kind"] == "prediction"]
    outcome = watcher.outcome
    inputs = ReportInputs(
        campaign=campaign, campaign_id=watcher.campaign_id,
        predictions=rows[rows["kind"] == "prediction"], dft=rows[rows["kind"] == "dft"],
        promotions=watcher.catalog.fetch("SELECT * FROM promotions WHERE campaign_id = ? "
                                         "ORDER BY occurred_at_ms, candidate_id",
                                         (watcher.campaign_id,)),
        ledger_verdict=verify_ledger(platform.ledger_dir),
        generation_counts=dict(watcher.generation),
        wall_time_s=outcome.wall_time_s,
        gpaw_checks=outcome.gpaw_checks,
        model=model_info(platform.ledger_dir, *first_model(predictions)),
        partial=outcome.stopped if outcome.partial else "",
        resume_hint=resume_hint or f"materialabs run --resume {folder}",
        extra={"resumed": resumed})
    return write_report(inputs, folder)


def model_info(ledger_dir: Path, cid: str | None, seq: int | None) -> Any:
    """The report's line on a model: its ledger entry's name and version where found."""
    from ledger import Ledger
    from ledger.log import LogError
    from materialabs.report import ModelInfo

    if cid is None:
        return None
    try:
        with Ledger.open(ledger_dir, readonly=True) as ledger:
            entry = ledger.find(cid)
    except (LogError, OSError):
        entry = None
    if entry is None:
        return ModelInfo(cid, seq)
    metadata = entry.metadata if isinstance(entry.metadata, dict) else {}
    return ModelInfo(cid, int(entry.seq), metadata.get("name"), metadata.get("version"))


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
