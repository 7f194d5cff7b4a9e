"""Where things live. One place for the environment variables every command reads.

MATERIALABS_HOME   state folder (store, ledger, catalog, bus log); default ~/.materialabs
MATERIALABS_STORE  content store URL; default local:<home>/store
MATERIALABS_KAFKA  bootstrap servers; set means "distributed mode"
MATERIALABS_IPFS   Kubo RPC API URL, e.g. http://127.0.0.1:5001
MATERIALABS_PREDICTOR_THREADS  torch threads for the predictor's inference; default 1
"""

from __future__ import annotations

import os
from pathlib import Path


def home_path() -> Path:
    """The state folder, without creating it (for defaults shown in --help)."""
    return Path(os.environ.get("MATERIALABS_HOME") or Path.home() / ".materialabs").expanduser()


def home() -> Path:
    path = home_path()
    path.mkdir(parents=True, exist_ok=True)
    return path


def store_url() -> str:
    explicit = os.environ.get("MATERIALABS_STORE")
    if explicit:
        return explicit
    ipfs = os.environ.get("MATERIALABS_IPFS")
    if ipfs:
        return ipfs
    return f"local:{home_path() / 'store'}"


def catalog_dir() -> Path:
    return home() / "catalog"


def ledger_dir() -> Path:
    return home() / "ledger"


def kafka_bootstrap() -> str | None:
    return os.environ.get("MATERIALABS_KAFKA") or None


def predictor_threads() -> int:
    return _count("MATERIALABS_PREDICTOR_THREADS")


def _count(name: str, default: int = 1) -> int:
    raw = os.environ.get(name, str(default))
    try:
        count = int(raw)
    except ValueError:
        count = 0
    if count < 1:
        raise ValueError(f"{name}={raw!r}: expected a whole number >= 1")
    return count
