"""The ingest service's logic: a lab's signed upload in; a ledger request, then the records, out.

No Kafka, Faust or HTTP here (app.py wires it). Ingest trusts nothing the client did:

UploadSubmitted
  1. the manifest is fetched by CID (the store verifies the bytes hash to it),
  2. the lab's Ed25519 signature must verify over the manifest bytes,
  3. the manifest must be well formed and agree with the event (lab, upload id, count),
  4. the key must be registered to that lab, not revoked, and the upload not a replay,
  5. the dataset is fetched by CID and every record re-validated (records.py),
  -> LedgerAppendRequested (kind dataset, the manifest as the signed payload)
  or -> UploadRejected(code, reason) naming file, record and field.
LedgerEntry answering one of our requests
  -> DatasetAccepted and one MaterialRecord per record (the catalog service projects them).
UploadRejected from the ledger (it refused the append)
  -> the upload is marked rejected, so the lab may fix the cause and submit it again.

Ports: :class:`IngestPorts`.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from materialabs.events import EventRecord
from materialabs.events.types import (
    DatasetAccepted,
    LedgerAppendRequested,
    LedgerEntry,
    MaterialRecord,
    UploadRejected,
    UploadSubmitted,
)
from materialabs.records import (
    MAX_DATASET_BYTES,
    MAX_DATASET_LINE_BYTES,
    MAX_RECORDS,
    LabRecord,
    Problem,
    record_from_json,
    validate_records,
)
from materialabs.runtime import Context, Handlers
from materialabs.upload import ManifestError, parse_manifest, verify_signature

PRODUCER_LEDGER = "ledger"
MAX_REASON_PROBLEMS = 200
MAX_MANIFEST_BYTES = 64 * 1024 * 1024  # it lists the upload's file names
CORE_PROPERTIES = ("formation_energy_per_atom_eV", "band_gap_eV", "total_energy_eV")


class Refusal(Exception):
    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


@dataclass(frozen=True)
class IngestPorts:
    store: Any
    """Content store (``get(cid)`` verifies the bytes hash to the CID)."""
    ledger: Any = None
    """A read view of the ledger: ``key_record(public)``, ``find_payload(payload)``."""


Ctx = Context[IngestPorts]


# --- UploadSubmitted ----------------------------------------------------------------------


def on_submitted(event: UploadSubmitted, ctx: Ctx) -> Iterator[EventRecord]:
    upload_id = str(event.upload_id)
    try:
        manifest_bytes, records = check_upload(event, ctx)
    except Refusal as refusal:
        ctx.state[_upload_key(upload_id)] = {"status": "rejected", "code": refusal.code}
        yield rejection(ctx, event, refusal.code, refusal.reason)
        return
    request_id = event.event_id  # one append request per submission
    ctx.state[_upload_key(upload_id)] = {
        "status": "pending", "request_id": request_id, "lab": event.lab,
        "manifest_cid": event.manifest_cid, "submitted_event_id": event.event_id,
    }
    ctx.state[_request_key(request_id)] = upload_id
    yield LedgerAppendRequested(
        request_id=request_id,
        kind="dataset",
        cid=parse_manifest(manifest_bytes).dataset_cid,
        # The signed payload travels as metadata_json (see services/ledger/app.py).
        metadata_json=manifest_bytes.decode("utf-8"),
        submitter_public_key_b64=event.public_key_b64,
        submitter_signature_b64=event.signature_b64,
    )
    del records  # validated; re-read from the store once the ledger accepts


def check_upload(event: UploadSubmitted, ctx: Ctx) -> tuple[bytes, list[LabRecord]]:
    """All checks of one submission; raise Refusal with the first failing step's code."""
    upload_id, lab = str(event.upload_id), str(event.lab)
    previous = ctx.state.get(_upload_key(upload_id))
    if previous and previous.get("status") in ("pending", "accepted"):
        seq = previous.get("ledger_seq")
        where = f" at ledger entry {seq}" if seq is not None else " (still being recorded)"
        raise Refusal("replay", f"upload {upload_id} was already submitted{where}; "
                                "a replayed upload is refused")
    public = _b64(event.public_key_b64, "public_key_b64", 32)
    signature = _b64(event.signature_b64, "signature_b64", 64)
    manifest_bytes = _fetch(ctx, str(event.manifest_cid), "manifest", MAX_MANIFEST_BYTES)
    if not verify_signature(public, signature, manifest_bytes):
        raise Refusal("bad_signature", f"signature_b64: the signature does not verify over "
                                       f"manifest {event.manifest_cid} with the given key")
    try:
        manifest = parse_manifest(manifest_bytes)
    except ManifestError as error:
        raise Refusal("other", f"manifest {event.manifest_cid}: {error}") from None
    for name, claimed, signed in (("lab", lab, manifest.lab),
                                  ("upload_id", upload_id, manifest.upload_id),
                                  ("record_count", event.record_count, manifest.record_count)):
        if claimed != signed:
            raise Refusal("other", f"{name}: the event says {claimed!r}, the signed manifest "
                                   f"says {signed!r}")
    _check_key(ctx, public, lab)
    ledger = ctx.ports.ledger
    if ledger is not None and ledger.find_payload(manifest_bytes) is not None:
        entry = ledger.find_payload(manifest_bytes)
        raise Refusal("replay", f"this signed manifest is already in the ledger at entry "
                                f"{entry.seq}; a replayed upload is refused")
    if not 1 <= manifest.record_count <= MAX_RECORDS:
        raise Refusal("invalid_record", f"record_count: the manifest says "
                                        f"{manifest.record_count} records; expected 1 to "
                                        f"{MAX_RECORDS} per upload")
    dataset = _fetch(ctx, manifest.dataset_cid, "dataset", MAX_DATASET_BYTES, "invalid_record")
    records, problems = read_dataset(dataset, manifest.dataset_cid)
    problems += validate_records(records)
    if not problems and len(records) != manifest.record_count:
        problems.append(Problem(manifest.dataset_cid, None, "record_count",
                                f"manifest says {manifest.record_count} records, dataset holds "
                                f"{len(records)}"))
    if problems:
        raise Refusal("invalid_record", describe_problems(problems))
    return manifest_bytes, records


def _check_key(ctx: Ctx, public: bytes, lab: str) -> None:
    if ctx.ports.ledger is None:
        return
    record = ctx.ports.ledger.key_record(public)
    short = public.hex()[:16] + "..."
    if record is None:
        raise Refusal("unknown_key", f"signing key {short} is not registered in the ledger; "
                                     "ask the ledger admin to run `materialabs keys register`")
    if record.revoked_seq is not None:
        reason = f" ({record.revoked_reason})" if record.revoked_reason else ""
        raise Refusal("revoked_key", f"signing key {short} of lab {record.lab!r} was revoked at "
                                     f"ledger entry {record.revoked_seq}{reason}")
    if record.role != "lab":
        raise Refusal("unknown_key", f"key {short} has role {record.role!r}; uploads need a "
                                     "lab key")
    if record.lab != lab:
        raise Refusal("unknown_key", f"key {short} is registered to lab {record.lab!r}, "
                                     f"not to {lab!r}")


def read_dataset(data: bytes, origin: str) -> tuple[list[LabRecord], list[Problem]]:
    """Parse stored dataset lines back into records (with problems for unreadable lines).

    Bounded like an upload: at most MAX_RECORDS lines of at most MAX_DATASET_LINE_BYTES,
    each crystal's size checked before it is built (crystal_io.crystal_from_record).
    """
    records: list[LabRecord] = []
    problems: list[Problem] = []
    for number, line in enumerate(data.splitlines(), start=1):
        if number > MAX_RECORDS:
            problems.append(Problem(origin, None, None, f"more than {MAX_RECORDS} records; at "
                                                        f"most {MAX_RECORDS} per upload"))
            break
        if len(line) > MAX_DATASET_LINE_BYTES:
            problems.append(Problem(origin, f"line {number}", None,
                                    f"{len(line)} bytes; at most {MAX_DATASET_LINE_BYTES} per "
                                    "record"))
            continue
        try:
            item = json.loads(line)
        except (ValueError, UnicodeDecodeError, RecursionError) as error:
            problems.append(Problem(origin, f"line {number}", None, f"invalid JSON ({error})"))
            continue
        parsed = record_from_json(item, origin, number)
        if isinstance(parsed, list):
            problems.extend(parsed)
        else:
            records.append(parsed)
    if not records and not problems:
        problems.append(Problem(origin, None, None, "dataset is empty"))
    return records, problems


def describe_problems(problems: list[Problem]) -> str:
    shown = [str(p) for p in problems[:MAX_REASON_PROBLEMS]]
    if len(problems) > MAX_REASON_PROBLEMS:
        shown.append(f"... and {len(problems) - MAX_REASON_PROBLEMS} more problems")
    return "\n".join(shown)


def _b64(text: Any, name: str, size: int) -> bytes:
    try:
        data = base64.b64decode(str(text), validate=True)
    except (ValueError, binascii.Error):
        raise Refusal("bad_signature", f"{name}: not valid base64") from None
    if len(data) != size:
        raise Refusal("bad_signature", f"{name}: expected {size} bytes, got {len(data)}")
    return data


def _fetch(ctx: Ctx, cid: str, what: str, limit: int, code: str = "other") -> bytes:
    """The verified content of ``cid``, streamed and refused once past ``limit`` bytes."""
    from materialabs.store import ContentError

    chunks, size = [], 0
    try:
        for chunk in ctx.ports.store.stream(cid):
            size += len(chunk)
            if size > limit:
                raise Refusal(code, f"{what} {cid}: more than {limit:,} bytes; at most "
                                    f"{limit:,} bytes per upload")
            chunks.append(bytes(chunk))
    except (ContentError, ValueError) as error:
        raise Refusal("missing_content", f"{what} {cid}: {error}") from None
    return b"".join(chunks)


def rejection(ctx: Ctx, cause: UploadSubmitted, code: str, reason: str) -> UploadRejected:
    return UploadRejected(
        upload_id=str(cause.upload_id),
        lab=str(cause.lab),
        manifest_cid=cause.manifest_cid,
        code=code,
        reason=reason,
    )


# --- LedgerEntry --------------------------------------------------------------------------


def on_ledger_entry(event: LedgerEntry, ctx: Ctx) -> Iterator[EventRecord]:
    request_id = event.request_id
    upload_id = ctx.state.get(_request_key(str(request_id))) if request_id else None
    if upload_id is None:
        return  # another service's request (a model, a key change)
    upload = ctx.state[_upload_key(upload_id)]
    if upload.get("status") == "accepted":
        return  # the ledger answered a redelivered request again
    manifest = parse_manifest(_fetch_or_fail(ctx, upload["manifest_cid"]))
    records, _ = read_dataset(_fetch_or_fail(ctx, manifest.dataset_cid), manifest.dataset_cid)
    seq = int(event.seq)
    signed_by = event.submitter_public_key_b64
    yield DatasetAccepted(
        upload_id=upload_id,
        lab=manifest.lab,
        manifest_cid=upload["manifest_cid"],
        dataset_cid=manifest.dataset_cid,
        signature_b64=event.submitter_signature_b64,
        public_key_b64=signed_by,
        record_count=len(records),
        ledger_seq=seq,
    )
    for record in records:
        yield MaterialRecord(**material_record_fields(record, manifest.lab,
                                                      manifest.dataset_cid))
    ctx.state[_upload_key(upload_id)] = {**upload, "status": "accepted", "ledger_seq": seq,
                                         "dataset_cid": manifest.dataset_cid}


def _fetch_or_fail(ctx: Ctx, cid: str) -> bytes:
    try:
        return _fetch(ctx, cid, "content", max(MAX_DATASET_BYTES, MAX_MANIFEST_BYTES))
    except Refusal as refusal:  # accepted content vanished: retry later, then dead-letter
        raise RuntimeError(refusal.reason) from None


def material_record_fields(record: LabRecord, lab: str, dataset_cid: str) -> dict[str, Any]:
    values = dict(record.properties)
    core = {name: values.pop(name, None) for name in CORE_PROPERTIES}
    return {
        "material_id": record.material_id or record.crystal.content_key(),
        "source": lab,
        "dataset_cid": dataset_cid,
        "crystal": record.crystal.as_record(),
        **{name: (float(v) if v is not None else None) for name, v in core.items()},
        "properties": {k: float(v) for k, v in values.items()},
    }


# --- UploadRejected (from the ledger) -----------------------------------------------------


def on_rejected(event: UploadRejected, ctx: Ctx) -> None:
    if event.producer != PRODUCER_LEDGER:
        return  # our own rejections are already recorded
    key = _upload_key(str(event.upload_id))
    upload = ctx.state.get(key)
    if upload is not None and upload.get("status") == "pending":
        ctx.state[key] = {**upload, "status": "rejected", "code": event.code.value}


def _upload_key(upload_id: str) -> str:
    return f"upload:{upload_id}"


def _request_key(request_id: str) -> str:
    return f"request:{request_id}"


HANDLERS: Handlers = {UploadSubmitted: on_submitted, LedgerEntry: on_ledger_entry,
            UploadRejected: on_rejected}
EMITS = (LedgerAppendRequested, UploadRejected, DatasetAccepted, MaterialRecord)
