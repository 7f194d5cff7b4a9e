"""Wiring of the ledger service: LedgerAppendRequested events in, LedgerEntry events out.

The logic is ``handlers.handle_append_request``; this module only translates events.
One process appends at a time: the ledger's writer lock refuses a second writer, so one
member of the "ledger" group owns every partition of ``ledger.requests``. The topics keep
the default partition count, so services that read ``ledger.entries`` beside other topics
(ingest, retrainer) see co-partitioned inputs, which a Faust worker requires.

Event convention (the Avro request carries no separate payload field):
* ``metadata_json`` is the exact signed payload, UTF-8. For datasets and models it is the
  lab's upload statement ``{"kind", "cid", "metadata", "nonce"}`` (ledger.keys.upload_payload)
  and the entry's metadata is its ``metadata`` object; for key entries it is the admin-signed
  key statement, from which the ledger derives the metadata itself.
* A refused dataset append is answered with ``UploadRejected`` (the upload's id and lab are
  in the signed statement), so the lab's client learns the ledger's reason; any other
  refused or malformed request is dead-lettered with the reason.
* ``ledger.entries`` carries every entry, each with its record (``record_b64``), so an
  auditor can rebuild the ledger from the topic alone (``materialabs ledger verify
  --topic``). Entries written outside a request (entry 0, keys registered from the
  command line, automatic checkpoints) are published with the next accepted request: the
  service's state remembers the first seq not yet published. The optional port
  ``entries_topic`` names another topic (a second ledger, a test).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from materialabs.events.types import LedgerAppendRequested, LedgerEntry, UploadRejected
from materialabs.runtime import Context, Handlers, InvalidEvent, ServiceSpec

AVRO_TO_LEDGER_KIND = {"key_registration": "key_registered", "key_revocation": "key_revoked"}
LEDGER_TO_AVRO_KIND = {v: k for k, v in AVRO_TO_LEDGER_KIND.items()}
REQUESTS_TOPIC = "ledger.requests"
ENTRIES_TOPIC = "ledger.entries"
PUBLISHED_KEY = "published_below"  # state: entries with a smaller seq are on the topic


@dataclass(frozen=True)
class LedgerPorts:
    ledger: Any
    """The ledger writer (``ledger.Ledger``): one process appends at a time."""
    entries_topic: str = ENTRIES_TOPIC
    """Where the entries go (another topic: a second ledger, a test)."""


Ctx = Context[LedgerPorts]


def request_message(event: LedgerAppendRequested) -> dict[str, Any]:
    """The handler's request dict from a LedgerAppendRequested event."""
    kind = AVRO_TO_LEDGER_KIND.get(event.kind.value, event.kind.value)
    payload = str(event.metadata_json).encode("utf-8")
    metadata = None
    if kind in ("dataset", "model"):
        try:
            statement = json.loads(payload)
            metadata = statement.get("metadata") if isinstance(statement, dict) else None
        except ValueError:
            metadata = None
    return {
        "request_id": str(event.request_id),
        "kind": kind,
        "cid": event.cid or "",
        "metadata": metadata,
        "payload": payload,
        "signer_public": _b64(event.submitter_public_key_b64),
        "signature": _b64(event.submitter_signature_b64),
    }


def _b64(text: Any) -> bytes | str:
    try:
        return base64.b64decode(str(text), validate=True)
    except (ValueError, binascii.Error):
        return "not base64"  # the handler reports the field as malformed


def entry_fields(entry: Any, request_id: str | None, ledger: Any) -> dict[str, Any]:
    from ledger.entries import canonical_json

    return {
        "seq": entry.seq,
        "request_id": request_id,
        "kind": LEDGER_TO_AVRO_KIND.get(entry.kind, entry.kind),
        "cid": entry.cid or None,
        "metadata_json": canonical_json(entry.metadata).decode("utf-8"),
        "prev_hash_hex": entry.prev_hash.hex(),
        "entry_hash_hex": entry.entry_hash.hex(),
        "submitter_public_key_b64": base64.b64encode(entry.submitter_public).decode("ascii"),
        "submitter_signature_b64": base64.b64encode(entry.submitter_signature).decode("ascii"),
        "ledger_signature_b64": base64.b64encode(entry.ledger_signature).decode("ascii"),
        "tree_size": entry.seq + 1,
        "root_hash_hex": ledger.tree.root(entry.seq + 1).hex(),
        "record_b64": base64.b64encode(entry.record_bytes()).decode("ascii"),
    }


def refusal_code(reason: str) -> str:
    """UploadRejected.code for a ledger refusal reason."""
    text = reason.lower()
    for needle, code in (("replayed", "replay"), ("not registered", "unknown_key"),
                         ("revoked", "revoked_key"), ("signature", "bad_signature"),
                         ("lab key", "unknown_key"), ("is registered to lab", "unknown_key")):
        if needle in text:
            return code
    return "other"


def on_append_requested(event: LedgerAppendRequested,
                        ctx: Ctx) -> Iterator[LedgerEntry | UploadRejected]:
    from services.ledger.handlers import handle_append_request

    message = request_message(event)
    outcome = handle_append_request(message, ctx.ports.ledger)
    if outcome.accepted and outcome.entry is not None:
        yield from _entry_events(ctx, event, outcome.entry, message["request_id"])
    elif message["kind"] == "dataset" and isinstance(message["metadata"], dict):
        yield _upload_rejected(ctx, event, message, outcome.reason)
    else:
        raise InvalidEvent(f"ledger {outcome.status}: {outcome.reason}")


def _entry_events(ctx: Ctx, cause: LedgerAppendRequested, answer: Any,
                  request_id: str) -> Iterator[LedgerEntry]:
    """The answer's entry, and every entry not yet published before it (in seq order)."""
    ledger = ctx.ports.ledger
    topic = ctx.ports.entries_topic
    start = int(ctx.state.get(PUBLISHED_KEY, 0))
    end = len(ledger)
    if answer.seq < start:  # a duplicate request: answer it again with its entry
        yield _entry_event(ctx, cause, answer, request_id, topic)
    for seq in range(start, end):
        entry = answer if seq == answer.seq else ledger.get(seq)
        yield _entry_event(ctx, cause, entry, request_id if seq == answer.seq else None, topic)
    ctx.state[PUBLISHED_KEY] = end


def _entry_event(ctx: Ctx, cause: LedgerAppendRequested, entry: Any, request_id: str | None,
                 topic: str) -> LedgerEntry:
    fields = entry_fields(entry, request_id, ctx.ports.ledger)
    return ctx.event(LedgerEntry(**fields), cause, topic=topic)


def _upload_rejected(ctx: Ctx, event: LedgerAppendRequested, message: dict[str, Any],
                     reason: str) -> UploadRejected:
    from materialabs.store import cid_of_bytes

    metadata = message["metadata"]
    return UploadRejected(
        upload_id=str(metadata.get("upload_id", message["request_id"])),
        lab=str(metadata.get("lab", "")),
        manifest_cid=cid_of_bytes(message["payload"]),
        code=refusal_code(reason),
        reason=f"the ledger refused the upload: {reason}",
    )


def ledger_ports() -> LedgerPorts:
    """The writer over $MATERIALABS_HOME/ledger (or $MATERIALABS_LEDGER)."""
    import os

    from ledger import Ledger
    from ledger.keys import read_passphrase_file
    from materialabs import config

    directory = os.environ.get("MATERIALABS_LEDGER") or str(config.ledger_dir())
    passphrase = read_passphrase_file(os.environ.get("MATERIALABS_LEDGER_PASSPHRASE_FILE"))
    return LedgerPorts(ledger=Ledger.open(directory, passphrase=passphrase))


HANDLERS: Handlers = {LedgerAppendRequested: on_append_requested}
EMITS = (LedgerEntry, UploadRejected)
SERVICE = ServiceSpec(name="ledger", handlers=HANDLERS, emits=EMITS, ports=ledger_ports,
                      ports_type=LedgerPorts,
                      # Single-active (a leader and standbys): one writer (the ledger's file lock).
                      single_active=True)
