"""The auditor finds the first bad entry of a tampered export, whatever the tampering."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ledger_builders import (
    Built,
    build_ledger,
    export_records,
    frame_spans,
    upload,
    write_export,
)

from ledger import public_bytes, upload_payload
from ledger.entries import decode_record
from ledger.verify import verify_export, verify_file

SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    return build_ledger(tmp_path_factory.mktemp("ledger") / "l", uploads=30, checkpoint_every=8)


@pytest.fixture(scope="module")
def export(built: Built, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("export") / "ledger.export"
    built.ledger.export(path)
    return path


@pytest.fixture(scope="module")
def records(export: Path) -> list[bytes]:
    return export_records(export)


def first_difference(original: list[bytes], changed: list[bytes]) -> int:
    for i, (a, b) in enumerate(zip(original, changed, strict=False)):
        if a != b:
            return i
    return min(len(original), len(changed))


def audit(records: list[bytes], ledger_public: bytes, **kwargs):
    return verify_export(records, ledger_public, workers=1, **kwargs)


def test_untouched_export_verifies(built: Built, export: Path, records: list[bytes]) -> None:
    report = verify_file(export, built.ledger_public, workers=1)
    assert report.ok, report.reason
    assert report.entries == len(built.ledger) == len(records) - 1
    assert report.root_hash == built.ledger.root_hash
    assert report.checkpoints_verified == len(built.ledger.checkpoints) > 2
    full = verify_file(export, built.ledger_public, workers=2, all_signatures=True)
    assert full.ok and full.ledger_signatures == len(built.ledger)


def test_wrong_ledger_key_fails_at_entry_zero(export: Path) -> None:
    other = public_bytes(Ed25519PrivateKey.generate())
    report = verify_file(export, other, workers=1)
    assert not report.ok and report.first_bad_seq == 0


@SETTINGS
@given(data=st.data())
def test_flipping_any_file_byte_is_caught_at_its_entry(
    data: st.DataObject, built: Built, export: Path, tmp_path: Path
) -> None:
    raw = bytearray(export.read_bytes())
    spans = frame_spans(export)
    position = data.draw(st.integers(spans[0][0], len(raw) - 1), label="byte offset")
    raw[position] ^= 1 << data.draw(st.integers(0, 7), label="bit")
    expected = next(i for i, (start, end) in enumerate(spans) if start <= position < end)
    path = tmp_path / "flipped.export"
    path.write_bytes(bytes(raw))
    report = verify_file(path, built.ledger_public, workers=1)
    assert not report.ok
    assert report.first_bad_seq == expected, report.reason


@SETTINGS
@given(data=st.data())
def test_flipping_record_bytes_behind_a_valid_checksum_is_caught(
    data: st.DataObject, built: Built, records: list[bytes]
) -> None:
    index = data.draw(st.integers(0, len(records) - 1), label="record")
    record = bytearray(records[index])
    position = data.draw(st.integers(0, len(record) - 1), label="byte")
    record[position] ^= 1 << data.draw(st.integers(0, 7), label="bit")
    changed = list(records)
    changed[index] = bytes(record)
    report = audit(changed, built.ledger_public)
    assert not report.ok
    assert report.first_bad_seq == index, report.reason


@SETTINGS
@given(data=st.data())
def test_deleting_inserting_reordering_truncating_is_caught(
    data: st.DataObject, built: Built, records: list[bytes]
) -> None:
    changed = list(records)
    action = data.draw(st.sampled_from(["delete", "insert", "swap", "truncate", "cut_head"]))
    n = len(records) - 1  # entries; records[n] is the closing head
    if action == "delete":
        del changed[data.draw(st.integers(0, n - 1))]
    elif action == "insert":
        donor = records[data.draw(st.integers(0, n - 1))]
        changed.insert(data.draw(st.integers(0, n)), donor)
    elif action == "swap":
        i = data.draw(st.integers(0, n - 2))
        j = data.draw(st.integers(i + 1, n - 1))
        changed[i], changed[j] = changed[j], changed[i]
    elif action == "truncate":
        keep = data.draw(st.integers(0, n - 1))
        changed = changed[:keep] + [records[n]]
    else:
        changed = changed[: data.draw(st.integers(0, n))]
    report = audit(changed, built.ledger_public)
    assert not report.ok
    assert report.first_bad_seq == first_difference(records, changed), (action, report.reason)


def test_truncated_export_without_its_head_is_caught(
    built: Built, records: list[bytes], tmp_path: Path
) -> None:
    path = tmp_path / "short.export"
    write_export(path, records[:10])
    report = verify_file(path, built.ledger_public, workers=1)
    assert not report.ok and report.first_bad_seq == 10
    assert "closing" in report.reason


def _malicious_append(built: Built, signer: Ed25519PrivateKey, claimed: bytes, n: int) -> int:
    """A ledger operator bypassing the rules: writes an upload the writer would refuse."""
    ledger = built.ledger
    cid = f"bafkreiforged{n}"
    payload = upload_payload("dataset", cid, {})
    entry = ledger._write(ledger._key, "dataset", cid, {}, payload, claimed, signer.sign(payload))
    return entry.seq


def test_forged_submitter_signature_is_caught(tmp_path: Path) -> None:
    built = build_ledger(tmp_path / "l", uploads=12, checkpoint_every=5)
    forger = Ed25519PrivateKey.generate()
    seq = _malicious_append(built, forger, public_bytes(built.labs["alpha"]), 1)
    upload(built.ledger, built.labs["alpha"], 500)
    built.ledger.export(tmp_path / "e")
    report = verify_file(tmp_path / "e", built.ledger_public, workers=2)
    assert not report.ok and report.first_bad_seq == seq
    assert "submitter signature" in report.reason


def test_entry_re_signed_by_another_ledger_key_is_caught(
    built: Built, records: list[bytes]
) -> None:
    impostor = Ed25519PrivateKey.generate()
    changed = list(records)
    record = changed[7]
    changed[7] = record[:-64] + impostor.sign(record[:-64])
    report = audit(changed, built.ledger_public)
    assert not report.ok and report.first_bad_seq == 7
    assert "ledger signature" in report.reason


def test_upload_by_revoked_key_after_revocation_is_caught(tmp_path: Path) -> None:
    built = build_ledger(tmp_path / "l", uploads=12, checkpoint_every=4)
    revoked = built.labs["beta-revoked"]
    seq = _malicious_append(built, revoked, public_bytes(revoked), 2)
    built.ledger.export(tmp_path / "e")
    report = verify_file(tmp_path / "e", built.ledger_public, workers=1)
    assert not report.ok and report.first_bad_seq == seq
    assert "revoked" in report.reason
    # Before the revocation the same key's uploads were fine: the report names only seq.
    entries = list(built.ledger.entries())
    beta = public_bytes(revoked)
    assert any(e.submitter_public == beta and e.seq < seq for e in entries)


def test_upload_by_unknown_key_is_caught(tmp_path: Path) -> None:
    built = build_ledger(tmp_path / "l", uploads=3, checkpoint_every=0)
    stranger = Ed25519PrivateKey.generate()
    seq = _malicious_append(built, stranger, public_bytes(stranger), 3)
    report = verify_file(tmp_path / "l", built.ledger_public, workers=1)
    assert not report.ok and report.first_bad_seq == seq
    assert "not registered" in report.reason


def test_live_log_verifies_without_closing_head(built: Built) -> None:
    report = verify_file(built.ledger.directory, built.ledger_public, workers=1)
    assert report.ok, report.reason
    assert report.entries == len(built.ledger)
    first = decode_record(export_records_first(built))
    assert first.kind == "key_registered"


def export_records_first(built: Built) -> bytes:
    return next(built.ledger.entries()).record_bytes()
