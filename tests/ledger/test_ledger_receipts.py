"""`ledger verify-proof` checks every field of an upload receipt against the signed entry inside it.

The receipt is built by the upload path's own builder (``materialabs.submission.receipt_for``), so
a field added there and not checked here makes these tests fail rather than pass unchecked.
"""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger import Ledger, init_ledger, public_bytes, read_private_key
from materialabs.cli import main
from materialabs.store import cid_of_bytes
from materialabs.submission import receipt_for
from materialabs.upload import SignedUpload, build_manifest


class Accepted:
    """The part of a DatasetAccepted event the receipt builder reads."""

    type = "DatasetAccepted"

    def __init__(self, seq: int) -> None:
        self._seq = seq

    def __getitem__(self, name: str) -> Any:
        assert name == "ledger_seq"
        return self._seq


def signed_upload(key: Ed25519PrivateKey, lab: str, n: int) -> SignedUpload:
    dataset = f"dataset {lab} {n}\n".encode()
    manifest = build_manifest(lab, cid_of_bytes(dataset), 3 + n, "PBE", {"band_gap": "eV"},
                              ["lab.csv"], upload_id=f"{lab}-upload-{n}")
    data = manifest.to_bytes()
    return SignedUpload(manifest, data, cid_of_bytes(data), dataset, key.sign(data),
                        public_bytes(key))


def record_upload(ledger: Ledger, upload: SignedUpload) -> dict[str, Any]:
    statement = json.loads(upload.manifest_bytes)
    entry = ledger.append_signed("dataset", statement["cid"], statement["metadata"],
                                 upload.manifest_bytes, upload.public_key, upload.signature)
    return receipt_for(ledger, Accepted(entry.seq), upload)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    directory = tmp_path_factory.mktemp("receipts") / "l"
    ledger, admin_path = init_ledger(directory, checkpoint_every=0)
    admin = read_private_key(admin_path)
    keys = {lab: Ed25519PrivateKey.generate() for lab in ("lab-a", "lab-b")}
    for lab, key in keys.items():
        ledger.register_key(admin, lab, public_bytes(key))
    receipts = {}
    for n in range(3):
        for lab, key in keys.items():
            receipts[(lab, n)] = record_upload(ledger, signed_upload(key, lab, n))
    ledger.close()
    return {"dir": directory, "receipts": receipts, "key": directory / "ledger.pub"}


def verify_proof(world: dict[str, Any], document: Any, tmp_path: Path,
                 capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    path = tmp_path / "receipt.json"
    path.write_text(json.dumps(document) if not isinstance(document, str) else document)
    capsys.readouterr()
    code = main(["ledger", "verify-proof", str(path), "--ledger-key", str(world["key"])])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_an_untouched_receipt_verifies_and_says_what_the_entry_says(
    world: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    receipt = world["receipts"][("lab-a", 1)]
    code, out, err = verify_proof(world, receipt, tmp_path, capsys)
    assert code == 0, err
    for value in ("lab-a", receipt["upload_id"], receipt["dataset_cid"], receipt["manifest_cid"],
                  str(receipt["record_count"]), str(receipt["leaf_index"])):
        assert value in out


def edited(receipt: dict[str, Any], field: str, other: dict[str, Any]) -> dict[str, Any]:
    changed = copy.deepcopy(receipt)
    if field in ("record_count", "tree_size"):
        changed[field] += 1
    elif field == "leaf_index":
        changed[field] = other["leaf_index"]
    elif field == "ledger_public_key":
        changed[field] = public_bytes(Ed25519PrivateKey.generate()).hex()
    elif field == "audit_path":
        changed[field][0] = "00" * 32
    elif field == "tree_head.root_hash":
        changed["tree_head"]["root_hash"] = "11" * 32
    elif field == "tree_head.tree_size":
        changed["tree_head"]["tree_size"] += 1
    elif field == "tree_head.signature":
        changed["tree_head"]["signature"] = "22" * 64
    elif field == "entry.ledger_signature":
        record = base64.b64decode(changed["entry"])
        changed["entry"] = base64.b64encode(record[:-64] + bytes(64)).decode()
    elif field == "entry.submitter_signature":
        record = bytearray(base64.b64decode(changed["entry"]))
        record[-100] ^= 1
        changed["entry"] = base64.b64encode(bytes(record)).decode()
    else:
        changed[field] = other[field]
    return changed


TOP_FIELDS = ["lab", "upload_id", "dataset_cid", "manifest_cid", "record_count", "tree_size",
              "leaf_index", "ledger_public_key", "audit_path"]
HEAD_AND_ENTRY = ["tree_head.root_hash", "tree_head.tree_size", "tree_head.signature",
                  "entry.ledger_signature", "entry.submitter_signature"]


@pytest.mark.parametrize("field", TOP_FIELDS + HEAD_AND_ENTRY)
def test_each_edited_field_is_invalid_and_named(
    world: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str], field: str
) -> None:
    receipt = world["receipts"][("lab-a", 1)]
    other = world["receipts"][("lab-b", 2)]
    code, out, err = verify_proof(world, edited(receipt, field, other), tmp_path, capsys)
    assert code == 1, (out, err)
    assert "INVALID" in err and field.split(".")[0] in err, err


def test_a_receipt_wrapping_another_labs_entry_is_invalid(
    world: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Lab B's entry, audit path and head, under lab A's upload fields: every proof is valid."""
    mine, theirs = world["receipts"][("lab-a", 0)], world["receipts"][("lab-b", 0)]
    wrapped = dict(theirs, **{k: mine[k] for k in
                              ("lab", "upload_id", "dataset_cid", "manifest_cid",
                               "record_count")})
    code, _, err = verify_proof(world, wrapped, tmp_path, capsys)
    assert code == 1 and "INVALID" in err
    assert "lab-b" in err  # what the signed entry says


def test_receipt_fields_must_match_even_if_the_entry_has_no_such_metadata(
    world: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A `ledger prove` receipt of a key entry, dressed up with upload fields, is invalid."""
    capsys.readouterr()
    assert main(["ledger", "prove", "1", "--ledger", str(world["dir"])]) == 0
    plain = json.loads(capsys.readouterr().out)
    assert verify_proof(world, plain, tmp_path, capsys)[0] == 0
    dressed = dict(plain, lab="lab-a", upload_id="x", dataset_cid="bafkreix",
                   manifest_cid="bafkreiy", record_count=1)
    code, _, err = verify_proof(world, dressed, tmp_path, capsys)
    assert code == 1 and "INVALID" in err


@pytest.mark.parametrize(
    ("document", "named"),
    [
        ("", "receipt.json"),
        ("{", "receipt.json"),
        ("[]", "receipt.json"),
        ({}, "type"),
        ({"type": "inclusion"}, "entry"),
        ("wrong type: leaf_index", "leaf_index"),
        ("wrong type: tree_size", "tree_size"),
        ("wrong type: record_count", "record_count"),
        ("wrong type: lab", "lab"),
        ("wrong type: audit_path", "audit_path"),
        ("wrong type: tree_head", "tree_head"),
        ("bad base64: entry", "entry"),
        ("unknown field", "comment"),
        ({"type": "consistency"}, "old_tree_head"),
        ({"type": "consistency", "old_tree_head": {}, "new_tree_head": {}, "proof": []},
         "old_tree_head"),
    ],
)
def test_malformed_documents_are_usage_errors_naming_the_field(
    world: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str],
    document: Any, named: str,
) -> None:
    receipt = world["receipts"][("lab-a", 2)]
    if isinstance(document, str) and document.startswith("wrong type: "):
        field = document.removeprefix("wrong type: ")
        document = dict(receipt, **{field: {"tree_head": "abc"}.get(field, ["x"])})
        if field == "lab":
            document[field] = 5
    elif document == "bad base64: entry":
        document = dict(receipt, entry="***")
    elif document == "unknown field":
        document = dict(receipt, comment="trust me")
    code, out, err = verify_proof(world, document, tmp_path, capsys)
    assert code == 2, (out, err)
    assert named in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
