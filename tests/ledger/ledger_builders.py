"""Small ledgers for the ledger tests: labs, uploads, a revocation, checkpoints."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger import Ledger, init_ledger, public_bytes, read_private_key, upload_payload
from ledger.log import EXPORT_MAGIC, HEADER_SIZE, FrameReader, encode_frame


@dataclass
class Built:
    ledger: Ledger
    admin: Ed25519PrivateKey
    labs: dict[str, Ed25519PrivateKey] = field(default_factory=dict)

    @property
    def ledger_public(self) -> bytes:
        return self.ledger.ledger_public


def upload(ledger: Ledger, lab: Ed25519PrivateKey, n: int, kind: str = "dataset"):
    cid = f"bafkreitest{n:06d}"
    metadata = {"n": n, "name": f"upload {n}"}
    payload = upload_payload(kind, cid, metadata)
    return ledger.append_signed(kind, cid, metadata, payload, public_bytes(lab), lab.sign(payload))


def build_ledger(
    directory: Path, uploads: int = 30, checkpoint_every: int = 8, revoke: bool = True
) -> Built:
    ledger, admin_path = init_ledger(directory, checkpoint_every=checkpoint_every)
    built = Built(ledger, read_private_key(admin_path))
    for name in ("alpha", "beta"):
        key = Ed25519PrivateKey.generate()
        built.labs[name] = key
        ledger.register_key(built.admin, name, public_bytes(key))
    for n in range(uploads):
        revoked = "beta-revoked" in built.labs
        lab = built.labs["beta" if n % 3 == 0 and not revoked else "alpha"]
        upload(ledger, lab, n, "model" if n % 5 == 4 else "dataset")
        if revoke and n == uploads // 2:
            ledger.revoke_key(built.admin, public_bytes(built.labs["beta"]), "lost laptop")
            built.labs["beta-revoked"] = built.labs.pop("beta")
    return built


def export_records(path: Path) -> list[bytes]:
    """The records of an export file, closing head last."""
    with open(path, "rb") as stream:
        assert stream.read(HEADER_SIZE) == EXPORT_MAGIC
        reader = FrameReader(stream, path.stat().st_size)
        records = [frame.record for frame in reader]
        assert reader.problem is None
    return records


def frame_spans(path: Path) -> list[tuple[int, int]]:
    """(start, end) byte offsets of each frame in a log or export."""
    spans = []
    with open(path, "rb") as stream:
        reader = FrameReader(stream, path.stat().st_size)
        for frame in reader:
            spans.append((frame.offset, frame.offset + 8 + len(frame.record)))
    return spans


def write_export(path: Path, records: list[bytes]) -> None:
    path.write_bytes(EXPORT_MAGIC + b"".join(encode_frame(r) for r in records))
