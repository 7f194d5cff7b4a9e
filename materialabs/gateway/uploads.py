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
    """``<home>/uploads/<id>.json``: pending, then accepted (receipt) or refused (reasons)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def path(self, handle: str) -> Path:
        return self.folder / f"{handle}.json"

    def claim(self, handle: str, state: dict[str, Any]) -> bool:
        """Write the pending state unless one exists (O_EXCL: one submission per handle)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(self.path(handle), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w", encoding="utf-8") as stream:
            json.dump(state, stream)
        return True

    def read(self, handle: str) -> dict[str, Any] | None:
        try:
            return json.loads(self.path(handle).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except ValueError:  # being replaced right now
            time.sleep(0.05)
            return json.loads(self.path(handle).read_text(encoding="utf-8"))

    def write(self, handle: str, state: dict[str, Any]) -> None:
        temporary = self.path(handle).with_suffix(".tmp")
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


class Submitter:
    """One thread submitting uploads one at a time, as the CLI does: embedded, each holds
    the home's ledger writer for the time of one upload."""

    def __init__(self, home: Path, states: UploadStates, limits: UploadLimits) -> None:
        self.home, self.states, self.limits = home, states, limits
        self._queue: queue.Queue[tuple[str, Any]] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="uploads", daemon=True)
        self._thread.start()

    def submit(self, handle: str, upload: Any) -> None:
        self._queue.put((handle, upload))

    def _run(self) -> None:
        while True:
            handle, upload = self._queue.get()
            try:
                state = self._outcome(upload)
            except Exception as error:  # noqa: BLE001 — the state says why; the log has it
                LOG.exception("upload %s failed", handle)
                detail = getattr(error, "args", [""])[0] or type(error).__name__
                state = {"state": "refused", "code": "gateway_error", "retryable": True,
                         "reasons": [f"the gateway could not submit it: {detail}"]}
            self.states.write(handle, {**(self.states.read(handle) or {}), **state})

    def _outcome(self, upload: Any) -> dict[str, Any]:
        from materialabs import config
        from materialabs.store import open_store
        from materialabs.submission import SubmitError, submit_distributed, submit_embedded

        store = open_store(_store_url(self.home))
        for blob, cid in ((upload.dataset, upload.manifest.dataset_cid),
                          (upload.manifest_bytes, upload.manifest_cid)):
            if store.put_bytes(blob) != cid:
                raise RuntimeError(f"the store answered another CID than {cid}")
        ledger_path = self.home / "ledger"
        try:
            if config.kafka_bootstrap():
                outcome = submit_distributed(upload, ledger_path,
                                                  self.limits.outcome_timeout_s)
            else:
                outcome = submit_embedded(upload, store, ledger_path,
                                               self.limits.outcome_timeout_s, home=self.home)
        except SubmitError as error:
            # Not the platform's answer (ledger locked, broker down, no answer in time): a
            # retry of the same signed upload submits it again.
            return {"state": "refused", "code": "not_submitted", "retryable": True,
                    "reasons": [str(error)]}
        event = outcome.event
        if not outcome.accepted:
            return {"state": "refused", "code": str(event["code"]),
                    "reasons": str(event["reason"]).splitlines()}
        return {"state": "accepted", "ledger_seq": int(event["ledger_seq"]),
                "dataset_cid": event["dataset_cid"], "manifest_cid": event["manifest_cid"],
                "record_count": int(event["record_count"]), "receipt": outcome.receipt}


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
        return {"id": handle, **{k: v for k, v in state.items() if k != "manifest_sha256"}}

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
        existing = states.read(handle)
        if existing is not None and existing.get("retryable"):
            states.path(handle).unlink(missing_ok=True)
            existing = None
        if existing is None:
            wait = limiter.retry_after(upload.public_key)
            if wait:
                seconds = max(1, int(wait + 0.999))
                raise HTTPException(
                    429, f"this key submitted {limits.rate_count} uploads within "
                         f"{limits.rate_window_s:g} s, the gateway's limit (--upload-rate); "
                         f"retry after {seconds} s", headers={"Retry-After": str(seconds)})
            pending = {"state": "pending", "upload_id": upload.upload_id,
                       "lab": upload.manifest.lab, "manifest_cid": upload.manifest_cid,
                       "manifest_sha256": hashlib.sha256(upload.manifest_bytes).hexdigest()}
            if states.claim(handle, pending):
                with start_lock:
                    if not submitter:
                        submitter.append(Submitter(Path(home), states, limits))
                submitter[0].submit(handle, upload)
            existing = states.read(handle) or pending
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
