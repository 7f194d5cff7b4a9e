"""Where things live: every MATERIALABS_* variable the platform reads, checked in one place.

MATERIALABS_HOME       state folder (store, ledger, catalog, bus log); default ~/.materialabs
MATERIALABS_STORE      content store URL (local:/path, a path, http://host:port,
                       ipfs:http://host:port); default: $MATERIALABS_IPFS, else local:<home>/store
MATERIALABS_IPFS       Kubo RPC API URL, e.g. http://127.0.0.1:5001
MATERIALABS_KAFKA      bootstrap servers, host:port[,host:port...]; set means "distributed mode"
MATERIALABS_PREDICTOR_THREADS  torch threads for the predictor's inference; default 1
MATERIALABS_DATA       the shared data folder (raw/, SOURCES.md)
MATERIALABS_CACHE      cache folder (parsed datasets); default ~/.cache/materialabs
MATERIALABS_LEDGER     ledger folder; default <home>/ledger
MATERIALABS_KEYS       key folder of `materialabs keys`
MATERIALABS_LEDGER_PASSPHRASE_FILE  file holding the ledger key's passphrase
MATERIALABS_SCHEMAS    Avro schema folder; default the project's schemas/
MATERIALABS_DEFAULT_MODEL  model bundle `setup` records instead of the shipped one
MATERIALABS_FAUST_LOG  log level of Faust workers (debug, info, warn, error, critical)
MATERIALABS_GATEWAY    host:port the gateway listens on; default 127.0.0.1:8686
MATERIALABS_UPLOAD_MAX_BYTES  largest POST /v1/uploads body the gateway takes; default 268435456
MATERIALABS_UPLOAD_RATE       new uploads per key per window, N/SECONDS; default 30/60
MATERIALABS_UPLOAD_TIMEOUT    seconds the gateway waits for an upload's body; default 60
MATERIALABS_STREAM_HEARTBEAT_S  seconds between SSE heartbeats of a quiet stream; default 15
MATERIALABS_STREAM_MAX        concurrent candidate streams per gateway process; default 32
MATERIALABS_STREAM_POLL_S     seconds between a stream's reads of the catalog; default 1

An empty variable counts as unset. A malformed one is a :class:`ConfigError` whose one-line
message names the variable, its value and the expected form; ``check_environment`` checks
them all at once (the CLI does, before any command runs) and each accessor checks its own.
The infra scripts' variables (MATERIALABS_RUN_DIR, MATERIALABS_OWNER_PID, MATERIALABS_BIN,
MATERIALABS_KUBO_BIN) and the tests' (MATERIALABS_TEST_*) are read by shell and pytest
only and are not checked here.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# The state folder when MATERIALABS_HOME is unset, written as help texts and docs show it
# (they take it from here; tests/kernel/test_setup_docs.py checks the docs say the same).
DEFAULT_HOME = "~/.materialabs"


class ConfigError(ValueError):
    """An environment variable is malformed; the message names it and the expected form."""


@dataclass(frozen=True)
class Variable:
    name: str
    form: str                          # the expected form, in words
    check: Callable[[str], str]        # raw value -> normalised value; ValueError(reason)


def _raw(name: str, environ: Mapping[str, str] | None = None) -> str | None:
    value = (os.environ if environ is None else environ).get(name)
    return value if value else None


def _get(name: str) -> str | None:
    """The checked value of a variable, or None when it is unset."""
    raw = _raw(name)
    return None if raw is None else _checked(VARIABLES[name], raw)


def _checked(variable: Variable, raw: str) -> str:
    try:
        return variable.check(raw)
    except ValueError as error:
        reason = f" ({error})" if str(error) else ""
        raise ConfigError(f"{variable.name}={raw!r}: expected {variable.form}{reason}") from None


def check_environment(environ: Mapping[str, str] | None = None) -> None:
    """Refuse the first malformed MATERIALABS_* variable (ConfigError)."""
    for variable in VARIABLES.values():
        raw = _raw(variable.name, environ)
        if raw is not None:
            _checked(variable, raw)


# -- the forms -------------------------------------------------------------------------------

_HOSTNAME = re.compile(r"(?=.{1,253}\Z)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                       r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?")


def check_host(host: str) -> str:
    """A host name, an IPv4 address or a bracketed IPv6 address."""
    if host.startswith("[") and host.endswith("]"):
        ipaddress.IPv6Address(host[1:-1])  # ValueError names what is wrong
        return host
    if not _HOSTNAME.fullmatch(host):
        raise ValueError(f"{host!r} is not a host name or address" if host else "no host")
    return host


def check_port(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= 65535:
        raise ValueError(f"port {text!r} is not a number from 1 to 65535" if text
                         else "no port")
    return int(text)


def parse_bootstrap(text: str) -> str:
    """Kafka bootstrap servers as librdkafka takes them: host:port[,host:port...]."""
    servers = [part.strip() for part in text.split(",")]
    for server in servers:
        if "://" in server:
            raise ValueError(f"{server!r} has a scheme; write host:port, e.g. "
                             f"{server.split('://', 1)[1]!r}")
        host, colon, port = server.rpartition(":")
        if not colon:
            raise ValueError(f"{server!r} has no port" if server else "an empty entry")
        check_host(host)
        check_port(port)
    return ",".join(servers)


def _threads(text: str) -> str:
    digits = text.strip()
    if not (digits.isascii() and digits.isdigit()) or not 1 <= int(digits) <= 1024:
        raise ValueError("")
    return digits


def _folder(must_exist: bool) -> Callable[[str], str]:
    def check(text: str) -> str:
        path = Path(text).expanduser()
        if path.exists() and not path.is_dir():
            raise ValueError(f"{path} exists and is not a folder")
        if must_exist and not path.is_dir():
            raise ValueError(f"{path} does not exist")
        return str(path)
    return check


def _file(text: str) -> str:
    path = Path(text).expanduser()
    if not path.is_file():
        raise ValueError(f"{path} is not a file" if path.exists() else f"{path} does not exist")
    return str(path)


def _data_folder(text: str) -> str:
    folder = _folder(True)(text)
    if not (Path(folder) / "raw").is_dir():
        raise ValueError(f"{folder} has no raw/ folder")
    return folder


def _store(text: str) -> str:
    from materialabs.store import parse_store_url

    parse_store_url(text)
    return text.strip()


def _kubo(text: str) -> str:
    from materialabs.store import parse_kubo_api

    return parse_kubo_api(text)


_LOG_LEVELS = ("debug", "info", "warn", "warning", "error", "critical")


def _log_level(text: str) -> str:
    if text.strip().lower() not in _LOG_LEVELS:
        raise ValueError("")
    return text.strip().lower()


def _positive_int(text: str) -> str:
    if not text.strip().isdigit() or int(text) < 1:
        raise ValueError("")
    return text.strip()


def _positive_float(text: str) -> str:
    try:
        value = float(text)
    except ValueError:
        raise ValueError("") from None
    if not 0 < value < float("inf"):
        raise ValueError("")
    return text.strip()


def _rate(text: str) -> str:
    count, slash, window = text.partition("/")
    if not slash:
        raise ValueError("")
    _positive_int(count)
    _positive_float(window)
    return text.strip()


def parse_rate(text: str) -> tuple[int, float]:
    """``N/SECONDS`` as (N, seconds); ValueError naming the expected form."""
    try:
        _rate(text)
    except ValueError:
        raise ValueError(f"{text!r}: expected N/SECONDS with N >= 1, e.g. 30/60") from None
    count, _, window = text.partition("/")
    return int(count), float(window)


def upload_limits() -> dict[str, Any]:
    """The gateway's upload limits set in the environment (UploadLimits fields)."""
    found: dict[str, Any] = {}
    if size := _get("MATERIALABS_UPLOAD_MAX_BYTES"):
        found["max_body_bytes"] = int(size)
    if rate := _get("MATERIALABS_UPLOAD_RATE"):
        found["rate_count"], found["rate_window_s"] = parse_rate(rate)
    if timeout := _get("MATERIALABS_UPLOAD_TIMEOUT"):
        found["request_timeout_s"] = float(timeout)
    return found


def stream_settings() -> dict[str, Any]:
    """The gateway's stream settings set in the environment (StreamSettings fields)."""
    found: dict[str, Any] = {}
    if heartbeat := _get("MATERIALABS_STREAM_HEARTBEAT_S"):
        found["heartbeat_s"] = float(heartbeat)
    if streams := _get("MATERIALABS_STREAM_MAX"):
        found["max_streams"] = int(streams)
    if poll := _get("MATERIALABS_STREAM_POLL_S"):
        found["poll_s"] = float(poll)
    return found


VARIABLES: dict[str, Variable] = {v.name: v for v in (
    Variable("MATERIALABS_HOME", "a folder path (created if missing)", _folder(False)),
    Variable("MATERIALABS_STORE", "local:/path, a folder path, http://host:port or "
             "ipfs:http://host:port", _store),
    Variable("MATERIALABS_IPFS", "the Kubo RPC API URL http(s)://host:port, e.g. "
             "http://127.0.0.1:5001", _kubo),
    Variable("MATERIALABS_KAFKA", "host:port[,host:port...], e.g. 127.0.0.1:9092",
             parse_bootstrap),
    Variable("MATERIALABS_PREDICTOR_THREADS", "a whole number >= 1 (at most 1024)", _threads),
    Variable("MATERIALABS_DATA", "the shared data folder holding raw/ and SOURCES.md",
             _data_folder),
    Variable("MATERIALABS_CACHE", "a folder path (created if missing)", _folder(False)),
    Variable("MATERIALABS_LEDGER", "a ledger folder path", _folder(False)),
    Variable("MATERIALABS_KEYS", "a key folder path", _folder(False)),
    Variable("MATERIALABS_LEDGER_PASSPHRASE_FILE", "an existing file holding the passphrase",
             _file),
    Variable("MATERIALABS_SCHEMAS", "an existing folder of Avro schemas", _folder(True)),
    Variable("MATERIALABS_DEFAULT_MODEL", "an existing model bundle file", _file),
    Variable("MATERIALABS_FAUST_LOG", "a log level: " + ", ".join(_LOG_LEVELS), _log_level),
    Variable("MATERIALABS_UPLOAD_MAX_BYTES", "a whole number of bytes >= 1", _positive_int),
    Variable("MATERIALABS_UPLOAD_RATE", "N/SECONDS, e.g. 30/60", _rate),
    Variable("MATERIALABS_UPLOAD_TIMEOUT", "seconds, a number > 0", _positive_float),
    Variable("MATERIALABS_STREAM_HEARTBEAT_S", "seconds, a number > 0", _positive_float),
    Variable("MATERIALABS_STREAM_MAX", "a whole number >= 1", _positive_int),
    Variable("MATERIALABS_STREAM_POLL_S", "seconds, a number > 0", _positive_float),
    Variable("MATERIALABS_GATEWAY", "host:port, e.g. 127.0.0.1:8686", lambda text:
             parse_bootstrap(text) if "," not in text else _no_list(text)),
)}


def _no_list(text: str) -> str:
    raise ValueError(f"{text!r}: one host:port, not a list")


# -- accessors ---------------------------------------------------------------------------------

def home_path() -> Path:
    """The state folder, neither created nor checked: the CLI's parsers show it as a default
    when they are built, before ``check_environment`` can report a bad value in one line."""
    return Path(_raw("MATERIALABS_HOME") or DEFAULT_HOME).expanduser()


def home() -> Path:
    path = Path(_get("MATERIALABS_HOME") or home_path())
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ConfigError(f"MATERIALABS_HOME={str(path)!r}: cannot create the state folder "
                          f"({error.strerror or error})") from None
    return path


def store_url() -> str:
    return store_setting()[0]


def store_setting() -> tuple[str, str | None]:
    """The content store URL and the variable it came from (None: the default)."""
    explicit = _get("MATERIALABS_STORE")
    if explicit:
        return explicit, "MATERIALABS_STORE"
    ipfs = _get("MATERIALABS_IPFS")
    if ipfs:
        return ipfs, "MATERIALABS_IPFS"
    return f"local:{home_path() / 'store'}", None


def catalog_dir() -> Path:
    return home() / "catalog"


def ledger_dir() -> Path:
    return home() / "ledger"


DEFAULT_GATEWAY = ("127.0.0.1", 8686)


def gateway_address() -> tuple[str, int]:
    """Where the gateway listens: $MATERIALABS_GATEWAY (host:port), else 127.0.0.1:8686."""
    found = _get("MATERIALABS_GATEWAY")
    if not found:
        return DEFAULT_GATEWAY
    host, _, port = found.rpartition(":")
    return host.strip("[]") if host.startswith("[") else host, int(port)


def kafka_bootstrap() -> str | None:
    return _get("MATERIALABS_KAFKA")


def predictor_threads() -> int:
    return int(_get("MATERIALABS_PREDICTOR_THREADS") or 1)


def data_dir() -> Path | None:
    """$MATERIALABS_DATA when set (checked), else None: the caller looks beside the checkout."""
    found = _get("MATERIALABS_DATA")
    return Path(found) if found else None
