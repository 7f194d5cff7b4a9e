"""`materialabs gateway`: the HTTP gateway (OPTIMADE, explorer API, web explorer) over a home."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from materialabs import config
from materialabs.cli import UserError

EXAMPLES = """\
examples:
  materialabs gateway                                  # 127.0.0.1:8686 over $MATERIALABS_HOME
  materialabs gateway --host 0.0.0.0 --port 8080
  MATERIALABS_HOME=run/home materialabs gateway --port 9000

then open http://HOST:PORT/explorer/ (the web explorer), /docs (the API),
/optimade/v1/structures?filter=elements HAS "O" (OPTIMADE).
"""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "gateway", help="serve OPTIMADE, the explorer API and the web explorer over HTTP",
        description="Serve the home's catalog and ledger over HTTP (read-only). The address "
                    "defaults to $MATERIALABS_GATEWAY, else 127.0.0.1:8686.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default=None, help="address to listen on")
    parser.add_argument("--port", default=None, help="port to listen on (1-65535)")
    parser.add_argument("--home", type=Path, default=None,
                        help="the MateriaLabs home (default $MATERIALABS_HOME, else "
                             f"{config.DEFAULT_HOME})")
    parser.add_argument("--workers", default="1", help="worker processes (default 1; each "
                        "reads the catalog on its own, so on N cores N workers answer N "
                        "queries at once)")
    parser.add_argument("--upload-max-bytes", default=None, metavar="N",
                        help="largest POST /v1/uploads body, in bytes (default "
                             "$MATERIALABS_UPLOAD_MAX_BYTES, else 268435456); larger: 413")
    parser.add_argument("--upload-rate", default=None, metavar="N/SECONDS",
                        help="new uploads per lab key per window (default "
                             "$MATERIALABS_UPLOAD_RATE, else 30/60); more: 429 + Retry-After")
    parser.add_argument("--upload-timeout", default=None, metavar="S",
                        help="seconds to receive an upload's body (default "
                             "$MATERIALABS_UPLOAD_TIMEOUT, else 60); slower: 408")
    parser.set_defaults(func=run)


def set_upload_limits(args: argparse.Namespace) -> None:
    """Flags become the MATERIALABS_UPLOAD_* variables, so every worker process reads them."""
    import os

    for flag, name in (("upload_max_bytes", "MATERIALABS_UPLOAD_MAX_BYTES"),
                       ("upload_rate", "MATERIALABS_UPLOAD_RATE"),
                       ("upload_timeout", "MATERIALABS_UPLOAD_TIMEOUT")):
        value = getattr(args, flag, None)
        if value is None:
            continue
        variable = config.VARIABLES[name]
        try:
            variable.check(str(value))
        except ValueError:
            raise UserError(f"--{flag.replace('_', '-')} {value!r}: expected "
                            f"{variable.form}") from None
        os.environ[name] = str(value)


def address(host: str | None, port: str | None) -> tuple[str, int]:
    default_host, default_port = config.gateway_address()
    try:
        host = config.check_host(host) if host is not None else default_host
        number = config.check_port(port) if port is not None else default_port
    except ValueError as error:
        raise UserError(f"--host/--port: {error}") from None
    return host, number


def serve(home: Path, host: str, port: int, workers: int = 1) -> int:
    import os

    import uvicorn

    from materialabs.gateway import create_app

    print(f"gateway: http://{host}:{port}/ over {home} (explorer /explorer/, API /docs, "
          f"OPTIMADE /optimade/v1)", file=sys.stderr, flush=True)
    if workers > 1:  # each worker process builds its app from the environment
        os.environ["MATERIALABS_HOME"] = str(Path(home).resolve())
        uvicorn.run("materialabs.gateway:app_from_environment", factory=True, host=host,
                    port=port, workers=workers, log_level="warning", access_log=False,
                    http="materialabs.gateway.protocol:NoDelayH11Protocol")
    else:
        uvicorn.run(create_app(home), host=host, port=port, log_level="warning",
                    access_log=False, http="materialabs.gateway.protocol:NoDelayH11Protocol")
    return 0


def run(args: argparse.Namespace) -> int:
    host, port = address(args.host, args.port)
    set_upload_limits(args)
    try:
        workers = int(args.workers)
    except ValueError:
        workers = 0
    if not 1 <= workers <= 64:
        raise UserError(f"--workers {args.workers!r}: expected a whole number from 1 to 64")
    return serve(args.home or config.home(), host, port, workers)
