"""Builders shared by the upload and subscribe tests: good records, a lab home, a harness."""

from __future__ import annotations

import csv
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ledger import Ledger
from materialabs.bus.embedded import EmbeddedBus
from materialabs.cli import main
from materialabs.crystals import Crystal
from materialabs.events import Event, decode, encode, new_event
from materialabs.records import LabRecord
from materialabs.runtime import TYPE_HEADER, ServiceRunner
from services.ingest.app import SERVICE as INGEST
from services.ledger.app import SERVICE as LEDGER

A_SITES = ("Sr", "Ba", "Ca")
B_SITES = ("Ti", "Zr", "Hf")


def perovskite(index: int) -> Crystal:
    """A cubic ABO3 perovskite; ``index`` varies the cations and the cell edge."""
    a = 3.8 + 0.05 * (index % 7)
    return Crystal.from_arrays(
        [[a, 0, 0], [0, a, 0], [0, 0, a]],
        [A_SITES[index % 3], B_SITES[(index // 3) % 3], "O", "O", "O"],
        [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]],
    )


def good_records(count: int, file: str = "lab.csv") -> list[LabRecord]:
    return [LabRecord(file, f"row {i + 1}", perovskite(i),
                      {"formation_energy_per_atom_eV": -3.0 + 0.1 * i, "band_gap_eV": 0.5 * i},
                      f"lab-{i}")
            for i in range(count)]


def cif_text(crystal: Crystal) -> str:
    from pymatgen.io.cif import CifWriter

    return str(CifWriter(crystal.to_structure()))


def write_good_csv(path: Path, count: int) -> Path:
    with open(path, "w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["material_id", "cif", "formation_energy_per_atom_eV", "band_gap_eV"])
        for record in good_records(count):
            writer.writerow([record.material_id, cif_text(record.crystal),
                             record.properties["formation_energy_per_atom_eV"],
                             record.properties["band_gap_eV"]])
    return path


@dataclass
class LabHome:
    """A MATERIALABS_HOME with a ledger, and lab-a's key registered by the admin."""

    home: Path
    ledger: Path
    admin_key: Path
    lab_key: Path
    lab_pub: Path

    def ledger_size(self) -> int:
        with Ledger.open(self.ledger, readonly=True) as ledger:
            return len(ledger)

    def upload(self, *files: Path | str, lab: str = "lab-a", key: Path | None = None,
               extra: tuple[str, ...] = ()) -> int:
        return main(["upload", *map(str, files), "--key", str(key or self.lab_key),
                     "--lab", lab, "--method", "PBE", "--timeout", "60", *extra])


def make_lab_home(tmp_path: Path, monkeypatch: Any) -> LabHome:
    home = tmp_path / "home"
    for name in ("MATERIALABS_KAFKA", "MATERIALABS_STORE", "MATERIALABS_IPFS",
                 "MATERIALABS_LEDGER", "MATERIALABS_LEDGER_PASSPHRASE_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MATERIALABS_HOME", str(home))
    ledger = home / "ledger"
    assert main(["ledger", "init", "--ledger", str(ledger), "--checkpoint-every", "0"]) == 0
    keys = tmp_path / "keys"
    assert main(["keys", "new", "--lab", "lab-a", "--out", str(keys)]) == 0
    assert main(["keys", "register", "--lab", "lab-a", "--public-key", str(keys / "lab-a.pub"),
                 "--admin-key", str(ledger / "admin.key"), "--ledger", str(ledger)]) == 0
    return LabHome(home, ledger, ledger / "admin.key", keys / "lab-a.key", keys / "lab-a.pub")


class Harness:
    """The ingest and ledger services over an in-memory bus, driven step by step."""

    OUTCOMES = ("datasets.accepted", "uploads.rejected")

    def __init__(self, ledger: Ledger, store: Any, ingest_ledger: Any = None) -> None:
        self.bus = EmbeddedBus(None)
        self.ledger = ledger
        self.runners = [
            ServiceRunner(replace(LEDGER, ports=None), self.bus, ports={"ledger": ledger}),
            ServiceRunner(replace(INGEST, ports=None), self.bus, ports={
                "store": store, "ledger": ingest_ledger or ledger}),
        ]
        self.watcher = self.bus.consumer("test-watch", list(self.OUTCOMES))

    def publish(self, event: Event) -> None:
        self.bus.producer().send(event.topic, encode(event), key=event.key.encode(),
                                 headers=[(TYPE_HEADER, event.type.encode())])

    def submit(self, fields: dict[str, Any], timeout_s: float = 30) -> Event:
        event = new_event("UploadSubmitted", fields, producer="test-lab")
        self.publish(event)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for runner in self.runners:
                runner.step(0.0)
            for record in self.watcher.poll(0.0):
                outcome = decode(record.value)
                if outcome["upload_id"] == fields["upload_id"]:
                    return outcome
        raise AssertionError(f"no outcome for upload {fields['upload_id']}")

    def events(self, topic: str) -> list[Event]:
        return [decode(r.value) for r in self.bus.read(topic)]
