"""``POST /v1/uploads`` and ``GET /v1/uploads/{id}``: a lab's signed upload over HTTP.

The body is the upload the CLI builds (materialabs.upload.sign_upload), as JSON::

    {"manifest_b64": ..., "dataset_b64": ..., "signature_b64": ..., "public_key_b64": ...}

The signature over the manifest bytes is the only credential: the gateway checks it, that
the dataset hashes to the manifest's CID, then stores both and submits the upload the way
the CLI does (``materialabs.submission.submit_embedded`` over the home's embedded bus, or
``submit_distributed`` on Kafka when MATERIALABS_KAFKA is set). Ingest re-checks
everything (registered key, lab name, replay, every record) and answers.

The upload's handle is sha256(public key || manifest bytes): a retry of the same signed
upload finds the same handle, hence the same state and receipt, and is never submitted a
second time. States live in ``<home>/uploads/<id>.json`` so several gateway workers, and a
restarted gateway, agree.

Limits (``UploadLimits``; flags of ``materialabs gateway`` or MATERIALABS_UPLOAD_*): body
size (413), new uploads per key per window (429 with Retry-After) and the time to receive
the body (408). Each answer names the limit.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import fcntl
import hashlib
import json
import logging
import os
import queue
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse

LOG = logging.getLogger("materialabs.gateway.uploads")
_HANDLE = "0123456789abcdef"


@dataclass(frozen=True)
class UploadLimits:
    max_body_bytes: int = 256 * 2**20
    rate_count: int = 30          # new uploads per key ...
    rate_window_s: float = 60.0   # ... per this many seconds
    request_timeout_s: float = 60.0  # to receive the body
    outcome_timeout_s: float = 300.0  # for ingest and the ledger to answer

    @classmethod
    def from_environment(cls) -> UploadLimits:
        from materialabs import config

        return cls(**config.upload_limits())


class RateLimiter:
    """A sliding window of new uploads per public key (this process only)."""

    def __init__(self, count: int, window_s: float) -> None:
        self.count, self.window_s = count, window_s
        self._seen: dict[bytes, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def retry_after(self, key: bytes) -> float:
        """0 and the upload counted, or the seconds until the key may upload again."""
        now = time.monotonic()
        with self._lock:
            times = self._seen[key]
            while times and times[0] <= now - self.window_s:
                times.popleft()
            if len(times) >= self.count:
                return max(times[0] + self.window_s - now, 0.001)
            times.append(now)
            return 0.0


class UploadStates:
    """``<home>/uploads/<id>.json``: pending, then accepted (receipt) or refused (reasons).

    While an upload is being submitted its process holds an exclusive flock on
    ``<id>.lock``: a pending state whose lock nobody holds was left by a gateway that died
    (SIGKILL, power), and a retry of the same upload takes it over."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def path(self, handle: str) -> Path:
        return self.folder / f"{handle}.json"

    def hold(self, handle: str) -> int | None:
        """The held lock's descriptor, or None when a live process holds it."""
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.folder / f"{handle}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        return fd

    def release(self, handle: str, fd: int) -> None:
        """Drop the lock once a final state is written (its file goes too: a process that
        opened it meanwhile finds the final state when it gets the lock)."""
        (self.folder / f"{handle}.lock").unlink(missing_ok=True)
        os.close(fd)

    def read(self, handle: str) -> dict[str, Any] | None:
        try:
            return json.loads(self.path(handle).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None

    def write(self, handle: str, state: dict[str, Any]) -> None:
        # A unique temporary name: two gateway workers may write the same handle's state.
        self.folder.mkdir(parents=True, exist_ok=True)
        temporary = self.folder / f".{handle}.{os.getpid()}.{threading.get_ident()}.tmp"
        temporary.write_text(json.dumps(state), encoding="utf-8")
        os.replace(temporary, self.path(handle))


def _b64(body: dict[str, Any], name: str) -> bytes:
    value = body.get(name)
    if not isinstance(value, str):
        raise HTTPException(400, f"body field {name}: expected a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise HTTPException(400, f"body field {name}: not valid base64") from None


def parse_body(raw: bytes) -> Any:
    """The SignedUpload of a request body; HTTPException(400/401) naming the field."""
    from materialabs.store import cid_of_bytes as cid_of
    from materialabs.upload import ManifestError, SignedUpload, parse_manifest, verify_signature

    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as error:
        raise HTTPException(400, f"body: expected a JSON object ({error})") from None
    if not isinstance(body, dict):
        raise HTTPException(400, "body: expected a JSON object")
    manifest_bytes = _b64(body, "manifest_b64")
    dataset = _b64(body, "dataset_b64")
    signature = _b64(body, "signature_b64")
    public_key = _b64(body, "public_key_b64")
    if len(public_key) != 32 or len(signature) != 64:
        raise HTTPException(400, "public_key_b64/signature_b64: expected a 32-byte Ed25519 "
                                 "public key and a 64-byte signature")
    try:
        manifest = parse_manifest(manifest_bytes)
    except ManifestError as error:
        raise HTTPException(400, f"manifest_b64: {error}") from None
    if not verify_signature(public_key, signature, manifest_bytes):
        raise HTTPException(401, "signature_b64: the signature does not verify over the "
                                 "manifest with public_key_b64")
    if cid_of(dataset) != manifest.dataset_cid:
        raise HTTPException(400, f"dataset_b64: its CID is not the manifest's dataset_cid "
                                 f"{manifest.dataset_cid}")
    return SignedUpload(manifest, manifest_bytes, cid_of(manifest_bytes), dataset, signature,
                        public_key)


def handle_of(upload: Any) -> str:
    return hashlib.sha256(upload.public_key + upload.manifest_bytes).hexdigest()[:32]


@dataclass
class _Job:
    handle: str
    upload: Any
    lock: int
    deadline: float = 0.0


class Submitter:
    """One thread that submits uploads and writes their outcomes. On Kafka every upload is
    in flight at once (one producer, one watcher of the outcome topics); embedded, one at a
    time, as the CLI does, each holding the home's ledger writer for one upload."""

    def __init__(self, home: Path, states: UploadStates, limits: UploadLimits) -> None:
        from ledger.view import LedgerView
        from materialabs import config

        self.home, self.states, self.limits = home, states, limits
        self.bootstrap = config.kafka_bootstrap()
        self.ledger = LedgerView(home / "ledger")
        self._queue: queue.Queue[_Job] = queue.Queue()
        loop = self._run_on_kafka if self.bootstrap else self._run_embedded
        self._thread = threading.Thread(target=loop, name="uploads", daemon=True)
        self._thread.start()

    def submit(self, handle: str, upload: Any, lock: int) -> None:
        self._queue.put(_Job(handle, upload, lock))

    # --- the two loops ------------------------------------------------------------------

    def _run_embedded(self) -> None:
        from materialabs.submission import SubmitError, submit_embedded

        while True:
            job = self._queue.get()
            try:
                store = self._stored(job.upload)
                outcome = submit_embedded(job.upload, store, self.home / "ledger",
                                          self.limits.outcome_timeout_s, home=self.home)
                self._finish(job, self._state_of(job.upload, outcome.event, outcome.receipt))
            except SubmitError as error:
                self._finish(job, not_submitted(str(error)))
            except Exception as error:  # noqa: BLE001 — the state says why; the log has it
                self._finish(job, self._failure(job, error))

    def _run_on_kafka(self) -> None:
        from materialabs.submission import BusSubmitter, SubmitError

        bus: BusSubmitter | None = None
        in_flight: dict[str, deque[_Job]] = defaultdict(deque)  # by upload id, oldest first
        while True:
            for job in self._new_jobs(block=not in_flight):
                try:
                    self._stored(job.upload)
                    bus = bus or BusSubmitter(self.bootstrap)
                    bus.send(job.upload)
                except SubmitError as error:
                    self._finish(job, not_submitted(str(error)))
                    continue
                except Exception as error:  # noqa: BLE001
                    self._finish(job, self._failure(job, error))
                    continue
                job.deadline = time.monotonic() + self.limits.outcome_timeout_s
                in_flight[job.upload.upload_id].append(job)
            if bus is None:
                continue
            try:
                outcomes = bus.outcomes(0.2)
            except Exception as error:  # noqa: BLE001 — the broker went away: retry later
                LOG.warning("upload outcomes: %s", error)
                outcomes = []
            for event in outcomes:
                waiting = in_flight.get(event["upload_id"])
                if waiting:
                    job = waiting.popleft()
                    self._finish(job, self._state_of(job.upload, event, None))
            self._expire(in_flight, bus)

    def _new_jobs(self, block: bool) -> list[_Job]:
        jobs = []
        try:
            jobs.append(self._queue.get(timeout=None if block else 0.0))
            while True:
                jobs.append(self._queue.get_nowait())
        except queue.Empty:
            pass
        return jobs

    def _expire(self, in_flight: dict[str, deque[_Job]], bus: Any) -> None:
        now = time.monotonic()
        for upload_id in list(in_flight):
            waiting = in_flight[upload_id]
            while waiting and waiting[0].deadline <= now:
                job = waiting.popleft()
                self._finish(job, not_submitted(
                    f"no answer from ingest and the ledger within "
                    f"{self.limits.outcome_timeout_s:g} s; the upload may still be recorded"))
            if not waiting:
                del in_flight[upload_id]
                bus.forget(upload_id)

    # --- outcomes -----------------------------------------------------------------------

    def _stored(self, upload: Any) -> Any:
        from materialabs.store import open_store

        store = open_store(_store_url(self.home))
        for blob, cid in ((upload.dataset, upload.manifest.dataset_cid),
                          (upload.manifest_bytes, upload.manifest_cid)):
            if store.put_bytes(blob) != cid:
                raise RuntimeError(f"the store answered another CID than {cid}")
        return store

    def _state_of(self, upload: Any, event: Any, receipt: dict[str, Any] | None) -> dict:
        from materialabs.submission import receipt_for

        if event.type == "DatasetAccepted":
            seq = int(event["ledger_seq"])
            return accepted_state(upload, seq,
                                  receipt or receipt_for(self._ledger_at(seq), event, upload))
        if str(event["code"]) == "replay":
            # The same signed upload again (a retry after a gateway crash, or two racing
            # workers): if the ledger holds it, that entry is this upload's receipt.
            entry = self._recorded(upload)
            if entry is not None:
                return accepted_state(upload, entry.seq, self._receipt_at(entry.seq, upload))
        return {"state": "refused", "code": str(event["code"]),
                "reasons": str(event["reason"]).splitlines()}

    def _recorded(self, upload: Any) -> Any:
        """The ledger entry of this signed manifest; waits a little for one being recorded."""
        deadline = time.monotonic() + min(30.0, self.limits.outcome_timeout_s)
        while True:
            entry = self.ledger.current().find_payload(upload.manifest_bytes)
            if entry is not None or time.monotonic() >= deadline:
                return entry
            time.sleep(0.2)

    def _ledger_at(self, seq: int) -> Any:
        """The ledger as read now, once it holds entry ``seq`` (the ledger service writes it
        before it announces it, but this process may have read the file just before)."""
        deadline = time.monotonic() + 10.0
        ledger = self.ledger.current()
        while len(ledger) <= seq and time.monotonic() < deadline:
            time.sleep(0.05)
            ledger = self.ledger.current()
        return ledger

    def _receipt_at(self, seq: int, upload: Any) -> dict[str, Any]:
        from materialabs.submission import receipt_at

        return receipt_at(self._ledger_at(seq), seq, upload)

    def _failure(self, job: _Job, error: Exception) -> dict[str, Any]:
        LOG.error("upload %s failed", job.handle, exc_info=error)
        detail = getattr(error, "args", [""])[0] or type(error).__name__
        return {"state": "refused", "code": "gateway_error", "retryable": True,
                "reasons": [f"the gateway could not submit it: {detail}"]}

    def _finish(self, job: _Job, state: dict[str, Any]) -> None:
        try:
            self.states.write(job.handle, {**(self.states.read(job.handle) or {}), **state})
        finally:
            self.states.release(job.handle, job.lock)


def accepted_state(upload: Any, seq: int, receipt: dict[str, Any] | None) -> dict[str, Any]:
    return {"state": "accepted", "ledger_seq": seq, "dataset_cid": upload.manifest.dataset_cid,
            "manifest_cid": upload.manifest_cid, "record_count": upload.manifest.record_count,
            "receipt": receipt}


def not_submitted(reason: str) -> dict[str, Any]:
    """Not the platform's answer (ledger locked, broker down, no answer in time): a retry of
    the same signed upload submits it again."""
    return {"state": "refused", "code": "not_submitted", "retryable": True, "reasons": [reason]}


def _store_url(home: Path) -> str:
    from materialabs import config

    url, source = config.store_setting()
    return url if source else f"local:{home / 'store'}"


def build_router(home: Path, limits: UploadLimits | None = None) -> APIRouter:
    """The routes; ``limits`` default to the MATERIALABS_UPLOAD_* variables (flags of
    ``materialabs gateway`` set them)."""
    limits = limits or UploadLimits.from_environment()
    router = APIRouter(prefix="/v1/uploads", tags=["uploads"])
    states = UploadStates(Path(home) / "uploads")
    limiter = RateLimiter(limits.rate_count, limits.rate_window_s)
    submitter: list[Submitter] = []  # started on the first upload
    start_lock = threading.Lock()

    async def read_body(request: Request) -> bytes:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limits.max_body_bytes:
            raise HTTPException(413, f"the body is {int(declared)} bytes; the gateway takes at "
                                     f"most {limits.max_body_bytes} bytes per upload "
                                     "(--upload-max-bytes)")
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limits.max_body_bytes:
                raise HTTPException(413, f"the body exceeds {limits.max_body_bytes} bytes, "
                                         "the gateway's limit per upload (--upload-max-bytes)")
            chunks.append(chunk)
        return b"".join(chunks)

    def view(handle: str, state: dict[str, Any]) -> dict[str, Any]:
        return {"id": handle, **state}

    def limit(upload: Any) -> None:
        wait = limiter.retry_after(upload.public_key)
        if wait:
            seconds = max(1, int(wait + 0.999))
            raise HTTPException(
                429, f"this key submitted {limits.rate_count} uploads within "
                     f"{limits.rate_window_s:g} s, the gateway's limit (--upload-rate); "
                     f"retry after {seconds} s", headers={"Retry-After": str(seconds)})

    @router.post("", status_code=202, summary="Submit a signed upload")
    async def post_upload(request: Request) -> JSONResponse:
        try:
            raw = await asyncio.wait_for(read_body(request), limits.request_timeout_s)
        except TimeoutError:
            raise HTTPException(408, f"the body did not arrive within "
                                     f"{limits.request_timeout_s:g} s (--upload-timeout)") \
                from None
        upload = parse_body(raw)
        handle = handle_of(upload)
        lock = states.hold(handle)  # None: a live process is submitting this upload now
        try:
            existing = states.read(handle)
            if lock is not None and existing is not None and existing.get("retryable"):
                existing = None  # not the platform's answer: submit it again
            if lock is not None and (existing is None or existing["state"] == "pending"):
                # New, or left pending by a gateway that died: this process submits it.
                if existing is None:
                    limit(upload)
                pending = existing or {
                    "state": "pending", "upload_id": upload.upload_id,
                    "lab": upload.manifest.lab, "manifest_cid": upload.manifest_cid}
                states.write(handle, pending)
                with start_lock:
                    if not submitter:
                        submitter.append(Submitter(Path(home), states, limits))
                submitter[0].submit(handle, upload, lock)
                lock = None  # the submitter releases it with the outcome
                existing = pending
        finally:
            if lock is not None:
                states.release(handle, lock)
        existing = existing or {"state": "pending", "upload_id": upload.upload_id}
        return JSONResponse(view(handle, existing), status_code=202,
                            headers={"Location": f"/v1/uploads/{handle}"})

    @router.get("/{handle}", summary="An upload's state, receipt or reasons")
    def get_upload(handle: str) -> dict[str, Any]:
        if len(handle) != 32 or any(c not in _HANDLE for c in handle):
            raise HTTPException(400, "upload id: expected 32 lowercase hex digits")
        state = states.read(handle)
        if state is None:
            raise HTTPException(404, f"no upload with id {handle}")
        return view(handle, state)

    return router
