"""The read-only view services use: reads only what was appended, notices a log swapped under it."""

from __future__ import annotations

import shutil
import zlib
from pathlib import Path

import pytest
from ledger_builders import build_ledger, frame_spans, upload

from ledger import Ledger, LogError
from ledger.view import LedgerView


@pytest.fixture()
def built(tmp_path: Path):
    b = build_ledger(tmp_path / "l", uploads=10, checkpoint_every=4)
    yield b
    b.ledger.close()


def test_view_reads_only_the_new_entries(built, monkeypatch: pytest.MonkeyPatch) -> None:
    view = LedgerView(built.ledger.directory)
    assert len(view) == len(built.ledger)
    decoded: list[int] = []
    original = Ledger._replay

    def counting(self: Ledger, offset: int, record: bytes) -> None:
        decoded.append(offset)
        original(self, offset, record)

    monkeypatch.setattr(Ledger, "_replay", counting)
    alpha = built.labs["alpha"]
    entry = upload(built.ledger, alpha, 1000)
    model = upload(built.ledger, alpha, 1004, kind="model")
    assert view.find(entry.cid) == entry
    assert view.latest_model_cid() == model.cid
    assert len(view) == len(built.ledger)
    # Two uploads (plus a periodic checkpoint if one fell due), not the whole log again.
    assert 2 <= len(decoded) <= 3, decoded
    assert view.current().root_hash == built.ledger.root_hash


def test_view_sees_revocations_and_keys_as_they_come(built) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from ledger import public_bytes

    view = LedgerView(built.ledger.directory)
    newcomer = Ed25519PrivateKey.generate()
    assert view.key_record(public_bytes(newcomer)) is None
    built.ledger.register_key(built.admin, "lab-n", public_bytes(newcomer))
    assert view.key_record(public_bytes(newcomer)).lab == "lab-n"
    revocation = built.ledger.revoke_key(built.admin, public_bytes(newcomer), "gone")
    assert view.key_record(public_bytes(newcomer)).revoked_seq == revocation.seq


def test_a_truncated_log_is_noticed(built, tmp_path: Path) -> None:
    view = LedgerView(built.ledger.directory)
    assert len(view) == len(built.ledger)
    built.ledger.close()
    log = built.ledger.directory / "ledger.log"
    raw = log.read_bytes()
    log.write_bytes(raw[: len(raw) - 50])  # shorter than what the view has read
    with pytest.raises(LogError, match="shrank|replaced|truncated"):
        len(view)


def test_a_log_replaced_by_another_history_is_noticed(built, tmp_path: Path) -> None:
    view = LedgerView(built.ledger.directory)
    size = len(view)
    built.ledger.close()
    other = build_ledger(tmp_path / "other", uploads=14, checkpoint_every=4)
    other.ledger.close()
    log = built.ledger.directory / "ledger.log"
    # Another ledger's log, at least as long: same file name, different entries.
    shutil.copy(other.ledger.directory / "ledger.log", tmp_path / "swap")
    (tmp_path / "swap").replace(log)
    assert (tmp_path / "other" / "ledger.log").stat().st_size > 0
    with pytest.raises(LogError, match="replaced|differs|does not extend"):
        len(view)
    assert size > 0


def test_a_log_rewritten_in_place_is_noticed(built) -> None:
    """Same inode, grown: the last entry the view read must still be where it was."""
    view = LedgerView(built.ledger.directory)
    seen = len(view)
    alpha = built.labs["alpha"]
    upload(built.ledger, alpha, 2000)
    built.ledger.close()
    log = built.ledger.directory / "ledger.log"
    start, end = frame_spans(log)[seen - 1]
    raw = bytearray(log.read_bytes())
    raw[start + 60] ^= 0x01  # inside the record; fix its checksum so only the content differs
    record = bytes(raw[start + 4 : end - 4])
    raw[end - 4 : end] = zlib.crc32(record).to_bytes(4, "big")
    with open(log, "r+b") as stream:
        stream.write(bytes(raw))
    with pytest.raises(LogError, match="replaced|differs|rewritten"):
        view.find("bafkreitest002000")
