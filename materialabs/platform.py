"""First-run set-up of a MateriaLabs home: ledger, keys, and the default model on record.

`materialabs run` and `materialabs demo` call :func:`ensure_platform` so a fresh machine
needs no manual ceremony. It is idempotent: an existing ledger and keys are reused.

Keys under ``<home>/keys``: ``admin.key`` (registers keys), ``retrainer.key`` (signs model
versions; registered in the ledger as the lab "materialabs-retrainer"). The ledger's own
key lives in the ledger folder.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from materialabs import config

RETRAINER_LAB = "materialabs-retrainer"
DEFAULT_MODEL_NAME = "crystal-gnn"


@dataclass(frozen=True)
class Platform:
    home: Path
    ledger_dir: Path
    admin_key: Path
    retrainer_key: Path


def platform_paths(home: Path | None = None) -> Platform:
    """Where an existing home keeps its ledger and keys (no set-up, no ledger lock)."""
    home = home or config.home()
    keys = home / "keys"
    return Platform(home, home / "ledger", keys / "admin.key", keys / "retrainer.key")


def ensure_platform(home: Path | None = None) -> Platform:
    from ledger import Ledger, init_ledger
    from ledger.keys import generate_key, public_bytes, read_private_key, write_private_key

    home = home or config.home()
    ledger_dir = home / "ledger"
    keys = home / "keys"
    keys.mkdir(parents=True, exist_ok=True)
    admin_path = keys / "admin.key"
    retrainer_path = keys / "retrainer.key"
    if not (ledger_dir / "ledger.log").exists() and not any(ledger_dir.glob("*.log")):
        ledger, _ = init_ledger(ledger_dir, admin_dir=keys)
        ledger.close()
    if not retrainer_path.exists():
        write_private_key(generate_key(), retrainer_path)
    retrainer_public = public_bytes(read_private_key(retrainer_path))
    with Ledger.open(ledger_dir) as ledger:
        if ledger.key_record(retrainer_public) is None:
            ledger.register_key(read_private_key(admin_path), RETRAINER_LAB, retrainer_public)
    return Platform(home, ledger_dir, admin_path, retrainer_path)


def retrainer_key_path(home: Path | None = None) -> Path:
    """The retrainer's signing key (made by :func:`ensure_platform`)."""
    path = (home or config.home()) / "keys" / "retrainer.key"
    if not path.exists():
        raise FileNotFoundError(f"{path}: no retrainer key; run `materialabs demo` or "
                                "`materialabs run` once to set up this home")
    return path


def model_statement(model_cid: str, metadata: dict) -> bytes:
    """The bytes the retrainer signs to put a model version on the ledger."""
    from ledger.keys import upload_payload

    return upload_payload("model", model_cid, metadata, nonce=model_cid)


def publish_default_model(platform: Platform) -> str:
    """Store the shipped default model and record it in the ledger (once); return its CID."""
    from ledger import Ledger
    from ledger.keys import public_bytes, read_private_key
    from materialabs import ports
    from materialabs.ml.bundle import read_manifest

    blob = default_model_path().read_bytes()
    cid = ports.store().put_bytes(blob)
    with Ledger.open(platform.ledger_dir) as ledger:
        if ledger.find(cid) is None:
            manifest = read_manifest(blob)
            metadata = {"name": DEFAULT_MODEL_NAME, "version": 1,
                        "targets": manifest.get("targets", []),
                        "metrics": manifest.get("metadata", {}).get("metrics", {}),
                        "training_data_cids": manifest.get("training_data_cids", [])}
            key = read_private_key(platform.retrainer_key)
            payload = model_statement(cid, json.loads(json.dumps(metadata)))
            ledger.append_signed("model", cid, metadata, payload, public_bytes(key),
                                 key.sign(payload))
    return cid


def default_model_path() -> Path:
    override = os.environ.get("MATERIALABS_DEFAULT_MODEL")
    if override:
        return Path(override)
    folder = Path(__file__).resolve().parent / "ml" / "default_model"
    bundles = sorted(folder.glob("*.tar")) + sorted(folder.glob("*.bundle"))
    if not bundles:
        raise FileNotFoundError(f"{folder}: no default model bundle shipped; train one with "
                                "`python benchmarks/gnn.py --save-default`")
    return bundles[0]
