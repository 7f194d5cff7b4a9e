"""A gateway home made by a small real campaign plus a lab's upload of Materials Project
records, and a real uvicorn server over it on a free port (both once a session)."""

from __future__ import annotations

import csv
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from materialabs.campaign import load_campaign
from materialabs.cli import main
from materialabs.loop import run_campaign

CAMPAIGN = Path(__file__).with_name("small-pool.toml")
MP_RECORDS = 24


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _upload_mp_records(home: Path, tmp: Path) -> None:
    """lab-mp registers its key and uploads a few MP records (ids mp-..., CIF structures)."""
    from pymatgen.io.cif import CifWriter

    from materialabs import ports

    keys = tmp / "keys"
    assert main(["keys", "new", "--lab", "lab-mp", "--out", str(keys)]) == 0
    assert main(["keys", "register", "--lab", "lab-mp", "--public-key",
                 str(keys / "lab-mp.pub"), "--admin-key", str(home / "keys" / "admin.key"),
                 "--ledger", str(home / "ledger")]) == 0
    table = ports.mp_table()
    small = table[table["nsites"] <= 6].iloc[:MP_RECORDS]
    path = tmp / "mp.csv"
    with open(path, "w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["material_id", "cif", "formation_energy_per_atom_eV", "band_gap_eV"])
        for row in small.itertuples():
            writer.writerow([row.material_id, str(CifWriter(row.crystal.to_structure())),
                             row.formation_energy_per_atom, row.band_gap])
    assert main(["upload", str(path), "--key", str(keys / "lab-mp.key"), "--lab", "lab-mp",
                 "--method", "PBE", "--timeout", "120"]) == 0


@pytest.fixture(scope="session")
def gateway_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("gateway-home")
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("MATERIALABS_HOME", str(home))
        for name in ("MATERIALABS_KAFKA", "MATERIALABS_IPFS", "MATERIALABS_STORE",
                     "MATERIALABS_LEDGER", "MATERIALABS_LEDGER_PASSPHRASE_FILE"):
            monkeypatch.delenv(name, raising=False)
        run_campaign(load_campaign(CAMPAIGN), home=home, progress=False, timeout_s=900)
        _upload_mp_records(home, tmp_path_factory.mktemp("lab"))
    return home


class Server:
    """uvicorn serving create_app(home) in a thread, on a free port; ``env`` holds
    MATERIALABS_* variables set while the app is built (as `materialabs gateway`'s flags
    set them)."""

    def __init__(self, home: Path, env: dict[str, str] | None = None) -> None:
        import uvicorn

        from materialabs.gateway import create_app

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        with pytest.MonkeyPatch.context() as variables:
            for name, value in (env or {}).items():
                variables.setenv(name, value)
            app = create_app(home)
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port,
                                log_level="warning", access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Server:
        self.thread.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/optimade/versions", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError(f"the gateway did not answer on {self.url} within 30 s")

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture(scope="session")
def gateway(gateway_home: Path) -> Iterator[str]:
    with Server(gateway_home) as server:
        yield server.url


@pytest.fixture
def client(gateway: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway, timeout=30) as http:
        yield http
