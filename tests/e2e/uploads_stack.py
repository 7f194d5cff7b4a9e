"""A distributed stack for HTTP uploads (Kafka, Kubo and the services of one run folder, started
through infra/ as `make up` does), lab keys, signed uploads and a client that retries: shared by
tests/e2e/test_e2e_uploads_http.py and benchmarks/uploads.py."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from ledger import Ledger, public_bytes, read_private_key
from materialabs.cli.upload import _MemoryStore, upload_body
from materialabs.records import LabRecord
from materialabs.upload import sign_upload
from tests.upload.upload_helpers import perovskite

ROOT = Path(__file__).resolve().parents[2]
RECORDS_PER_UPLOAD = 2
RETRYABLE_HTTP = {408, 429, 500, 502, 503, 504}


@dataclass
class Upload:
    lab: str
    body: str
    started: float = 0.0
    finished: float = 0.0
    posts: int = 0
    state: dict[str, Any] = field(default_factory=dict)


def records(lab_index: int, upload_index: int) -> list[LabRecord]:
    first = (lab_index * 1000 + upload_index) * RECORDS_PER_UPLOAD
    return [LabRecord("lab.csv", f"row {i + 1}", perovskite(first + i),
                      {"formation_energy_per_atom_eV": -3.0 + 0.001 * ((first + i) % 1000)},
                      f"lab{lab_index}-u{upload_index}-{i}")
            for i in range(RECORDS_PER_UPLOAD)]


def signed(key: Any, lab: str, lab_index: int, upload_index: int) -> str:
    upload = sign_upload(key, lab, records(lab_index, upload_index), "PBE", {}, ["lab.csv"],
                         _MemoryStore())
    return json.dumps(upload_body(upload))


class Stack:
    """Kafka, Kubo and the services of one temporary run folder, through infra/."""

    def __init__(self, run: Path) -> None:
        self.run = run
        self.gateway_port = _free_port()
        self.env = {**os.environ, "MATERIALABS_RUN_DIR": str(run), "PYTHONPATH": str(ROOT),
                    "SERVICE_START_GRACE": "3", "GATEWAY_PORT": str(self.gateway_port),
                    # 50 uploads per lab within a minute: above the default limit of 30
                    "MATERIALABS_UPLOAD_RATE": "10000/60"}
        for name in ("MATERIALABS_STORE", "MATERIALABS_KAFKA", "MATERIALABS_IPFS", "SCALE",
                     "MATERIALABS_HOME", "MATERIALABS_LEDGER"):
            self.env.pop(name, None)
        self.url = f"http://127.0.0.1:{self.gateway_port}"
        self.home = run / "home"
        self.own_infra = False

    def script(self, *args: str) -> None:
        subprocess.run(["bash", *args], env=self.env, check=True, cwd=ROOT,
                       stdout=subprocess.DEVNULL, timeout=600)

    def start_infra(self) -> None:
        """Start this run folder's own broker and Kubo node (stopped by ``stop``)."""
        self.script("infra/kafka/start.sh")
        self.script("infra/ipfs/start.sh")
        self.own_infra = True
        self._set_up()

    def use_infra(self, bootstrap: str, api: str) -> None:
        """Run the services on a broker and a Kubo node started elsewhere (test fixtures)."""
        for component, name, value in (("kafka", "bootstrap", bootstrap), ("ipfs", "api", api)):
            (self.run / component).mkdir(parents=True, exist_ok=True)
            (self.run / component / name).write_text(value + "\n")
        self._set_up()

    def _set_up(self) -> None:
        self.env["MATERIALABS_KAFKA"] = (self.run / "kafka" / "bootstrap").read_text().strip()
        self.env["MATERIALABS_IPFS"] = (self.run / "ipfs" / "api").read_text().strip()
        self.env["MATERIALABS_HOME"] = str(self.home)
        subprocess.run([str(ROOT / ".venv/bin/materialabs"), "setup"], env=self.env,
                       check=True, stdout=subprocess.DEVNULL, timeout=300)

    def start_services(self) -> None:
        self.script("infra/services.sh", "start")
        self.wait_gateway()

    def wait_gateway(self, limit_s: float = 120) -> None:
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/optimade/versions", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"the gateway did not answer on {self.url} within {limit_s:g} s")

    def kill(self, instance: str) -> None:
        pid = int((self.run / "services" / f"{instance}.pid").read_text())
        os.kill(pid, signal.SIGKILL)
        while _alive(pid):
            time.sleep(0.05)

    def stop(self) -> None:
        scripts = [("infra/services.sh", "stop")]
        if self.own_infra:
            scripts += [("infra/ipfs/stop.sh",), ("infra/kafka/stop.sh",)]
        for script in scripts:
            subprocess.run(["bash", *script], env=self.env, cwd=ROOT,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=300)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie until services.sh's shell reaps it
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def register_labs(home: Path, count: int) -> list[tuple[str, Any]]:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    admin = read_private_key(home / "keys" / "admin.key")
    labs = []
    with Ledger.open(home / "ledger") as ledger:
        for index in range(count):
            key = Ed25519PrivateKey.generate()
            ledger.register_key(admin, f"bench-lab-{index:02d}", public_bytes(key))
            labs.append((f"bench-lab-{index:02d}", key))
    return labs


def deliver(http: httpx.Client, upload: Upload, stop_at: float) -> None:
    """POST until the gateway has it, poll until its outcome; retry the same bytes on a
    dead gateway or a retryable answer."""
    upload.started = upload.started or time.monotonic()
    handle = None
    while time.monotonic() < stop_at:
        try:
            if handle is None:
                upload.posts += 1
                answer = http.post("/v1/uploads", content=upload.body)
                if answer.status_code in RETRYABLE_HTTP:
                    time.sleep(float(answer.headers.get("Retry-After", "0.5")))
                    continue
                answer.raise_for_status()
                handle = answer.json()["id"]
            state = http.get(f"/v1/uploads/{handle}").json()
        except (httpx.HTTPError, ValueError):
            time.sleep(0.5)  # the gateway is down or restarting
            handle = None
            continue
        if state["state"] == "pending":
            time.sleep(0.1)
            continue
        if state.get("retryable"):
            handle = None
            time.sleep(0.5)
            continue
        upload.state, upload.finished = state, time.monotonic()
        return
    upload.state = {"state": "timeout"}


def check_receipts(home: Path, uploads: list[Upload]) -> int:
    """Receipts that fail verify-proof's check (by the CLI's code)."""
    from materialabs.cli import main

    bad = 0
    with tempfile.TemporaryDirectory() as folder:
        for index, upload in enumerate(uploads):
            path = Path(folder) / f"{index}.json"
            path.write_text(json.dumps(upload.state["receipt"]))
            with contextlib.redirect_stdout(io.StringIO()):
                bad += main(["ledger", "verify-proof", str(path), "--ledger-key",
                             str(home / "ledger" / "ledger.pub")]) != 0
    return bad


def dataset_entries(home: Path) -> tuple[int, int]:
    """(dataset entries, distinct signed manifests among them)."""
    with Ledger.open(home / "ledger", readonly=True) as ledger:
        payloads = [entry.payload for entry in ledger.entries() if entry.kind == "dataset"]
    return len(payloads), len(set(payloads))


