"""The composition root: which services exist, how they are found, built and run.

Every place that runs services goes through here: ``materialabs serve`` runs one (the
runtime's loop over Kafka or the embedded bus, or a Faust worker), ``materialabs run``
(``materialabs.loop``) runs all of them in one process over the embedded bus, and
``materialabs upload`` runs ingest and the ledger for an embedded upload. It is also the
one map of who writes and who reads each event type (``materialabs schemas list``,
docs/events.md), derived from the services' ``HANDLERS``/``EMITS`` and the tools'
:class:`Client` declarations below.

Direction of imports: the kernel (``materialabs.*``) never imports ``services`` or this
module; services import the kernel; this module (and ``materialabs.loop``, the campaign
driver) imports services, by name, when asked for them; ``materialabs.cli`` sits on top.
"""

from __future__ import annotations

import importlib
import importlib.util
import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from materialabs.bus.port import Bus
from materialabs.events.typed import EventRecord
from materialabs.events.types import (
    EVENT_TYPES,
    CampaignFinished,
    CampaignStarted,
    CandidateGenerated,
    CandidatePredicted,
    CandidatePromoted,
    DatasetAccepted,
    DftCompleted,
    DftRequested,
    GenerationFinished,
    LedgerEntry,
    ModelPublished,
    RetrainFinished,
    RoundStarted,
    UploadRejected,
    UploadSubmitted,
)
from materialabs.runtime import RunStats, ServiceRunner, ServiceSpec

# The platform's services (folders under services/), in the order the embedded loop steps them.
SERVICE_NAMES = ("ledger", "ingest", "generator", "predictor", "acquisition", "dft_runner",
                 "retrainer", "catalog")


class WiringError(LookupError):
    """A service that cannot be found or is not declared as ``SERVICE = ServiceSpec(...)``."""


def load_service(reference: str) -> ServiceSpec[Any]:
    """The ServiceSpec named SERVICE in services/<name>/app.py or in a given .py file."""
    if reference.endswith(".py"):
        path = Path(reference)
        if not path.is_file():
            raise WiringError(f"{path}: no such app file")
        spec = importlib.util.spec_from_file_location(f"_materialabs_app_{path.stem}", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    else:
        module_name = f"services.{reference.replace('-', '_')}.app"
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            raise WiringError(f"no service {reference!r} ({module_name}: {error})") from error
    service = getattr(module, "SERVICE", None)
    if not isinstance(service, ServiceSpec):
        raise WiringError(f"{reference}: expected SERVICE = ServiceSpec(...) in its app.py")
    return service


def services(names: Sequence[str] = SERVICE_NAMES) -> list[ServiceSpec[Any]]:
    return [load_service(name) for name in names]


def runners(bus: Bus, specs: Sequence[ServiceSpec[Any]] | None = None) -> list[ServiceRunner]:
    """A runner per service (every one by default) on one bus, ports built from the config."""
    return [ServiceRunner(spec, bus) for spec in (services() if specs is None else specs)]


def upload_runners(bus: Bus, ledger: Any, store: Any, catalog: Any) -> list[ServiceRunner]:
    """The ledger, ingest and catalog services on ``bus``, over an open ledger writer (an
    embedded upload: the command line holds the ledger for the time of one upload)."""
    ledger_spec, ingest_spec, catalog_spec = services(("ledger", "ingest", "catalog"))
    return [
        ServiceRunner(replace(ledger_spec, ports=None), bus, ports={"ledger": ledger}),
        ServiceRunner(replace(ingest_spec, ports=None), bus,
                      ports={"store": store, "ledger": ledger}),
        ServiceRunner(replace(catalog_spec, ports=None), bus,
                      ports={"catalog": catalog, "ledger": ledger}),
    ]


def run_service(spec: ServiceSpec[Any], *, bootstrap: str | None, data_dir: Path,
                engine: str = "loop", group: str | None = None,
                until_idle: float | None = None, max_records: int = 500,
                stop: threading.Event | None = None) -> RunStats | None:
    """Run one service until ``stop`` (or ``until_idle`` seconds without records).

    With ``bootstrap`` it runs against that Kafka broker, with the runtime's loop or, for
    ``engine="faust"``, as a Faust worker (which handles its own signals and returns
    None); without, against the file-backed embedded bus in ``data_dir``.
    """
    from materialabs.bus import open_bus

    if bootstrap and engine == "faust":
        from materialabs.runtime.faust_worker import run_worker

        run_worker(spec, bootstrap)
        return None
    bus = open_bus(bootstrap, data_dir)
    try:
        runner = ServiceRunner(spec, bus, group=group)
        try:
            return runner.run(stop=stop, idle_exit_s=until_idle, max_records=max_records)
        except KeyboardInterrupt:
            return runner.stats
        finally:
            runner.close()
    finally:
        bus.close()


# -- who writes and who reads each event ----------------------------------------------------

@dataclass(frozen=True)
class Client:
    """A tool, not a service, that writes or reads events (a part of the event map)."""

    name: str
    emits: tuple[type[EventRecord], ...] = ()
    reads: tuple[type[EventRecord], ...] = ()

    @property
    def topics(self) -> list[str]:
        """The topics it reads."""
        return sorted({cls.TOPIC for cls in self.reads})


RUN = Client("materialabs run", emits=(CampaignStarted,), reads=(
    CampaignStarted, RoundStarted, GenerationFinished, RetrainFinished, CampaignFinished,
    CandidateGenerated, CandidatePredicted, DftRequested, DftCompleted, CandidatePromoted,
    ModelPublished))
UPLOAD = Client("materialabs upload", emits=(UploadSubmitted,),
                reads=(DatasetAccepted, UploadRejected))
SUBSCRIBE = Client("materialabs subscribe", reads=(CandidatePromoted,))
LEDGER_AUDIT = Client("materialabs ledger verify --topic", reads=(LedgerEntry,))
CLIENTS = (RUN, UPLOAD, SUBSCRIBE, LEDGER_AUDIT)


@dataclass(frozen=True)
class EventRoute:
    """One event type: its topic, who writes it and who reads it."""

    type: type[EventRecord]
    producers: tuple[str, ...]
    consumers: tuple[str, ...]

    @property
    def topic(self) -> str:
        return self.type.TOPIC


def event_map(specs: Sequence[ServiceSpec[Any]] | None = None,
              clients: Sequence[Client] = CLIENTS) -> list[EventRoute]:
    """Every event type with its producers and consumers, from the services' declarations
    (``handlers`` and ``emits``) and the tools'."""
    specs = services() if specs is None else specs
    routes = []
    for name in sorted(EVENT_TYPES):
        cls = EVENT_TYPES[name]
        producers = [s.name for s in specs if cls in s.emits]
        producers += [c.name for c in clients if cls in c.emits]
        consumers = [s.name for s in specs if cls in s.handlers]
        consumers += [c.name for c in clients if cls in c.reads]
        routes.append(EventRoute(cls, tuple(producers), tuple(consumers)))
    return routes
