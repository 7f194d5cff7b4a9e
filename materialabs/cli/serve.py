"""`materialabs serve SERVICE`: run one service's handler over Kafka or the embedded bus."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

from materialabs import bootstrap, config
from materialabs.bus import KAFKA_ENV, BusError
from materialabs.cli import UserError
from materialabs.runtime import ServiceSpec

DESCRIPTION = f"""\
Run one service: consume its topics, call its handler, produce what it returns.

SERVICE is a folder name under services/ (its app.py defines SERVICE = ServiceSpec(...))
or a path to such an app.py file; it consumes the topics of the event types its
handlers take. With ${KAFKA_ENV} (or --bootstrap) set the service
runs against that Kafka broker; otherwise against the file-backed embedded bus in
--data-dir, which one process owns at a time.

examples:
  materialabs serve predictor
  MATERIALABS_KAFKA=127.0.0.1:9092 materialabs serve acquisition
  MATERIALABS_KAFKA=127.0.0.1:9092 materialabs serve predictor --engine faust
  materialabs serve path/to/app.py --data-dir /tmp/run --until-idle 2

On Kafka, start a service several times to scale it out: instances of a service share
its consumer group's partitions, except for single-active services (acquisition,
retrainer, ledger, ingest), whose instances elect one leader and stand by until it dies
(see docs/events.md, "Scale-out"). --instance names the instance in logs and to the broker.
"""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "serve", help="run one service (Kafka if $MATERIALABS_KAFKA, else embedded)",
        description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("service", help="service name under services/, or a path to an app.py")
    parser.add_argument("--bootstrap", default=os.environ.get(KAFKA_ENV),
                        help=f"Kafka bootstrap servers (default ${KAFKA_ENV})")
    # The same home as every other command (config.home_path): $MATERIALABS_HOME, else
    # ~/.materialabs, never a folder relative to where the command runs.
    parser.add_argument("--data-dir", type=Path, default=config.home_path() / "bus",
                        help="embedded bus folder (default $MATERIALABS_HOME/bus; the home "
                             f"defaults to {config.DEFAULT_HOME})")
    parser.add_argument("--group", help="consumer group (default: the service name; the Faust "
                        "engine uses its app id)")
    parser.add_argument("--until-idle", type=float, metavar="SECONDS",
                        help="exit after this long without records (batch runs, tests)")
    parser.add_argument("--max-records", type=int, default=500, help="records per batch")
    parser.add_argument("--instance", help="this instance's name, e.g. acquisition-2 (default: "
                        "SERVICE@HOST); a single-active service's lease names its holder so")
    parser.add_argument("--engine", choices=("loop", "faust", "kafka-python"), default="loop",
                        help="Kafka mode only: the runtime's own loop over the librdkafka "
                             "adapter (default; 'kafka-python' is its old name) or a Faust "
                             "worker (experimental, see docs/events.md)")
    parser.add_argument("--host", default=None, help="gateway only: address to listen on "
                        "(default from $MATERIALABS_GATEWAY, else 127.0.0.1)")
    parser.add_argument("--port", default=None, help="gateway only: port (default from "
                        "$MATERIALABS_GATEWAY, else 8686)")
    parser.set_defaults(func=run)


def load_service(reference: str) -> ServiceSpec[Any]:
    """The ServiceSpec of SERVICE (a name under services/ or an app.py path)."""
    try:
        return bootstrap.load_service(reference)
    except bootstrap.WiringError as error:
        raise UserError(str(error)) from error


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s",
                        stream=sys.stderr)
    if args.service == "gateway":  # HTTP, not a consumer: it reads the catalog and ledger
        from materialabs.cli.gateway import address, serve

        return serve(config.home(), *address(args.host, args.port))
    service = load_service(args.service)
    faust = bool(args.bootstrap) and args.engine == "faust"
    if faust and args.until_idle is not None:
        raise UserError("--until-idle needs --engine loop (a Faust worker runs until stopped)")
    stop = threading.Event()
    if args.bootstrap and service.single_active and not faust:
        return _serve_single_active(service, args, stop)
    if not faust:  # a Faust worker handles its own signals
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
    where = f"Kafka {args.bootstrap}" if args.bootstrap else f"embedded bus {args.data_dir}"
    how = "Faust worker" if faust else f"consuming {', '.join(service.input_topics)}"
    print(f"{service.name}: {how} on {where}", file=sys.stderr, flush=True)
    try:
        stats = bootstrap.run_service(service, bootstrap=args.bootstrap, data_dir=args.data_dir,
                                      engine=args.engine, group=args.group,
                                      until_idle=args.until_idle, max_records=args.max_records,
                                      stop=stop)
    except BusError as error:
        raise UserError(str(error)) from error
    if stats is not None:
        print(f"{service.name}: {stats.as_dict()}", file=sys.stderr, flush=True)
    return 0


def _serve_single_active(service: ServiceSpec, args: argparse.Namespace,
                         stop: threading.Event) -> int:
    """One instance of a single-active service: standby until it holds the lease."""
    from materialabs.runtime.leadership import serve_single_active

    member = args.instance or f"{service.name}@{socket.gethostname()}"
    signal.signal(signal.SIGTERM, lambda *_: stop.set())

    def say(line: str) -> None:
        now = datetime.now().isoformat(sep=" ", timespec="milliseconds")
        print(f"{now} {line}", file=sys.stderr, flush=True)

    try:
        stats = serve_single_active(service, args.bootstrap, member, stop, group=args.group,
                                    idle_exit_s=args.until_idle, max_records=args.max_records,
                                    say=say)
    except KeyboardInterrupt:
        return 0
    except BusError as error:
        raise UserError(str(error)) from error
    print(f"{service.name}: {stats.as_dict()}", file=sys.stderr, flush=True)
    return 0
