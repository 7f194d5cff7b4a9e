"""`materialabs serve SERVICE`: run one service's handler over Kafka or the embedded bus."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from materialabs.bus import KAFKA_ENV, BusError, open_bus
from materialabs.cli import UserError
from materialabs.runtime import ServiceRunner, ServiceSpec

DESCRIPTION = f"""\
Run one service: consume its topics, call its handler, produce what it returns.

SERVICE is a folder name under services/ (its app.py defines SERVICE = ServiceSpec(...))
or a path to such an app.py file. With ${KAFKA_ENV} (or --bootstrap) set the service
runs against that Kafka broker; otherwise against the file-backed embedded bus in
--data-dir, which one process owns at a time.

examples:
  materialabs serve predictor
  MATERIALABS_KAFKA=127.0.0.1:9092 materialabs serve acquisition
  MATERIALABS_KAFKA=127.0.0.1:9092 materialabs serve predictor --engine faust
  materialabs serve path/to/app.py --data-dir /tmp/run --until-idle 2
"""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "serve", help="run one service (Kafka if $MATERIALABS_KAFKA, else embedded)",
        description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("service", help="service name under services/, or a path to an app.py")
    parser.add_argument("--bootstrap", default=os.environ.get(KAFKA_ENV),
                        help=f"Kafka bootstrap servers (default ${KAFKA_ENV})")
    parser.add_argument("--data-dir", type=Path,
                        default=Path(os.environ.get("MATERIALABS_HOME", ".materialabs")) / "bus",
                        help="embedded bus folder (default $MATERIALABS_HOME/bus, "
                             "else .materialabs/bus)")
    parser.add_argument("--group", help="consumer group (default: the service name; the Faust "
                        "engine uses its app id)")
    parser.add_argument("--until-idle", type=float, metavar="SECONDS",
                        help="exit after this long without records (batch runs, tests)")
    parser.add_argument("--max-records", type=int, default=500, help="records per batch")
    parser.add_argument("--engine", choices=("loop", "faust", "kafka-python"), default="loop",
                        help="Kafka mode only: the runtime's own loop over the librdkafka "
                             "adapter (default; 'kafka-python' is its old name) or a Faust "
                             "worker (experimental, see docs/events.md)")
    parser.set_defaults(func=run)


def load_service(reference: str) -> ServiceSpec:
    """The ServiceSpec named SERVICE in services/<name>/app.py or in a given .py file."""
    if reference.endswith(".py"):
        path = Path(reference)
        if not path.is_file():
            raise UserError(f"{path}: no such app file")
        spec = importlib.util.spec_from_file_location(f"_materialabs_app_{path.stem}", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    else:
        module_name = f"services.{reference.replace('-', '_')}.app"
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            raise UserError(f"no service {reference!r} ({module_name}: {error})") from error
    service = getattr(module, "SERVICE", None)
    if not isinstance(service, ServiceSpec):
        raise UserError(f"{reference}: expected SERVICE = ServiceSpec(...) in its app.py")
    return service


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s",
                        stream=sys.stderr)
    service = load_service(args.service)
    if args.bootstrap and args.engine == "faust":
        if args.until_idle is not None:
            raise UserError("--until-idle needs --engine loop (a Faust worker runs "
                            "until stopped)")
        from materialabs.runtime.faust_worker import run_worker

        print(f"{service.name}: Faust worker on Kafka {args.bootstrap}", file=sys.stderr,
              flush=True)
        run_worker(service, args.bootstrap)
        return 0
    try:
        bus = open_bus(args.bootstrap, args.data_dir)
        runner = ServiceRunner(service, bus, group=args.group)
    except BusError as error:
        raise UserError(str(error)) from error
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    where = f"Kafka {args.bootstrap}" if args.bootstrap else f"embedded bus {args.data_dir}"
    print(f"{service.name}: consuming {', '.join(service.consumes)} on {where}",
          file=sys.stderr, flush=True)
    try:
        stats = runner.run(stop=stop, idle_exit_s=args.until_idle, max_records=args.max_records)
    except KeyboardInterrupt:
        stats = runner.stats
    finally:
        runner.close()
        bus.close()
    print(f"{service.name}: {stats.as_dict()}", file=sys.stderr, flush=True)
    return 0
