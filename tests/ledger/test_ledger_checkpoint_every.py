"""K (`ledger init --checkpoint-every K`) is recorded in entry 0 and held by writer and auditor."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from ledger_builders import upload

import ledger.ledger as ledger_module
from ledger import Ledger, init_ledger, public_bytes, read_private_key
from ledger.entries import KIND_CHECKPOINT
from ledger.keys import key_registration_payload
from ledger.log import LogError
from ledger.verify import verify_file
from materialabs.cli import main


def _with_lab(directory: Path, every: int) -> tuple[Ledger, Ed25519PrivateKey]:
    ledger, admin_path = init_ledger(directory, checkpoint_every=every)
    lab = Ed25519PrivateKey.generate()
    ledger.register_key(read_private_key(admin_path), "alpha", public_bytes(lab))
    return ledger, lab


def _checkpoints_at_every_multiple(ledger: Ledger, every: int) -> None:
    kinds = {entry.seq: entry.kind for entry in ledger.entries()}
    assert all(kinds[seq] == KIND_CHECKPOINT for seq in range(every, len(kinds), every)), kinds


def test_k_is_recorded_in_entry_0_and_used_on_reopen(tmp_path: Path) -> None:
    ledger, lab = _with_lab(tmp_path / "l", 5)
    assert ledger.get(0).metadata["checkpoint_every"] == 5
    ledger.close()
    with Ledger.open(tmp_path / "l") as again:  # no K given: the recorded one, not 1000
        assert again.checkpoint_every == 5
        for n in range(12):
            upload(again, lab, n)
        _checkpoints_at_every_multiple(again, 5)
    with Ledger.open(tmp_path / "l", readonly=True) as view:
        assert view.checkpoint_every == 5
    with pytest.raises(LogError, match="records checkpoint_every = 5"):
        Ledger.open(tmp_path / "l", checkpoint_every=7)
    ledger_public = public_bytes(read_private_key(tmp_path / "l" / "ledger.key"))
    assert verify_file(tmp_path / "l", ledger_public, workers=1).ok


def test_cli_init_records_k(tmp_path: Path) -> None:
    assert main(["ledger", "init", "--ledger", str(tmp_path / "l"), "--checkpoint-every", "3"]) == 0
    with Ledger.open(tmp_path / "l", readonly=True) as ledger:
        assert ledger.checkpoint_every == 3 and ledger.get(0).metadata["checkpoint_every"] == 3
    assert main(["ledger", "init", "--ledger", str(tmp_path / "m"), "--checkpoint-every", "1"]) == 2


def test_on_demand_head_reaching_a_multiple_is_followed_by_the_periodic_one(tmp_path: Path) -> None:
    ledger, lab = _with_lab(tmp_path / "l", 4)
    with ledger:
        upload(ledger, lab, 0)  # seq 2; the size is 3
        ledger.checkpoint()  # seq 3, size 4: the periodic head at 4 must follow at once
        assert ledger.get(4).kind == KIND_CHECKPOINT
        assert ledger.get(4).metadata["tree_size"] == 4
        for n in range(1, 10):
            upload(ledger, lab, n)
        _checkpoints_at_every_multiple(ledger, 4)
        assert verify_file(ledger.directory, ledger.ledger_public, workers=1).ok


def test_a_writer_stopped_before_its_periodic_head_writes_it_first(tmp_path: Path) -> None:
    ledger, lab = _with_lab(tmp_path / "l", 4)
    upload(ledger, lab, 0)
    ledger._periodic_checkpoint_if_due = lambda: None  # type: ignore[method-assign]
    upload(ledger, lab, 1)  # size 4, and the process "dies" before the checkpoint
    ledger.close()
    with Ledger.open(tmp_path / "l") as again:
        entry = upload(again, lab, 2)
        assert again.get(4).kind == KIND_CHECKPOINT and entry.seq == 5
        assert verify_file(again.directory, again.ledger_public, workers=1).ok


def test_auditor_flags_a_missing_periodic_head(tmp_path: Path) -> None:
    """Before K was recorded an auditor could not tell; now entry 8 must be a checkpoint."""
    ledger, lab = _with_lab(tmp_path / "l", 8)
    with ledger:
        ledger.state.checkpoint_every = 0  # an operator's writer that skips its heads
        for n in range(10):
            upload(ledger, lab, n)
        report = verify_file(ledger.directory, ledger.ledger_public, workers=1)
    assert not report.ok and report.first_bad_seq == 8, report.reason
    assert "periodic checkpoint" in report.reason


def test_ledgers_made_before_k_was_recorded_still_open_and_verify(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def old_payload(lab, public, role="lab", *, checkpoint_every=None):  # noqa: ANN001, ANN202
        return key_registration_payload(lab, public, role)

    monkeypatch.setattr(ledger_module, "key_registration_payload", old_payload)
    ledger, lab = _with_lab(tmp_path / "l", 6)
    assert "checkpoint_every" not in ledger.get(0).metadata
    ledger.close()
    monkeypatch.undo()
    with Ledger.open(tmp_path / "l", checkpoint_every=6) as again:
        assert again.checkpoint_every == 6
        for n in range(8):
            upload(again, lab, n)
        _checkpoints_at_every_multiple(again, 6)
        assert verify_file(again.directory, again.ledger_public, workers=1).ok
    with Ledger.open(tmp_path / "l", readonly=True) as view:
        assert view.checkpoint_every == 1000  # unrecorded: the old default


@pytest.mark.parametrize("value", [1, -1, True, 2.0, "8", 1 << 33])
def test_entry_0_with_a_bad_k_is_refused(tmp_path: Path, value: object) -> None:
    key = Ed25519PrivateKey.generate()
    with pytest.raises(LogError, match="checkpoint_every"):
        Ledger.create(tmp_path / "l", key, public_bytes(key), checkpoint_every=value)  # type: ignore[arg-type]
