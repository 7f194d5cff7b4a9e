"""POST /v1/uploads through a real uvicorn gateway over a real home (embedded bus)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "upload"))
from upload_helpers import LabHome, good_records, make_lab_home, write_good_csv  # noqa: E402

from materialabs.cli import main  # noqa: E402
from materialabs.cli.upload import _MemoryStore, upload_body  # noqa: E402
from materialabs.gateway.uploads import UploadLimits  # noqa: E402
from materialabs.upload import sign_upload  # noqa: E402
from tests.gateway.conftest import Server  # noqa: E402


def limited_server(home: Path, limits: UploadLimits) -> Server:
    """The gateway with these upload limits, passed as its flags pass them: MATERIALABS_UPLOAD_*."""
    return Server(home, env={
        "MATERIALABS_UPLOAD_MAX_BYTES": str(limits.max_body_bytes),
        "MATERIALABS_UPLOAD_RATE": f"{limits.rate_count}/{limits.rate_window_s}",
        "MATERIALABS_UPLOAD_TIMEOUT": str(limits.request_timeout_s)})


@pytest.fixture
def lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> LabHome:
    return make_lab_home(tmp_path, monkeypatch)


def signed_body(lab: LabHome, count: int = 3, lab_name: str = "lab-a",
                key_path: Path | None = None) -> str:
    from ledger.keys import read_private_key

    key = read_private_key(key_path or lab.lab_key, None)
    upload = sign_upload(key, lab_name, good_records(count), "PBE", {}, ["lab.csv"],
                         _MemoryStore())
    return json.dumps(upload_body(upload))


def wait_outcome(http: httpx.Client, handle: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        state = http.get(f"/v1/uploads/{handle}").json()
        if state["state"] != "pending":
            return state
        time.sleep(0.1)
    raise AssertionError(f"upload {handle} still pending")


def test_upload_receipt_retry_refusals_limits(lab: LabHome, tmp_path: Path) -> None:
    limits = UploadLimits(max_body_bytes=200_000, rate_count=3, rate_window_s=60)
    with limited_server(lab.home, limits) as server, \
            httpx.Client(base_url=server.url, timeout=30) as http:
        body = signed_body(lab)
        first = http.post("/v1/uploads", content=body)
        assert first.status_code == 202, first.text
        state = wait_outcome(http, first.json()["id"])
        assert state["state"] == "accepted", state
        receipt = tmp_path / "receipt.json"
        receipt.write_text(json.dumps(state["receipt"]))
        assert main(["ledger", "verify-proof", str(receipt), "--ledger-key",
                     str(lab.ledger / "ledger.pub")]) == 0
        size = lab.ledger_size()
        # the retry: same id, same receipt, no second entry
        again = http.post("/v1/uploads", content=body)
        assert again.status_code == 202 and again.json()["id"] == first.json()["id"]
        assert wait_outcome(http, again.json()["id"])["receipt"] == state["receipt"]
        assert lab.ledger_size() == size
        # a stranger's key, and lab-a's key naming another lab: refused with reasons
        assert main(["keys", "new", "--lab", "stranger", "--out", str(tmp_path / "s")]) == 0
        stranger = http.post("/v1/uploads", content=signed_body(
            lab, key_path=tmp_path / "s" / "stranger.key", lab_name="stranger"))
        refused = wait_outcome(http, stranger.json()["id"])
        assert refused["state"] == "refused" and refused["reasons"], refused
        other = http.post("/v1/uploads", content=signed_body(lab, lab_name="lab-b"))
        refused = wait_outcome(http, other.json()["id"])
        assert refused["state"] == "refused" and refused["reasons"], refused
        assert lab.ledger_size() == size
        # lab-a's 3rd new upload passes, its 4th is 429 with Retry-After; a retry is not counted
        assert http.post("/v1/uploads", content=signed_body(lab, count=2)).status_code == 202
        limited = http.post("/v1/uploads", content=signed_body(lab, count=4))
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
        assert "--upload-rate" in limited.json()["detail"]
        assert http.post("/v1/uploads", content=body).status_code == 202
        # oversized
        big = http.post("/v1/uploads", content=b"x" * 300_000)
        assert big.status_code == 413 and "200000" in big.json()["detail"]
        # malformed: 400 (or 401 for a bad signature), never 500
        good = json.loads(body)
        forged = {**good, "signature_b64": good["signature_b64"][:-4] + "AAA="}
        for bad in (b"", b"[]", b"{", b"\xff\xfe", json.dumps({"manifest_b64": 5}).encode(),
                    json.dumps({**good, "dataset_b64": "!!"}).encode(),
                    json.dumps({**good, "manifest_b64": "e30="}).encode(),
                    json.dumps({**good, "dataset_b64": "e30="}).encode()):
            answer = http.post("/v1/uploads", content=bad)
            assert answer.status_code == 400, (bad[:60], answer.text)
            assert answer.json()["detail"]
        assert http.post("/v1/uploads", content=json.dumps(forged)).status_code in (400, 401)
        assert http.get("/v1/uploads/nothex").status_code == 400
        assert http.get("/v1/uploads/" + "0" * 32).status_code == 404


def test_upload_url_end_to_end(lab: LabHome, tmp_path: Path,
                               capsys: pytest.CaptureFixture[str]) -> None:
    csv_path = write_good_csv(tmp_path / "lab.csv", 4)
    with limited_server(lab.home, UploadLimits()) as server:
        receipt = tmp_path / "r.json"
        assert lab.upload(csv_path, extra=("--url", server.url, "--receipt",
                                           str(receipt))) == 0
        assert "ACCEPTED" in capsys.readouterr().out
        assert main(["ledger", "verify-proof", str(receipt), "--ledger-key",
                     str(lab.ledger / "ledger.pub")]) == 0
        assert lab.upload(csv_path, lab="lab-b", extra=("--url", server.url)) == 2
        assert "REFUSED" in capsys.readouterr().out


def test_slow_body_is_408(lab: LabHome) -> None:
    import socket

    limits = UploadLimits(request_timeout_s=0.5)
    with limited_server(lab.home, limits) as server:
        port = int(server.url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            raw.sendall(b"POST /v1/uploads HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n"
                        b"Content-Type: application/json\r\n\r\n{\"manif")
            answer = ""
            while "--upload-timeout" not in answer:  # the head and body may come apart
                chunk = raw.recv(4096).decode()
                if not chunk:
                    break
                answer += chunk
        assert answer.startswith("HTTP/1.1 408") and "--upload-timeout" in answer, answer


def test_limit_flags_and_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    import argparse

    from materialabs import config
    from materialabs.cli import UserError
    from materialabs.cli.gateway import set_upload_limits

    for name in ("MATERIALABS_UPLOAD_MAX_BYTES", "MATERIALABS_UPLOAD_RATE",
                 "MATERIALABS_UPLOAD_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)
    set_upload_limits(argparse.Namespace(upload_max_bytes="1000", upload_rate="5/10",
                                         upload_timeout="2.5"))
    assert UploadLimits.from_environment() == UploadLimits(
        max_body_bytes=1000, rate_count=5, rate_window_s=10.0, request_timeout_s=2.5)
    for bad in ({"upload_rate": "5"}, {"upload_rate": "0/10"}, {"upload_max_bytes": "-1"},
                {"upload_timeout": "nan"}):
        with pytest.raises(UserError, match="--upload-"):
            set_upload_limits(argparse.Namespace(**bad))
    monkeypatch.setenv("MATERIALABS_UPLOAD_RATE", "x/1")
    with pytest.raises(config.ConfigError, match="MATERIALABS_UPLOAD_RATE"):
        config.check_environment()


def test_concurrent_retries_and_a_locked_ledger(lab: LabHome) -> None:
    """Six clients post the same upload at once: one id, one entry. While another process
    holds the ledger the upload is refused as not_submitted; its retry then succeeds."""
    from concurrent.futures import ThreadPoolExecutor

    from ledger import Ledger

    with limited_server(lab.home, UploadLimits()) as server, \
            httpx.Client(base_url=server.url, timeout=30) as http:
        body = signed_body(lab)
        size = lab.ledger_size()
        with ThreadPoolExecutor(6) as pool:
            answers = list(pool.map(lambda _: http.post("/v1/uploads", content=body), range(6)))
        assert {a.status_code for a in answers} == {202}
        assert len({a.json()["id"] for a in answers}) == 1
        assert wait_outcome(http, answers[0].json()["id"])["state"] == "accepted"
        assert lab.ledger_size() == size + 1

        second = signed_body(lab, count=2)
        with Ledger.open(lab.ledger):  # another writer holds the ledger
            first_try = http.post("/v1/uploads", content=second).json()
            state = wait_outcome(http, first_try["id"])
        assert state["state"] == "refused" and state["code"] == "not_submitted", state
        assert "lock" in " ".join(state["reasons"]), state
        retry = http.post("/v1/uploads", content=second).json()
        assert retry["id"] == first_try["id"]
        assert wait_outcome(http, retry["id"])["state"] == "accepted"
        assert lab.ledger_size() == size + 2


def test_a_pending_upload_left_by_a_dead_gateway_is_taken_over_by_a_retry(
    lab: LabHome,
) -> None:
    """A gateway SIGKILLed mid-submission leaves a pending state that no process holds the
    lock of: the client's retry of the same signed upload is submitted again, once."""
    from materialabs.gateway.uploads import UploadStates, handle_of, parse_body

    body = signed_body(lab)
    handle = handle_of(parse_body(body.encode()))
    states = UploadStates(lab.home / "uploads")
    states.write(handle, {"state": "pending", "upload_id": "left-behind"})
    size = lab.ledger_size()
    with limited_server(lab.home, UploadLimits()) as server, \
            httpx.Client(base_url=server.url, timeout=30) as http:
        assert http.get(f"/v1/uploads/{handle}").json()["state"] == "pending"
        assert http.post("/v1/uploads", content=body).json()["id"] == handle
        state = wait_outcome(http, handle)
    assert state["state"] == "accepted", state
    assert lab.ledger_size() == size + 1
    assert not (lab.home / "uploads" / f"{handle}.lock").exists()


def test_an_upload_the_ledger_already_holds_answers_its_receipt(
    lab: LabHome, tmp_path: Path
) -> None:
    """The gateway lost its state of an accepted upload (a crash between the ledger's entry
    and the state's write): the retry is a replay to ingest, and the answer is the entry
    already recorded, with its receipt, never a refusal and never a second entry. The
    receipt then passes `ledger verify-proof`, and Go's sumdb checks that entry from the
    gateway's tiles."""
    import subprocess

    from tests.gateway.test_transparency_log import _note_key, build_checker

    body = signed_body(lab)
    with limited_server(lab.home, UploadLimits()) as server, \
            httpx.Client(base_url=server.url, timeout=30) as http:
        handle = http.post("/v1/uploads", content=body).json()["id"]
        first = wait_outcome(http, handle)
        assert first["state"] == "accepted", first
        size = lab.ledger_size()
        (lab.home / "uploads" / f"{handle}.json").unlink()
        assert http.post("/v1/uploads", content=body).json()["id"] == handle
        again = wait_outcome(http, handle)
        assert again["state"] == "accepted", again
        assert again["ledger_seq"] == first["ledger_seq"]
        assert lab.ledger_size() == size
        receipt = tmp_path / "receipt.json"
        receipt.write_text(json.dumps(again["receipt"]))
        assert main(["ledger", "verify-proof", str(receipt), "--ledger-key",
                     str(lab.ledger / "ledger.pub")]) == 0
        checked = subprocess.run([str(build_checker()), f"{server.url}/log",
                                  _note_key(lab.home)], capture_output=True, text=True,
                                 timeout=120)
    assert checked.returncode == 0, checked.stderr
    assert f"{size} entries proved" in checked.stdout, checked.stdout
