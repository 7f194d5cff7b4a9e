"""A trained ensemble as one deterministic byte blob, so it can be stored and named by CID.

Layout: an uncompressed POSIX (ustar) tar with fixed metadata (mtime 0, uid/gid 0, mode
0644), entries in sorted order:

* ``manifest.json``: format tag, model and graph configuration, normaliser, σ scale,
  targets with units, CIDs of the training data, metrics, and the SHA-256 of every other
  entry;
* ``member-00.pt``, ``member-01.pt``, ...: each member's ``state_dict`` written by
  ``torch.save`` and containing tensors only.

Loading never unpickles arbitrary objects: weights are read with
``torch.load(weights_only=True)``, which accepts only tensors and plain containers, and
every entry must match the hash the manifest gives for it. The bundle's CID (checked by the
caller against the ledger) covers the manifest, so nothing inside can change unnoticed.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import tarfile
from pathlib import Path
from typing import Any

import torch

from materialabs.ml.ensemble import Ensemble
from materialabs.ml.graph import GraphConfig
from materialabs.ml.model import TARGET_UNITS, CrystalGNN, ModelConfig, Normaliser

BUNDLE_FORMAT = "materialabs-model-bundle/1"
MANIFEST = "manifest.json"
_MEMBER_NAME = re.compile(r"^member-(\d{2})\.pt$")
# Far above any model this project trains; stops a hostile bundle from exhausting memory.
MAX_ENTRY_BYTES = 256 * 1024 * 1024
MAX_MEMBERS = 32


class BundleError(ValueError):
    """A model bundle is malformed, tampered with, or holds something other than tensors."""


def ensemble_to_bundle(ensemble: Ensemble, training_data_cids: list[str] | None = None,
                       metadata: dict[str, Any] | None = None) -> bytes:
    """Serialise ``ensemble`` to bundle bytes; equal inputs give byte-identical output."""
    files: dict[str, bytes] = {}
    for k, member in enumerate(ensemble.members):
        buffer = io.BytesIO()
        state = {name: tensor.detach().cpu().contiguous()
                 for name, tensor in member.state_dict().items()}
        torch.save(state, buffer)
        files[f"member-{k:02d}.pt"] = buffer.getvalue()
    manifest = {
        "format": BUNDLE_FORMAT,
        "model_config": ensemble.model_config.as_dict(),
        "graph_config": ensemble.graph_config.as_dict(),
        "normaliser": ensemble.normaliser.as_dict(),
        "sigma_scale": list(ensemble.sigma_scale) if ensemble.sigma_scale else None,
        "targets": list(ensemble.targets),
        "units": {t: TARGET_UNITS[t] for t in ensemble.targets},
        "training_data_cids": list(training_data_cids or []),
        "metadata": {**ensemble.metadata, **(metadata or {})},
        "files": {name: hashlib.sha256(data).hexdigest() for name, data in sorted(files.items())},
    }
    files[MANIFEST] = json.dumps(manifest, indent=1, sort_keys=True).encode()
    return _deterministic_tar(files)


def _deterministic_tar(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as archive:
        for name in sorted(files):
            info = tarfile.TarInfo(name)
            info.size = len(files[name])
            info.mtime = 0
            info.mode = 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            archive.addfile(info, io.BytesIO(files[name]))
    return buffer.getvalue()


def read_manifest(blob: bytes) -> dict[str, Any]:
    """The bundle's manifest (after checking the archive structure and every hash)."""
    return _verified_entries(blob)[0]


def ensemble_from_bundle(blob: bytes) -> Ensemble:
    """Rebuild the ensemble from bundle bytes; raise :class:`BundleError` on anything odd."""
    manifest, entries = _verified_entries(blob)
    try:
        model_config = ModelConfig.from_dict(manifest["model_config"])
        graph_config = GraphConfig.from_dict(manifest["graph_config"])
        normaliser = Normaliser.from_dict(manifest["normaliser"])
    except (KeyError, TypeError, ValueError) as error:
        raise BundleError(f"{MANIFEST}: bad configuration ({error})") from error
    members = []
    for name in sorted(entries):
        member = CrystalGNN(model_config)
        try:
            member.load_state_dict(_load_tensors(name, entries[name]), strict=True)
        except RuntimeError as error:
            raise BundleError(f"{name}: weights do not fit the model config ({error})") from error
        members.append(member.eval())
    scale = manifest.get("sigma_scale")
    return Ensemble(model_config, graph_config, normaliser, members,
                    tuple(float(s) for s in scale) if scale else None,
                    dict(manifest.get("metadata") or {}))


def _verified_entries(blob: bytes) -> tuple[dict[str, Any], dict[str, bytes]]:
    raw = _read_tar(blob)
    if MANIFEST not in raw:
        raise BundleError(f"bundle: expected a {MANIFEST} entry, found {sorted(raw)}")
    try:
        manifest = json.loads(raw.pop(MANIFEST))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise BundleError(f"{MANIFEST}: not valid JSON ({error})") from error
    if not isinstance(manifest, dict) or manifest.get("format") != BUNDLE_FORMAT:
        raise BundleError(f"{MANIFEST}: format: expected {BUNDLE_FORMAT!r}, got "
                          f"{manifest.get('format') if isinstance(manifest, dict) else manifest!r}")
    listed = manifest.get("files")
    if not isinstance(listed, dict) or set(listed) != set(raw):
        raise BundleError(f"{MANIFEST}: files: lists {sorted(listed or {})} but the bundle "
                          f"holds {sorted(raw)}")
    if not raw:
        raise BundleError("bundle: expected at least one member-NN.pt entry, found none")
    for name, data in raw.items():
        if hashlib.sha256(data).hexdigest() != listed[name]:
            raise BundleError(f"{name}: SHA-256 differs from {MANIFEST} (tampered or corrupt)")
    return manifest, raw


def _read_tar(blob: bytes) -> dict[str, bytes]:
    entries: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(blob), mode="r:") as archive:
            for info in archive:
                entries[info.name] = _read_entry(archive, info, entries)
    except tarfile.TarError as error:
        raise BundleError(f"bundle: not an uncompressed tar archive ({error})") from error
    return entries


def _read_entry(archive: tarfile.TarFile, info: tarfile.TarInfo,
                seen: dict[str, bytes]) -> bytes:
    if not info.isreg():
        raise BundleError(f"bundle entry {info.name!r}: expected a regular file")
    if info.name != MANIFEST and not _MEMBER_NAME.match(info.name):
        raise BundleError(f"bundle entry {info.name!r}: expected {MANIFEST} or member-NN.pt")
    if info.size > MAX_ENTRY_BYTES or info.name in seen:
        raise BundleError(f"bundle entry {info.name!r}: too large or duplicated")
    if len(seen) > MAX_MEMBERS:
        raise BundleError(f"bundle: more than {MAX_MEMBERS} entries")
    handle = archive.extractfile(info)
    return handle.read() if handle else b""


def _load_tensors(name: str, data: bytes) -> dict[str, torch.Tensor]:
    try:
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as error:  # UnpicklingError, RuntimeError, ...: all mean "refuse"
        raise BundleError(f"{name}: refused, not a tensors-only state_dict ({error})") from error
    if not isinstance(state, dict) or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise BundleError(f"{name}: expected a dict of name -> tensor")
    return state


def save_bundle(blob: bytes, path: Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(blob)
    tmp.replace(path)


def load_bundle_file(path: Path) -> Ensemble:
    path = Path(path)
    if not path.is_file():
        raise BundleError(f"{path}: no such model bundle")
    try:
        return ensemble_from_bundle(path.read_bytes())
    except BundleError as error:
        raise BundleError(f"{path}: {error}") from error
