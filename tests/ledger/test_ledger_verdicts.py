"""One-line verdicts that other parts show people: the campaign report's `ledger verify`
line and the code an upload refusal carries back to the lab."""

from __future__ import annotations

from pathlib import Path

from ledger.keys import KeyRecord
from ledger.rules import lab_refusal
from materialabs.loop import verify_ledger
from services.ledger.app import refusal_code
from tests.ledger.ledger_builders import build_ledger


def test_the_report_line_says_failed_for_a_corrupt_ledger_instead_of_raising(tmp_path: Path):
    built = build_ledger(tmp_path / "ledger", uploads=12)
    built.ledger.close()
    assert verify_ledger(tmp_path / "ledger").startswith("`ledger verify` passed")
    log = tmp_path / "ledger" / "ledger.log"
    data = bytearray(log.read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit, mid-log: not a torn tail
    log.write_bytes(bytes(data))
    verdict = verify_ledger(tmp_path / "ledger")
    assert verdict.startswith("`ledger verify` FAILED"), verdict


def test_a_lab_naming_another_lab_is_told_its_key_does_not_fit():
    key_of_lab_b = KeyRecord(public_key=bytes(32), lab="lab-b", role="lab", registered_seq=1)
    reason = lab_refusal({"lab": "lab-a"}, key_of_lab_b)
    assert reason is not None
    assert refusal_code(reason) == "unknown_key"
