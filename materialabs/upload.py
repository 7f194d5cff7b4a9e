"""A signed upload: the dataset bytes, the manifest, and the lab's signature.

* The **dataset** is canonical JSON lines, one record per line (records.LabRecord.as_json),
  stored by CID.
* The **manifest** *is* the ledger's upload payload (``ledger.keys.upload_payload``):
  canonical JSON ``{"kind": "dataset", "cid": <dataset CID>, "metadata": {...},
  "nonce": <upload id>}``. The metadata names the lab, upload id, record count, method tag,
  units of every property and creation time. The lab signs the manifest bytes, so the
  same signature vouches for the stored manifest and becomes the submitter signature of
  the ledger entry. Replaying an upload replays these exact bytes, which the ledger refuses.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.entries import canonical_json, parse_canonical_object
from ledger.keys import public_bytes, signature_is_valid, upload_payload
from materialabs.records import LabRecord

MANIFEST_FORMAT = "materialabs.upload/1"
DATASET_KIND = "dataset"

# Method tags: "experiment" or the DFT functional the values were computed with.
METHODS = ("experiment", "PBE", "PBE+U", "PBEsol", "LDA", "SCAN", "r2SCAN", "HSE06", "GLLB-SC",
           "B3LYP", "PBE0", "optB88-vdW", "GW")
_METHODS_BY_LOWER = {m.lower(): m for m in METHODS}


class ManifestError(ValueError):
    """A manifest that is not what a lab's client writes (names the field)."""


def normalise_method(method: str) -> str:
    """The canonical spelling of a method tag; ValueError listing the known ones."""
    canonical = _METHODS_BY_LOWER.get(method.strip().lower())
    if canonical is None:
        raise ValueError(f"method {method!r} is not known; expected one of {', '.join(METHODS)}")
    return canonical


def dataset_bytes(records: Iterable[LabRecord]) -> bytes:
    """Canonical JSON lines: the same records always give the same bytes (and CID)."""
    return b"".join(canonical_json(record.as_json()) + b"\n" for record in records)


@dataclass(frozen=True)
class Manifest:
    lab: str
    upload_id: str
    dataset_cid: str
    record_count: int
    method: str
    units: dict[str, str]
    created_at: str
    files: list[str]

    def metadata(self) -> dict[str, Any]:
        return {
            "format": MANIFEST_FORMAT,
            "lab": self.lab,
            "upload_id": self.upload_id,
            "dataset_cid": self.dataset_cid,
            "record_count": self.record_count,
            "method": self.method,
            "units": dict(sorted(self.units.items())),
            "created_at": self.created_at,
            "files": list(self.files),
        }

    def to_bytes(self) -> bytes:
        return upload_payload(DATASET_KIND, self.dataset_cid, self.metadata(),
                              nonce=self.upload_id)


def build_manifest(lab: str, dataset_cid: str, record_count: int, method: str,
                   units: Mapping[str, str], files: Iterable[str], upload_id: str | None = None,
                   created_at: datetime | None = None) -> Manifest:
    moment = (created_at or datetime.now(UTC)).astimezone(UTC)
    return Manifest(
        lab=lab,
        upload_id=upload_id or uuid.uuid4().hex,
        dataset_cid=dataset_cid,
        record_count=record_count,
        method=normalise_method(method),
        units=dict(units),
        created_at=moment.isoformat(timespec="seconds").replace("+00:00", "Z"),
        files=[str(f) for f in files],
    )


def parse_manifest(data: bytes) -> Manifest:
    """Read manifest bytes back; ManifestError names what is wrong."""
    try:
        statement = parse_canonical_object(data, "manifest")
    except ValueError as error:
        raise ManifestError(str(error)) from None
    if set(statement) != {"kind", "cid", "metadata", "nonce"}:
        raise ManifestError(f"manifest must hold exactly kind, cid, metadata, nonce; got "
                            f"{sorted(statement)}")
    if statement["kind"] != DATASET_KIND:
        raise ManifestError(f"manifest kind: expected {DATASET_KIND!r}, got {statement['kind']!r}")
    meta = statement["metadata"]
    if not isinstance(meta, dict) or meta.get("format") != MANIFEST_FORMAT:
        raise ManifestError(f"manifest metadata.format: expected {MANIFEST_FORMAT!r}")
    expected = {"lab": str, "upload_id": str, "dataset_cid": str, "record_count": int,
                "method": str, "units": dict, "created_at": str, "files": list}
    for name, type_ in expected.items():
        if not isinstance(meta.get(name), type_) or isinstance(meta.get(name), bool):
            raise ManifestError(f"manifest metadata.{name}: expected {type_.__name__}")
    if meta["dataset_cid"] != statement["cid"]:
        raise ManifestError("manifest metadata.dataset_cid differs from the signed cid")
    if meta["upload_id"] != statement["nonce"]:
        raise ManifestError("manifest metadata.upload_id differs from the signed nonce")
    try:
        method = normalise_method(meta["method"])
    except ValueError as error:
        raise ManifestError(f"manifest metadata.method: {error}") from None
    return Manifest(meta["lab"], meta["upload_id"], meta["dataset_cid"], meta["record_count"],
                    method, dict(meta["units"]), meta["created_at"], list(meta["files"]))


@dataclass(frozen=True)
class SignedUpload:
    """Everything a lab's client stores and submits for one upload."""

    manifest: Manifest
    manifest_bytes: bytes
    manifest_cid: str
    dataset: bytes
    signature: bytes
    public_key: bytes

    @property
    def upload_id(self) -> str:
        return self.manifest.upload_id

    def submitted_fields(self) -> dict[str, Any]:
        """The fields of the UploadSubmitted event (envelope aside)."""
        return {
            "upload_id": self.manifest.upload_id,
            "lab": self.manifest.lab,
            "manifest_cid": self.manifest_cid,
            "record_count": self.manifest.record_count,
            "signature_b64": base64.b64encode(self.signature).decode("ascii"),
            "public_key_b64": base64.b64encode(self.public_key).decode("ascii"),
        }


def sign_upload(key: Ed25519PrivateKey, lab: str, records: list[LabRecord], method: str,
                units: Mapping[str, str], files: Iterable[str], store: Any,
                upload_id: str | None = None) -> SignedUpload:
    """Store dataset and manifest (content first: the event only names CIDs), then sign."""
    dataset = dataset_bytes(records)
    dataset_cid = store.put_bytes(dataset)
    manifest = build_manifest(lab, dataset_cid, len(records), method, units, files, upload_id)
    manifest_bytes = manifest.to_bytes()
    manifest_cid = store.put_bytes(manifest_bytes)
    return SignedUpload(manifest, manifest_bytes, manifest_cid, dataset,
                        key.sign(manifest_bytes), public_bytes(key))


def verify_signature(public_key: bytes, signature: bytes, manifest_bytes: bytes) -> bool:
    return signature_is_valid(public_key, signature, manifest_bytes)
