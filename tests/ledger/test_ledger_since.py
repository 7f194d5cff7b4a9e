"""Silent loss at the end: entries cut at a frame boundary are caught against a head seen before.

A log cut after its last checkpoint still parses, chains and verifies on its own; only a tree
head (or a receipt, which carries one) kept from earlier can show that entries are missing.
``ledger verify --since FILE`` proves the log is an append-only extension of that head
(RFC 6962 consistency) and at least as large.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from ledger_builders import build_ledger, frame_spans, upload

from ledger import Ledger, public_bytes, read_private_key
from ledger.checkpoints import sign_tree_head
from ledger.verify import verify_file
from materialabs.cli import main


@pytest.fixture()
def ledger_dir(tmp_path: Path) -> Path:
    built = build_ledger(tmp_path / "l", uploads=20, checkpoint_every=0)
    built.ledger.close()
    return tmp_path / "l"


def verify(directory: Path, *extra: str) -> int:
    return main(["ledger", "verify", str(directory / "ledger.log"),
                 "--ledger-key", str(directory / "ledger.pub"), "--workers", "1", *extra])


def head_file(directory: Path, path: Path) -> Path:
    """A signed tree head at the ledger's current size, as an auditor would have kept it."""
    with Ledger.open(directory, readonly=True) as ledger:
        path.write_text(json.dumps(ledger.tree_head().to_json()))
    return path


def cut_last_entries(directory: Path, count: int) -> None:
    log = directory / "ledger.log"
    spans = frame_spans(log)
    log.write_bytes(log.read_bytes()[: spans[-count][0]])


def test_cut_at_a_frame_boundary_verifies_alone_but_not_since_a_head(
    ledger_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    head = head_file(ledger_dir, tmp_path / "head.json")
    assert verify(ledger_dir, "--since", str(head)) == 0
    cut_last_entries(ledger_dir, 2)
    assert verify(ledger_dir) == 0  # nothing in the log itself says it was longer
    capsys.readouterr()
    assert verify(ledger_dir, "--since", str(head)) == 1
    err = capsys.readouterr().err
    assert "missing" in err and str(json.loads(head.read_text())["tree_size"]) in err


def test_a_receipt_is_a_since_file(ledger_dir: Path, tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    receipt = tmp_path / "receipt.json"
    assert main(["ledger", "prove", "21", "--ledger", str(ledger_dir),
                 "--out", str(receipt)]) == 0
    assert verify(ledger_dir, "--since", str(receipt)) == 0
    cut_last_entries(ledger_dir, 1)
    capsys.readouterr()
    assert verify(ledger_dir, "--since", str(receipt)) == 1
    assert "missing" in capsys.readouterr().err


def test_since_a_head_of_another_history_fails(ledger_dir: Path, tmp_path: Path) -> None:
    """A head the ledger key signed over other entries (a split view) is not extended."""
    with Ledger.open(ledger_dir) as ledger:
        forged = sign_tree_head(ledger._key, len(ledger) - 3, bytes(32), 1)
    path = tmp_path / "forged.json"
    path.write_text(json.dumps(forged.to_json()))
    assert verify(ledger_dir, "--since", str(path)) == 1
    report = verify_file(ledger_dir, Ledger.open(ledger_dir, readonly=True).ledger_public,
                         trusted_heads=[forged], workers=1)
    assert not report.ok and "consisten" in report.reason


def test_a_grown_log_is_consistent_with_an_older_head(ledger_dir: Path, tmp_path: Path) -> None:
    head = head_file(ledger_dir, tmp_path / "head.json")
    with Ledger.open(ledger_dir) as ledger:
        lab = Ed25519PrivateKey.generate()
        ledger.register_key(read_private_key(ledger_dir / "admin.key"), "new", public_bytes(lab))
        for n in range(5):
            upload(ledger, lab, 500 + n)
        ledger.checkpoint()
    assert verify(ledger_dir, "--since", str(head), "--since", str(head)) == 0


def test_the_directory_tree_head_is_checked_automatically(tmp_path: Path) -> None:
    built = build_ledger(tmp_path / "l", uploads=20, checkpoint_every=8)
    built.ledger.close()
    directory = tmp_path / "l"
    head = json.loads((directory / "tree-head.json").read_text())
    log = directory / "ledger.log"
    log.write_bytes(log.read_bytes()[: frame_spans(log)[head["tree_size"] - 1][0]])
    report = verify_file(directory, built.ledger_public, workers=1)
    assert not report.ok and "tree-head.json" in report.reason


def test_checkpoint_prints_a_signed_head_usable_as_since(
    ledger_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert main(["ledger", "checkpoint", "--ledger", str(ledger_dir)]) == 0
    head = tmp_path / "checkpoint.json"
    head.write_text(capsys.readouterr().out)
    assert set(json.loads(head.read_text())) >= {"tree_size", "root_hash", "signature"}
    assert verify(ledger_dir, "--since", str(head)) == 0


def test_consistency_from_a_head_file(ledger_dir: Path, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    head = head_file(ledger_dir, tmp_path / "head.json")
    with Ledger.open(ledger_dir) as ledger:
        ledger.checkpoint()
    out = tmp_path / "proof.json"
    assert main(["ledger", "consistency", str(head), "--ledger", str(ledger_dir),
                 "--out", str(out)]) == 0
    proof = json.loads(out.read_text())
    assert proof["old_tree_head"] == json.loads(head.read_text())
    assert main(["ledger", "verify-proof", str(out),
                 "--ledger-key", str(ledger_dir / "ledger.pub")]) == 0


def test_a_topic_cut_at_the_end_fails_since_a_head(ledger_dir: Path) -> None:
    from ledger.topic import TopicEntry, verify_topic_entries

    with Ledger.open(ledger_dir, readonly=True) as ledger:
        head = ledger.tree_head()
        events = [TopicEntry(e.seq, e.record_bytes(), f"t[0]@{e.seq}") for e in ledger.entries()]
        public = ledger.ledger_public
    assert verify_topic_entries(events, public, trusted_heads=[head], workers=1).ok
    cut = verify_topic_entries(events[:-2], public, workers=1)
    assert cut.ok  # a shorter topic looks like a shorter ledger
    report = verify_topic_entries(events[:-2], public, trusted_heads=[head], workers=1)
    assert not report.ok and "missing" in report.reason
