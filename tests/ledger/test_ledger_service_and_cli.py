"""The ledger service handler and the `materialabs ledger` / `keys` commands."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from ledger_builders import build_ledger

from ledger import public_bytes, upload_payload
from materialabs.cli import main
from services.ledger.handlers import decode_append_request, entry_event, handle_append_request


def request(lab: Ed25519PrivateKey, cid: str, **override) -> dict:
    payload = upload_payload("dataset", cid, {"rows": 3})
    message = {
        "request_id": f"req-{cid}",
        "kind": "dataset",
        "cid": cid,
        "metadata": {"rows": 3},
        "payload": base64.b64encode(payload).decode(),
        "signer_public": public_bytes(lab).hex(),
        "signature": lab.sign(payload).hex(),
    }
    message.update(override)
    return message


def test_handler_appends_deduplicates_refuses_and_rejects(tmp_path: Path) -> None:
    built = build_ledger(tmp_path / "l", uploads=2, checkpoint_every=0)
    ledger, alpha = built.ledger, built.labs["alpha"]
    message = request(alpha, "bafkreiservice1")
    first = handle_append_request(message, ledger)
    assert first.status == "appended" and first.entry is not None
    again = handle_append_request(message, ledger)  # at-least-once redelivery
    assert again.status == "duplicate" and again.entry.seq == first.entry.seq
    assert len(ledger) == first.entry.seq + 1
    stranger = Ed25519PrivateKey.generate()
    refused = handle_append_request(request(stranger, "bafkreiservice2"), ledger)
    assert refused.status == "refused" and "not registered" in refused.reason
    invalid = handle_append_request(request(alpha, "x", signature="zz"), ledger)
    assert invalid.status == "invalid" and "signature" in invalid.reason
    event = entry_event(first.entry)
    assert event["record"] == first.entry.record_bytes()
    assert first.as_event()["entry_hash"] == first.entry.entry_hash.hex()


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("kind", "checkpoint", "field kind"),
        ("payload", "***", "field payload"),
        ("signer_public", "ab", "field signer_public: expected 32 bytes"),
        ("metadata", [1], "field metadata"),
    ],
)
def test_bad_requests_name_the_field(field: str, value: object, expected: str) -> None:
    message = request(Ed25519PrivateKey.generate(), "bafkreix", **{field: value})
    with pytest.raises(ValueError, match=expected):
        decode_append_request(message)


def test_cli_round_trip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ledger_dir, keys = tmp_path / "L", tmp_path / "K"
    assert main(["ledger", "init", "--ledger", str(ledger_dir), "--checkpoint-every", "3"]) == 0
    passphrase = tmp_path / "pass.txt"
    passphrase.write_text("s3cret\n")
    assert (
        main(
            [
                "keys",
                "new",
                "--lab",
                "lab-a",
                "--out",
                str(keys),
                "--passphrase-file",
                str(passphrase),
            ]
        )
        == 0
    )
    admin = ["--admin-key", str(ledger_dir / "admin.key"), "--ledger", str(ledger_dir)]
    pub = ["--public-key", str(keys / "lab-a.pub")]
    assert main(["keys", "register", "--lab", "lab-a", *pub, *admin]) == 0
    assert main(["keys", "register", "--lab", "lab-a", *pub, *admin]) == 2  # already registered
    export = tmp_path / "audit.export"
    assert main(["ledger", "export", str(export), "--ledger", str(ledger_dir)]) == 0
    key = ["--ledger-key", str(ledger_dir / "ledger.pub")]
    assert main(["ledger", "verify", str(export), *key]) == 0
    capsys.readouterr()
    assert main(["ledger", "prove", "1", "--ledger", str(ledger_dir)]) == 0
    receipt = tmp_path / "receipt.json"
    receipt.write_text(capsys.readouterr().out)
    assert json.loads(receipt.read_text())["type"] == "inclusion"
    assert main(["ledger", "verify-proof", str(receipt), *key]) == 0
    assert (
        main(
            [
                "ledger",
                "consistency",
                "1",
                "--ledger",
                str(ledger_dir),
                "--out",
                str(tmp_path / "c.json"),
            ]
        )
        == 0
    )
    assert main(["ledger", "verify-proof", str(tmp_path / "c.json"), *key]) == 0
    assert main(["keys", "revoke", *pub, *admin, "--reason", "test"]) == 0
    assert main(["ledger", "checkpoint", "--ledger", str(ledger_dir)]) == 0
    assert main(["ledger", "verify", "--ledger", str(ledger_dir)]) == 0
    raw = bytearray(export.read_bytes())
    raw[-100] ^= 0x01
    export.write_bytes(bytes(raw))
    capsys.readouterr()
    assert main(["ledger", "verify", str(export), *key]) == 1
    assert "FAILED at entry" in capsys.readouterr().err
    assert main(["ledger", "verify", str(tmp_path / "missing"), *key]) == 2
    assert main(["ledger", "show", "--ledger", str(ledger_dir), "--kind", "key_revoked"]) == 0
    assert "key_revoked" in capsys.readouterr().out


def test_verify_content_refetches_every_cid(tmp_path: Path) -> None:
    from ledger.verify import verify_file
    from materialabs.store import open_store

    store = open_store(f"local:{tmp_path / 'store'}")
    built = build_ledger(tmp_path / "l", uploads=0, checkpoint_every=0)
    ledger, alpha = built.ledger, built.labs["alpha"]
    cids = [store.put_bytes(f"dataset {i}\n".encode() * 50) for i in range(4)]
    for cid in cids:
        payload = upload_payload("dataset", cid, {})
        ledger.append_signed("dataset", cid, {}, payload, public_bytes(alpha), alpha.sign(payload))
    report = verify_file(ledger.directory, ledger.ledger_public, store, workers=1)
    assert report.ok and report.content_checked == 4
    block = tmp_path / "store" / "blocks" / cids[2][-2:] / cids[2]
    block.write_bytes(block.read_bytes()[:-1] + b"!")
    report = verify_file(ledger.directory, ledger.ledger_public, store, workers=1)
    assert not report.ok
    assert report.first_bad_seq == ledger.find(cids[2]).seq
    assert cids[2] in report.reason
    assert (
        main(
            [
                "ledger",
                "verify",
                "--ledger",
                str(ledger.directory),
                "--content",
                "--store",
                f"local:{tmp_path / 'store'}",
            ]
        )
        == 1
    )
