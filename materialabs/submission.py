"""Submitting a signed upload into the platform and waiting for its outcome: in this process
over the home's embedded bus (the ledger, ingest and catalog services run here for it), or on
Kafka. `materialabs upload` and the gateway's `/v1/uploads` both submit through this one path.
"""

from __future__ import annotations

import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class SubmitError(Exception):
    """The upload never reached an answer from the platform (ledger locked, broker down, no
    outcome in time): not a refusal, so a retry of the same signed upload may succeed."""


@dataclass
class Outcome:
    upload: Any              # SignedUpload
    event: Any               # DatasetAccepted or UploadRejected
    receipt: dict[str, Any] | None = None

    @property
    def accepted(self) -> bool:
        return self.event.type == "DatasetAccepted"



def submitted_event(upload: Any) -> Any:
    from materialabs.events import new_event

    return new_event("UploadSubmitted", upload.submitted_fields(), producer="materialabs-upload")


def publish(bus: Any, event: Any) -> None:
    from materialabs.events import encode
    from materialabs.runtime import TYPE_HEADER

    producer = bus.producer()
    producer.send(event.topic, encode(event), key=event.key.encode(),
                  headers=[(TYPE_HEADER, event.type.encode())])
    producer.flush()


def submit_embedded(upload: Any, store: Any, ledger_path: Path, timeout_s: float,
                     home: Path | None = None) -> Outcome:
    """Run the ledger, ingest and catalog services in this process for one upload (the
    gateway calls this too, with its own ``home``)."""
    from ledger import Ledger, LogError
    from materialabs import bootstrap, config
    from materialabs.bus import BusError
    from materialabs.bus.embedded import EmbeddedBus
    from materialabs.catalog import Catalog

    try:
        ledger = Ledger.open(ledger_path)
    except LogError as error:
        raise SubmitError(f"{error}") from None
    try:
        home = home or config.home()
        bus = EmbeddedBus(home / "bus")
    except BusError as error:
        ledger.close()
        raise SubmitError(f"{error}; wait for the running campaign or set MATERIALABS_KAFKA") \
            from None
    try:
        runners = bootstrap.upload_runners(bus, ledger, store, Catalog(home / "catalog"))
        watcher = bus.consumer(f"upload-cli-{uuid.uuid4().hex}", bootstrap.UPLOAD.topics)
        publish(bus, submitted_event(upload))
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for runner in runners:
                runner.step(0.0)
            outcome = _find_outcome(watcher.poll(0.0), upload.upload_id)
            if outcome is not None:
                receipt = receipt_for(ledger, outcome, upload)
                # Let the catalog project the accepted records before the command ends.
                for runner in runners:
                    while runner.step(0.0):
                        pass
                return Outcome(upload, outcome, receipt)
        raise SubmitError(f"no outcome for upload {upload.upload_id} within {timeout_s:g} s")
    finally:
        bus.close()
        ledger.close()


class BusSubmitter:
    """Uploads in flight on Kafka: one producer and one watcher of the outcome topics, so
    the gateway can have many uploads waiting at once (the CLI uses it for one)."""

    def __init__(self, bootstrap: str) -> None:
        from materialabs.bootstrap import UPLOAD
        from materialabs.bus import BusError, open_bus

        self.bootstrap = bootstrap
        self._expected: set[str] = set()
        try:
            self._bus = open_bus(bootstrap)
            # Created here with the platform's partition count, not auto-created with the
            # broker's default of one (services reading them together need equal counts).
            self._bus.create_topics([*(c.TOPIC for c in UPLOAD.emits), *UPLOAD.topics])
            self._watcher = self._bus.consumer(f"upload-cli-{uuid.uuid4().hex}", UPLOAD.topics)
        except BusError as error:
            raise SubmitError(f"cannot reach the broker at {bootstrap}: {error}") from None

    def send(self, upload: Any) -> None:
        from materialabs.bus import BusError

        self._expected.add(upload.upload_id)
        try:
            publish(self._bus, submitted_event(upload))
        except BusError as error:
            self._expected.discard(upload.upload_id)
            raise SubmitError(f"cannot reach the broker at {self.bootstrap}: {error}") \
                from None

    def outcomes(self, timeout_s: float) -> list[Any]:
        """The outcomes (DatasetAccepted / UploadRejected) of sent uploads that arrived."""
        from materialabs.events import DecodeError, decode

        found = []
        for record in self._watcher.poll(timeout_s):
            try:
                event = decode(record.value)
            except DecodeError:
                continue
            upload_id = event.payload.get("upload_id")
            if upload_id in self._expected:
                self._expected.discard(upload_id)
                found.append(event)
        return found

    def forget(self, upload_id: str) -> None:
        self._expected.discard(upload_id)

    def close(self) -> None:
        self._watcher.close()
        self._bus.close()


def submit_distributed(upload: Any, ledger_path: Path, timeout_s: float) -> Outcome:
    from materialabs import config

    submitter = BusSubmitter(config.kafka_bootstrap())
    try:
        submitter.send(upload)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for outcome in submitter.outcomes(0.5):
                return Outcome(upload, outcome, _distributed_receipt(ledger_path, outcome, upload))
        raise SubmitError(
            f"no answer for upload {upload.upload_id} within {timeout_s:g} s: are the ingest "
            "and ledger services running (`make up`)? The upload stays submitted; its "
            "outcome will appear on datasets.accepted / uploads.rejected")
    finally:
        submitter.close()


def _find_outcome(records: list[Any], upload_id: str) -> Any:
    from materialabs.events import DecodeError, decode

    for record in records:
        try:
            event = decode(record.value)
        except DecodeError:
            continue
        if event.payload.get("upload_id") == upload_id:
            return event
    return None


def _distributed_receipt(ledger_path: Path, event: Any, upload: Any) -> dict[str, Any] | None:
    from ledger import Ledger, LogError

    if event.type != "DatasetAccepted":
        return None
    try:
        with Ledger.open(ledger_path, readonly=True) as ledger:
            return receipt_for(ledger, event, upload)
    except (LogError, LookupError) as error:
        print(f"note: no inclusion proof from {ledger_path} ({error}); run "
              f"`materialabs ledger prove {event['ledger_seq']}` on the ledger host",
              file=sys.stderr)
        return None


def receipt_for(ledger: Any, event: Any, upload: Any) -> dict[str, Any] | None:
    if event.type != "DatasetAccepted":
        return None
    return receipt_at(ledger, int(event["ledger_seq"]), upload)


def receipt_at(ledger: Any, seq: int, upload: Any) -> dict[str, Any]:
    """The receipt of ``upload`` recorded at ledger entry ``seq``: its inclusion proof under
    the latest signed head, and what the lab signed."""
    proof = ledger.prove_inclusion(seq)
    return {
        **proof.to_json(),
        "upload_id": upload.upload_id,
        "lab": upload.manifest.lab,
        "dataset_cid": upload.manifest.dataset_cid,
        "manifest_cid": upload.manifest_cid,
        "record_count": upload.manifest.record_count,
        "ledger_public_key": ledger.ledger_public.hex(),
    }
