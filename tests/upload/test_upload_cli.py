"""`materialabs upload` end to end on the embedded bus: keys, registration, receipt, audit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from upload_helpers import LabHome, good_records, make_lab_home, write_good_csv

from ledger import Ledger
from materialabs.bus.embedded import EmbeddedBus
from materialabs.catalog import Catalog
from materialabs.cli import main
from materialabs.crystal_io import write_crystals
from materialabs.events import decode


@pytest.fixture
def lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> LabHome:
    return make_lab_home(tmp_path, monkeypatch)


def receipt_path(out: str) -> Path:
    line = next(line for line in out.splitlines() if line.strip().startswith("receipt "))
    return Path(line.split()[-1])


def test_keys_register_upload_and_the_receipt_verifies(
        lab: LabHome, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    csv_path = write_good_csv(tmp_path / "results.csv", 6)
    size = lab.ledger_size()
    capsys.readouterr()
    assert lab.upload(csv_path, extra=("--receipt", str(tmp_path / "r.json"))) == 0
    out = capsys.readouterr().out
    assert "ACCEPTED" in out and f"ledger entry   {size}" in out
    receipt = json.loads((tmp_path / "r.json").read_text())
    assert receipt_path(out) == tmp_path / "r.json"
    assert receipt["leaf_index"] == size and receipt["record_count"] == 6
    assert main(["ledger", "verify-proof", str(tmp_path / "r.json"),
                 "--ledger-key", str(lab.ledger / "ledger.pub")]) == 0
    assert "OK: entry" in capsys.readouterr().out
    assert main(["ledger", "verify", str(lab.ledger), "--ledger-key",
                 str(lab.ledger / "ledger.pub")]) == 0
    with Ledger.open(lab.ledger, readonly=True) as ledger:
        entry = ledger.get(size)
    assert entry.kind == "dataset" and entry.cid == receipt["dataset_cid"]
    assert entry.metadata["method"] == "PBE" and entry.metadata["units"] == {
        "band_gap_eV": "eV", "formation_energy_per_atom_eV": "eV/atom"}
    rows = Catalog(lab.home / "catalog").table().to_pylist()
    assert len(rows) == 6 and {r["source"] for r in rows} == {"lab-a"}
    # A tampered receipt is caught by the auditor's check.
    receipt["audit_path"] = ["00" * 32] * max(1, len(receipt["audit_path"]))
    (tmp_path / "bad.json").write_text(json.dumps(receipt))
    assert main(["ledger", "verify-proof", str(tmp_path / "bad.json"),
                 "--ledger-key", str(lab.ledger / "ledger.pub")]) == 1


def test_every_input_format_uploads_with_an_encrypted_key(
        lab: LabHome, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "pass.txt").write_text("correct horse\n")
    assert main(["keys", "new", "--lab", "lab-c", "--out", str(tmp_path / "k2"),
                 "--passphrase-file", str(tmp_path / "pass.txt")]) == 0
    assert main(["keys", "register", "--lab", "lab-c", "--public-key",
                 str(tmp_path / "k2" / "lab-c.pub"), "--admin-key", str(lab.admin_key),
                 "--ledger", str(lab.ledger)]) == 0
    records = good_records(4)
    folder = tmp_path / "cifs"
    folder.mkdir()
    write_crystals([("a", records[0].crystal)], folder / "a.cif")
    write_crystals([("b", records[1].crystal)], folder / "POSCAR_b.cif")
    write_crystals([("c", records[2].crystal)], tmp_path / "c.extxyz")
    write_crystals([("d", records[3].crystal)], tmp_path / "d.json")
    (tmp_path / "POSCAR").write_text(records[0].crystal.to_structure().to(fmt="poscar"))
    capsys.readouterr()
    code = lab.upload(folder, tmp_path / "c.extxyz", tmp_path / "d.json", tmp_path / "POSCAR",
                      lab="lab-c", key=tmp_path / "k2" / "lab-c.key",
                      extra=("--passphrase-file", str(tmp_path / "pass.txt")))
    out = capsys.readouterr().out
    assert code == 0, out
    assert "checked 5 records in 5 files" in out and "ACCEPTED" in out
    assert lab.upload(tmp_path / "d.json", lab="lab-c", key=tmp_path / "k2" / "lab-c.key") == 2
    assert "passphrase" in capsys.readouterr().err


def test_unknown_and_revoked_keys_are_refused_by_the_service(
        lab: LabHome, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    csv_path = write_good_csv(tmp_path / "results.csv", 2)
    assert main(["keys", "new", "--lab", "stranger", "--out", str(tmp_path / "k3")]) == 0
    size = lab.ledger_size()
    capsys.readouterr()
    assert lab.upload(csv_path, lab="stranger", key=tmp_path / "k3" / "stranger.key") == 2
    out = capsys.readouterr().out
    assert "REFUSED (unknown_key)" in out and "not registered" in out
    assert lab.ledger_size() == size
    assert main(["keys", "revoke", "--public-key", str(lab.lab_pub), "--admin-key",
                 str(lab.admin_key), "--ledger", str(lab.ledger), "--reason", "leaked"]) == 0
    size = lab.ledger_size()
    capsys.readouterr()
    assert lab.upload(csv_path) == 2
    out = capsys.readouterr().out
    assert "REFUSED (revoked_key)" in out and "leaked" in out
    assert lab.ledger_size() == size
    bus = EmbeddedBus(lab.home / "bus")
    try:
        codes = [decode(r.value)["code"] for r in bus.read("uploads.rejected")]
        # Rejections are keyed by upload id, so they land on any partition: compare as a set.
        assert sorted(codes) == ["revoked_key", "unknown_key"]
        assert bus.read("datasets.accepted") == []
    finally:
        bus.close()


def test_check_only_and_bad_options(lab: LabHome, tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    csv_path = write_good_csv(tmp_path / "results.csv", 2)
    size = lab.ledger_size()
    assert lab.upload(csv_path, extra=("--check",)) == 0
    assert "all valid" in capsys.readouterr().out
    assert lab.ledger_size() == size and not (lab.home / "bus").exists()
    assert main(["upload", str(csv_path), "--key", str(lab.lab_key), "--lab", "lab-a",
                 "--method", "B3LYPZ"]) == 2
    assert "expected one of" in capsys.readouterr().err
    assert main(["upload", str(csv_path), "--key", str(lab.lab_key), "--lab", "lab-a",
                 "--method", "PBE", "--units", "band_gap"]) == 2
    assert "NAME=UNIT" in capsys.readouterr().err


def test_help_teaches_with_examples(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["upload", "--help"])
    text = capsys.readouterr().out
    assert "examples:" in text and "band_gap_eV" in text and "--method" in text
