"""The writer: refusals, key files, the single-writer lock, reopening, receipts."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st
from ledger_builders import build_ledger, upload

from ledger import Entry, Ledger, LedgerRefusal, LogError, public_bytes, upload_payload
from ledger.entries import EncodingError, canonical_json, decode_record, encode_body
from ledger.keys import (
    KeyFileError,
    read_private_key,
    read_public_key,
    write_private_key,
    write_public_key,
)
from ledger.verify import (
    check_consistency_document,
    check_entry_signatures,
    check_inclusion_receipt,
)

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.text(max_size=8)
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=80, deadline=None)
@given(
    seq=st.integers(0, 2**64 - 1),
    kind=st.text(max_size=20),
    cid=st.text(max_size=60),
    metadata=st.dictionaries(st.text(max_size=8), JSON, max_size=5),
    timestamp=st.integers(-(2**63), 2**63 - 1),
    payload=st.binary(max_size=300),
    prev=st.binary(min_size=32, max_size=32),
    sig=st.binary(min_size=64, max_size=64),
)
def test_entry_encoding_round_trips(seq, kind, cid, metadata, timestamp, payload, prev, sig):
    entry = Entry(seq, prev, kind, cid, metadata, timestamp, bytes(32), payload, sig, sig)
    record = encode_body(entry) + sig
    again = decode_record(record)
    assert again.record_bytes() == record
    assert (again.seq, again.kind, again.cid, again.metadata, again.payload) == (
        seq,
        kind,
        cid,
        metadata,
        payload,
    )
    with pytest.raises(EncodingError):
        decode_record(record + b"\x00")
    with pytest.raises(EncodingError):
        decode_record(record[:-1])


def test_canonical_json_rejects_nan_and_is_stable() -> None:
    with pytest.raises(ValueError):
        canonical_json({"x": float("nan")})
    assert canonical_json({"b": 1, "a": "é"}) == '{"a":"é","b":1}'.encode()


@pytest.fixture()
def built(tmp_path: Path):
    b = build_ledger(tmp_path / "l", uploads=6, checkpoint_every=4)
    yield b
    b.ledger.close()


def refusal(ledger: Ledger, key: Ed25519PrivateKey, payload: bytes, cid: str, **kw) -> str:
    signer = kw.pop("signer", public_bytes(key))
    with pytest.raises(LedgerRefusal) as caught:
        ledger.append_signed(kw.pop("kind", "dataset"), cid, {}, payload, signer, key.sign(payload))
    return caught.value.reason


def test_writer_refuses_unknown_revoked_replayed_and_forged(built) -> None:
    ledger = built.ledger
    stranger = Ed25519PrivateKey.generate()
    payload = upload_payload("dataset", "bafyx", {})
    assert "not registered" in refusal(ledger, stranger, payload, "bafyx")
    revoked = built.labs["beta-revoked"]
    assert "revoked at entry" in refusal(ledger, revoked, payload, "bafyx")
    alpha = built.labs["alpha"]
    assert "signature does not verify" in refusal(
        ledger, stranger, payload, "bafyx", signer=public_bytes(alpha)
    )
    assert "names CID" in refusal(ledger, alpha, payload, "bafy-other")
    assert "names kind" in refusal(ledger, alpha, payload, "bafyx", kind="model")
    entry = ledger.append_signed(
        "dataset", "bafyx", {}, payload, public_bytes(alpha), alpha.sign(payload)
    )
    assert "replayed upload" in refusal(ledger, alpha, payload, "bafyx")
    assert ledger.find("bafyx") == entry
    admin_only = canonical_json(
        {"kind": "key_registered", "lab": "x", "public_key": "00" * 32, "role": "lab"}
    )
    assert "not an admin key" in refusal(ledger, alpha, admin_only, "", kind="key_registered")


def test_revocation_stops_key_from_that_entry_on(built) -> None:
    ledger = built.ledger
    gamma = Ed25519PrivateKey.generate()
    ledger.register_key(built.admin, "gamma", public_bytes(gamma))
    before = upload(ledger, gamma, 900)
    revocation = ledger.revoke_key(built.admin, public_bytes(gamma), "compromised")
    assert ledger.key_record(public_bytes(gamma)).revoked_seq == revocation.seq > before.seq
    with pytest.raises(LedgerRefusal, match="revoked"):
        upload(ledger, gamma, 901)
    with pytest.raises(LedgerRefusal, match="already revoked"):
        ledger.revoke_key(built.admin, public_bytes(gamma))
    with pytest.raises(LedgerRefusal, match="already registered"):
        ledger.register_key(built.admin, "alpha again", public_bytes(built.labs["alpha"]))


def test_reopen_restores_state_and_second_writer_is_locked_out(built) -> None:
    ledger = built.ledger
    directory, size, root = ledger.directory, len(ledger), ledger.root_hash
    with pytest.raises(LogError, match="locked by another writer"):
        Ledger.open(directory)
    ledger.close()
    again = Ledger.open(directory, checkpoint_every=4)
    try:
        assert (len(again), again.root_hash) == (size, root)
        assert again.key_record(public_bytes(built.labs["alpha"])).lab == "alpha"
        with pytest.raises(LedgerRefusal, match="replayed"):
            entry = again.get(5)
            again.append_signed(
                entry.kind,
                entry.cid,
                entry.metadata,
                entry.payload,
                entry.submitter_public,
                entry.submitter_signature,
            )
        upload(again, built.labs["alpha"], 777)
        assert len(again) == size + 1
    finally:
        again.close()
    reader = Ledger.open(directory, readonly=True)
    assert len(reader) == size + 1
    with pytest.raises(LogError, match="read-only"):
        upload(reader, built.labs["alpha"], 778)


def test_checkpoints_are_written_every_k_entries(built) -> None:
    ledger = built.ledger
    kinds = [e.kind for e in ledger.entries()]
    positions = [i for i, k in enumerate(kinds) if k == "checkpoint"]
    # A checkpoint at position c covers c entries; periodic ones cover multiples of K (4).
    assert positions and all(b - a == 4 for a, b in zip(positions, positions[1:], strict=False))
    assert all(c % 4 == 0 for c in positions)
    head = json.loads((ledger.directory / "tree-head.json").read_text())
    assert head["tree_size"] == positions[-1]


def test_inclusion_receipts_and_consistency_proofs_check_out(built) -> None:
    ledger = built.ledger
    target = upload(ledger, built.labs["alpha"], 321)
    receipt = ledger.prove_inclusion(target.cid).to_json()
    assert check_inclusion_receipt(receipt, ledger.ledger_public) is None
    bad = dict(receipt, leaf_index=receipt["leaf_index"] - 1)
    assert check_inclusion_receipt(bad, ledger.ledger_public) is not None
    forged_path = dict(receipt, audit_path=[("00" * 32)] + receipt["audit_path"][1:])
    assert "audit_path" in check_inclusion_receipt(forged_path, ledger.ledger_public)
    other_key = public_bytes(Ed25519PrivateKey.generate())
    assert check_inclusion_receipt(receipt, other_key) is not None
    proof = ledger.prove_consistency(3).to_json()
    assert check_consistency_document(proof, ledger.ledger_public) is None
    proof["proof"][0] = "11" * 32
    assert check_consistency_document(proof, ledger.ledger_public) is not None


def test_key_files_are_private_and_passphrase_protected(tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    path = tmp_path / "lab.key"
    write_private_key(key, path, b"correct horse")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert b"ENCRYPTED" in path.read_bytes()
    assert public_bytes(read_private_key(path, b"correct horse")) == public_bytes(key)
    with pytest.raises(KeyFileError, match="passphrase"):
        read_private_key(path)
    with pytest.raises(KeyFileError, match="wrong passphrase"):
        read_private_key(path, b"wrong")
    write_public_key(public_bytes(key), tmp_path / "lab.pub")
    assert read_public_key(tmp_path / "lab.pub") == public_bytes(key)
    with pytest.raises(KeyFileError, match="64 hex digits"):
        read_public_key("abcd")


def test_single_entry_signature_check(built) -> None:
    entry = built.ledger.find("bafkreitest000002")
    assert entry is not None
    assert check_entry_signatures(entry, built.ledger.ledger_public) is None
    other = public_bytes(Ed25519PrivateKey.generate())
    assert "ledger signature" in check_entry_signatures(entry, other)
    forged = decode_record(entry.record_bytes()[:-128] + bytes(64) + entry.record_bytes()[-64:])
    assert check_entry_signatures(forged, built.ledger.ledger_public) is not None
