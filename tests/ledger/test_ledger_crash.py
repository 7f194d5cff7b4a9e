"""Kill the writer mid-append: the ledger reopens, verifies, and keeps every acknowledged entry."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger import Ledger, TornTailWarning, init_ledger, public_bytes, read_private_key
from ledger.keys import write_private_key
from ledger.log import encode_frame
from ledger.verify import verify_file

WRITER = Path(__file__).with_name("ledger_crash_writer.py")
ROOT = Path(__file__).resolve().parents[2]


def start_ledger(tmp_path: Path) -> tuple[Path, Path, bytes]:
    ledger, admin_path = init_ledger(tmp_path / "l", checkpoint_every=16)
    lab = Ed25519PrivateKey.generate()
    ledger.register_key(read_private_key(admin_path), "crashlab", public_bytes(lab))
    ledger.close()
    key_file = tmp_path / "lab.key"
    write_private_key(lab, key_file)
    return tmp_path / "l", key_file, ledger.ledger_public


def run_writer_and_kill(
    directory: Path, key_file: Path, acks_before_kill: int
) -> list[tuple[int, str]]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    process = subprocess.Popen(
        [sys.executable, str(WRITER), str(directory), str(key_file)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )
    acknowledged: list[tuple[int, str]] = []
    deadline = time.monotonic() + 60
    assert process.stdout is not None
    try:
        while len(acknowledged) < acks_before_kill:
            line = process.stdout.readline()
            if not line:
                raise AssertionError(
                    f"writer exited early: {process.stderr.read() if process.stderr else ''}"
                )
            seq, cid = line.split()
            acknowledged.append((int(seq), cid))
            assert time.monotonic() < deadline, "writer too slow"
        time.sleep(random.uniform(0, 0.02))  # land the kill at an arbitrary point of an append
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        # Lines already written by the writer before it died are acknowledgements too.
        for line in process.stdout.read().splitlines():
            if line.count(" ") == 1:
                seq, cid = line.split()
                acknowledged.append((int(seq), cid))
    finally:
        if process.poll() is None:
            process.kill()
    return acknowledged


@pytest.mark.slow
@pytest.mark.timeout(180)
@pytest.mark.parametrize("round_", range(3))
def test_sigkilled_writer_loses_no_acknowledged_entry(tmp_path: Path, round_: int) -> None:
    directory, key_file, ledger_public = start_ledger(tmp_path)
    acknowledged = run_writer_and_kill(directory, key_file, acks_before_kill=150 + 50 * round_)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TornTailWarning)
        ledger = Ledger.open(directory)
    try:
        for seq, cid in acknowledged:
            assert ledger.get(seq).cid == cid, f"acknowledged entry {seq} lost"
        assert ledger.find(acknowledged[-1][1]) is not None
    finally:
        ledger.close()
    report = verify_file(directory, ledger_public, workers=1)
    assert report.ok, report.reason
    assert report.entries >= acknowledged[-1][0] + 1


# A whole last frame with a bad checksum is corruption, not a torn tail (it is refused and
# kept: test_ledger_corruption.py); a frame whose end was never written (zeros) is torn.
@pytest.mark.parametrize("tail", ["half frame", "length only", "zeros", "zero-filled end"])
def test_torn_tail_is_cut_with_a_warning_naming_the_offset(tmp_path: Path, tail: str) -> None:
    directory, key_file, ledger_public = start_ledger(tmp_path)
    log = directory / "ledger.log"
    good_size = log.stat().st_size
    frame = encode_frame(b"MLE1" + os.urandom(200))
    garbage = {
        "half frame": frame[: len(frame) // 2],
        "length only": frame[:3],
        "zeros": bytes(4096),
        "zero-filled end": frame[:100] + bytes(len(frame) - 100),
    }[tail]
    with open(log, "ab") as stream:
        stream.write(garbage)
    with pytest.warns(TornTailWarning, match=f"byte offset {good_size}"):
        ledger = Ledger.open(directory)
    try:
        assert log.stat().st_size == good_size
        assert len(ledger) == 2  # genesis + the lab registration
    finally:
        ledger.close()
    assert verify_file(directory, ledger_public, workers=1).ok


def test_corruption_before_the_tail_is_refused_not_repaired(tmp_path: Path) -> None:
    directory, _, _ = start_ledger(tmp_path)
    log = directory / "ledger.log"
    raw = bytearray(log.read_bytes())
    raw[20] ^= 0xFF  # inside entry 0, with entries after it
    log.write_bytes(bytes(raw))
    with pytest.raises(Exception, match="corrupt"):
        Ledger.open(directory)
    assert log.stat().st_size == len(raw)
