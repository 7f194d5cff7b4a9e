"""`materialabs upload` in distributed mode: the ingest and ledger services on the real broker."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from upload_helpers import LabHome, make_lab_home, write_good_csv

from ledger import Ledger
from ledger.view import LedgerView
from materialabs.bus.kafka import KafkaBus
from materialabs.cli import main
from materialabs.runtime import ServiceRunner
from materialabs.store import open_store
from services.ingest.app import SERVICE as INGEST
from services.ledger.app import SERVICE as LEDGER

pytestmark = pytest.mark.kafka


@pytest.fixture
def lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> LabHome:
    return make_lab_home(tmp_path, monkeypatch)


@pytest.fixture
def services(lab: LabHome, kafka_bootstrap: str) -> Iterator[None]:
    """Ledger and ingest, each its own consumer group on the broker, in background threads."""
    suffix = uuid.uuid4().hex[:8]  # the broker may hold earlier sessions' groups
    ledger = Ledger.open(lab.ledger)
    stop = threading.Event()
    bus_ledger, bus_ingest = KafkaBus(kafka_bootstrap), KafkaBus(kafka_bootstrap)
    runners = [
        ServiceRunner(replace(LEDGER, ports=None), bus_ledger, group=f"ledger-{suffix}",
                      ports={"ledger": ledger}),
        ServiceRunner(replace(INGEST, ports=None), bus_ingest, group=f"ingest-{suffix}", ports={
            "store": open_store(f"local:{lab.home / 'store'}"),
            "ledger": LedgerView(lab.ledger)}),
    ]
    threads = [threading.Thread(target=r.run, kwargs={"stop": stop}, daemon=True)
               for r in runners]
    for thread in threads:
        thread.start()
    yield
    stop.set()
    for thread in threads:
        thread.join(30)
    for runner in runners:
        runner.close()
    ledger.close()


def test_distributed_upload_is_accepted_and_a_stranger_is_refused(
        lab: LabHome, services: None, kafka_bootstrap: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("MATERIALABS_KAFKA", kafka_bootstrap)
    csv_path = write_good_csv(tmp_path / "results.csv", 3)
    size = lab.ledger_size()
    capsys.readouterr()
    code = lab.upload(csv_path, extra=("--receipt", str(tmp_path / "r.json")))
    out = capsys.readouterr().out
    assert code == 0, out
    assert "ACCEPTED" in out and f"ledger entry   {size}" in out
    assert main(["ledger", "verify-proof", str(tmp_path / "r.json"),
                 "--ledger-key", str(lab.ledger / "ledger.pub")]) == 0
    assert main(["keys", "new", "--lab", "stranger", "--out", str(tmp_path / "k")]) == 0
    capsys.readouterr()
    assert lab.upload(csv_path, lab="stranger", key=tmp_path / "k" / "stranger.key") == 2
    assert "REFUSED (unknown_key)" in capsys.readouterr().out
    assert lab.ledger_size() == size + 1


def test_distributed_upload_without_services_times_out_clearly(
        lab: LabHome, kafka_bootstrap: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("MATERIALABS_KAFKA", kafka_bootstrap)
    csv_path = write_good_csv(tmp_path / "results.csv", 1)
    assert main(["upload", str(csv_path), "--key", str(lab.lab_key), "--lab", "lab-a",
                 "--method", "PBE", "--timeout", "3"]) == 2
    err = capsys.readouterr().err
    assert "no answer for upload" in err and "services running" in err
