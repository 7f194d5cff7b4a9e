"""Who may write what: an upload's lab is its key's lab, and its entry is exactly what was signed.

The writer refuses and the auditor flags the same entries (both use ``ledger.rules``), so each
case is tried twice: through the writer, and as an operator who writes the entry anyway.
"""

from __future__ import annotations

import base64
import json
import time
from dataclasses import replace
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from ledger_builders import Built, build_ledger

from ledger import LedgerRefusal, canonical_json, public_bytes, upload_payload
from ledger.verify import verify_file
from materialabs.bus.embedded import EmbeddedBus
from materialabs.events import decode, encode, new_event
from materialabs.runtime import TYPE_HEADER, ServiceRunner
from materialabs.upload import build_manifest
from services.ledger.app import SERVICE as LEDGER_SERVICE


@pytest.fixture()
def built(tmp_path: Path):
    b = build_ledger(tmp_path / "l", uploads=4, checkpoint_every=0, revoke=False)
    yield b
    b.ledger.close()


def manifest_naming(lab: str, cid: str = "bafkreiforgedmanifest") -> bytes:
    """A real upload manifest (the ledger payload labs sign) that names ``lab``."""
    manifest = build_manifest(lab, cid, 3, "PBE", {"band_gap": "eV"}, ["lab.csv"])
    return manifest.to_bytes()


def forged_by_operator(built: Built, kind: str, cid: str, metadata: dict, payload: bytes,
                       signer: Ed25519PrivateKey) -> int:
    """An operator bypassing the writer's rules; the auditor must still flag the entry."""
    ledger = built.ledger
    entry = ledger._write(ledger._key, kind, cid, metadata, payload, public_bytes(signer),
                          signer.sign(payload))
    return entry.seq


def test_ledger_service_refuses_a_request_naming_another_lab(built: Built) -> None:
    """Lab beta signs a manifest naming lab alpha and puts the request on the bus itself."""
    ledger, beta = built.ledger, built.labs["beta"]
    payload = manifest_naming("alpha")
    cid = json.loads(payload)["cid"]
    bus = EmbeddedBus(None)
    runner = ServiceRunner(replace(LEDGER_SERVICE, ports=None), bus, ports={"ledger": ledger})
    watcher = bus.consumer("test-watch", ["uploads.rejected", "ledger.entries"])
    event = new_event("LedgerAppendRequested", {
        "request_id": "forged-1",
        "kind": "dataset",
        "cid": cid,
        "metadata_json": payload.decode("utf-8"),
        "submitter_public_key_b64": base64.b64encode(public_bytes(beta)).decode(),
        "submitter_signature_b64": base64.b64encode(beta.sign(payload)).decode(),
    }, producer="lab-beta")
    size = len(ledger)
    bus.producer().send(event.topic, encode(event), key=event.key.encode(),
                        headers=[(TYPE_HEADER, event.type.encode())])
    answers = []
    deadline = time.monotonic() + 10
    while not answers and time.monotonic() < deadline:
        runner.step(0.0)
        answers = [decode(r.value) for r in watcher.poll(0.0)]
    assert len(ledger) == size, "the ledger appended an upload under another lab's name"
    assert [a.type for a in answers] == ["UploadRejected"]
    assert "lab" in answers[0]["reason"] and "beta" in answers[0]["reason"]
    assert ledger.find(cid) is None


def test_writer_refuses_and_auditor_flags_an_upload_naming_another_lab(built: Built) -> None:
    ledger, beta = built.ledger, built.labs["beta"]
    payload = manifest_naming("alpha")
    statement = json.loads(payload)
    with pytest.raises(LedgerRefusal, match="lab 'beta'") as refused:
        ledger.append_signed("dataset", statement["cid"], statement["metadata"], payload,
                             public_bytes(beta), beta.sign(payload))
    assert "'alpha'" in refused.value.reason
    seq = forged_by_operator(built, "dataset", statement["cid"], statement["metadata"], payload,
                             beta)
    report = verify_file(ledger.directory, ledger.ledger_public, workers=1)
    assert not report.ok and report.first_bad_seq == seq
    assert "lab" in report.reason and "beta" in report.reason


@pytest.mark.parametrize("lab", [["alpha"], None, 7, "", "Alpha", "alpha "])
def test_a_lab_field_that_is_not_the_keys_lab_is_refused(built: Built, lab: object) -> None:
    alpha = built.labs["alpha"]
    metadata = {"lab": lab, "n": 1}
    payload = upload_payload("dataset", "bafkreilabfield", metadata)
    with pytest.raises(LedgerRefusal, match="metadata.lab"):
        built.ledger.append_signed("dataset", "bafkreilabfield", metadata, payload,
                                   public_bytes(alpha), alpha.sign(payload))


def test_own_lab_and_no_lab_field_are_accepted(built: Built) -> None:
    alpha = built.labs["alpha"]
    for n, metadata in enumerate(({"lab": "alpha", "n": 1}, {"n": 2})):
        cid = f"bafkreiownlab{n}"
        payload = upload_payload("dataset", cid, metadata)
        entry = built.ledger.append_signed("dataset", cid, metadata, payload,
                                           public_bytes(alpha), alpha.sign(payload))
        assert entry.metadata == metadata
    assert verify_file(built.ledger.directory, built.ledger_public, workers=1).ok


def test_entry_metadata_must_be_what_the_submitter_signed(built: Built) -> None:
    ledger, alpha = built.ledger, built.labs["alpha"]
    signed = {"lab": "alpha", "record_count": 1}
    claimed = {"lab": "alpha", "record_count": 1000}
    payload = upload_payload("dataset", "bafkreimeta", signed)
    with pytest.raises(LedgerRefusal, match="metadata"):
        ledger.append_signed("dataset", "bafkreimeta", claimed, payload, public_bytes(alpha),
                             alpha.sign(payload))
    # 1 and 1.0 compare equal in Python but are different signed bytes.
    floaty = {"lab": "alpha", "record_count": 1.0}
    with pytest.raises(LedgerRefusal, match="metadata"):
        ledger.append_signed("dataset", "bafkreimeta", floaty, payload, public_bytes(alpha),
                             alpha.sign(payload))
    seq = forged_by_operator(built, "dataset", "bafkreimeta", claimed, payload, alpha)
    report = verify_file(ledger.directory, ledger.ledger_public, workers=1)
    assert not report.ok and report.first_bad_seq == seq and "metadata" in report.reason


def test_metadata_omitted_is_taken_from_the_signed_statement(built: Built) -> None:
    alpha = built.labs["alpha"]
    signed = {"lab": "alpha", "record_count": 4}
    payload = upload_payload("dataset", "bafkreiomitted", signed)
    entry = built.ledger.append_signed("dataset", "bafkreiomitted", None, payload,
                                       public_bytes(alpha), alpha.sign(payload))
    assert entry.metadata == signed


def _statement(cid: str, **extra: object) -> dict:
    return {"cid": cid, "kind": "dataset", "metadata": {"n": 1}, "nonce": "abc", **extra}


NON_CANONICAL = {
    "leading space": lambda cid: b" " + canonical_json(_statement(cid)),
    "trailing newline": lambda cid: canonical_json(_statement(cid)) + b"\n",
    "indented": lambda cid: json.dumps(_statement(cid), indent=1, sort_keys=True).encode(),
    "keys unsorted": lambda cid: json.dumps(dict(reversed(_statement(cid).items())),
                                            separators=(",", ":"), ensure_ascii=False).encode(),
    "ascii escapes": lambda cid: canonical_json(_statement(cid, nonce="é")).replace(
        "é".encode(), b"\\u00e9"),
    "extra key": lambda cid: canonical_json(_statement(cid, note="x")),
    "no nonce": lambda cid: canonical_json({"cid": cid, "kind": "dataset", "metadata": {"n": 1}}),
    "nonce not text": lambda cid: canonical_json(_statement(cid, nonce=5)),
    "metadata not an object": lambda cid: canonical_json(_statement(cid, metadata=[1])),
    "a JSON array": lambda cid: canonical_json([_statement(cid)]),
    "not JSON": lambda cid: b"upload " + cid.encode(),
    "BOM first": lambda cid: b"\xef\xbb\xbf" + canonical_json(_statement(cid)),
    "duplicate key": lambda cid: canonical_json(_statement(cid))[:-1] + b',"cid":"bafkreiother"}',
    "nonce not UTF-8": lambda cid: canonical_json(_statement(cid)).replace(b'"abc"', b'"ab\xff"'),
    "nonce empty": lambda cid: canonical_json(_statement(cid, nonce="")),
    "nonce escaped quote": lambda cid: canonical_json(_statement(cid)).replace(
        b'"abc"', b'"a\\u0022"'),
}


@pytest.mark.parametrize("spelling", sorted(NON_CANONICAL))
def test_upload_payloads_must_be_canonical_statements(built: Built, spelling: str) -> None:
    """A non-canonical payload could name one CID to a reader and another to the rules."""
    ledger, alpha = built.ledger, built.labs["alpha"]
    cid = "bafkreinoncanonical"
    # Signed over CID X; the request says CID Y: the binding must not be sidestepped.
    payload = NON_CANONICAL[spelling]("bafkreisignedcid")
    with pytest.raises(LedgerRefusal):
        ledger.append_signed("dataset", cid, {"n": 1}, payload, public_bytes(alpha),
                             alpha.sign(payload))
    payload = NON_CANONICAL[spelling](cid)
    with pytest.raises(LedgerRefusal):
        ledger.append_signed("dataset", cid, {"n": 1}, payload, public_bytes(alpha),
                             alpha.sign(payload))
    seq = forged_by_operator(built, "dataset", cid, {"n": 1}, payload, alpha)
    report = verify_file(ledger.directory, ledger.ledger_public, workers=1)
    assert not report.ok and report.first_bad_seq == seq, report.reason


def test_leading_space_payload_naming_another_cid_is_refused(built: Built) -> None:
    """The second auditor's case, as reported: ' {"cid": X, ...}' accepted under CID Y."""
    ledger, alpha = built.ledger, built.labs["alpha"]
    payload = b" " + upload_payload("dataset", "bafkreicidx", {})
    with pytest.raises(LedgerRefusal):
        ledger.append_signed("dataset", "bafkreicidy", {}, payload, public_bytes(alpha),
                             alpha.sign(payload))
    assert ledger.find("bafkreicidy") is None


@pytest.mark.parametrize("cid", ["bafkrei\ud800", None, 5])
def test_a_cid_that_is_not_text_is_refused_cleanly(built: Built, cid: object) -> None:
    alpha = built.labs["alpha"]
    payload = upload_payload("dataset", "bafkreiok", {})
    with pytest.raises(LedgerRefusal, match="cid"):
        built.ledger.append_signed("dataset", cid, {}, payload, public_bytes(alpha),
                                   alpha.sign(payload))


def test_nonces_with_characters_canonical_json_keeps_are_accepted(built: Built) -> None:
    alpha = built.labs["alpha"]
    for n, nonce in enumerate(("é-ü", "tab\x7fdel", "a/b\u2028c")):
        cid = f"bafkreinonce{n}"
        payload = upload_payload("dataset", cid, {}, nonce=nonce)
        built.ledger.append_signed("dataset", cid, {}, payload, public_bytes(alpha),
                                   alpha.sign(payload))
    assert verify_file(built.ledger.directory, built.ledger_public, workers=1).ok
