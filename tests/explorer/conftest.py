"""Browser tests of the web explorer: Debian's headless Chromium, driven by Playwright, over
the real gateway (`materialabs gateway`) serving a home built by a real campaign and a real
lab upload.

`explorer_home` -> a MATERIALABS_HOME: the small campaign in browser.toml (replay DFT, a
                   couple of promotions) plus lab-a's signed upload of four perovskites.
`gateway_url`   -> "http://127.0.0.1:PORT" of `materialabs gateway` over that home.
`page`          -> a fresh browser page whose requests may only go to the gateway; a
                   request anywhere else, or an uncaught script error, fails the test.

Playwright never downloads a browser here: it launches the Chromium that `make install`
installs (infra/browser/install.sh), MATERIALABS_CHROMIUM or /usr/bin/chromium. If that is
missing the tests fail (not skip) and say to run `make install`.
"""

from __future__ import annotations

import csv
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]
CAMPAIGN = Path(__file__).with_name("browser.toml")
LAB = "lab-a"
GATEWAY_START_S = 90


def chromium_executable() -> str:
    """The Chromium binary to drive; pytest.fail (never skip) when it is not there."""
    path = os.environ.get("MATERIALABS_CHROMIUM") or "/usr/bin/chromium"
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        pytest.fail(f"no Chromium at {path}: run `make install` (infra/browser/install.sh "
                    f"installs Debian's chromium), or set MATERIALABS_CHROMIUM to its path",
                    pytrace=False)
    return path


@pytest.fixture()
def chromium_check():
    """chromium_executable itself, for the test that it fails (not skips) without Chromium."""
    return chromium_executable


def _env(home: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items()
           if not key.startswith("MATERIALABS_") or key in ("MATERIALABS_DATA",)}
    env["MATERIALABS_HOME"] = str(home)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    return env


def _materialabs(args: list[str], env: dict[str, str], timeout_s: float = 600) -> str:
    result = subprocess.run([sys.executable, "-m", "materialabs", *args], env=env, cwd=REPO,
                            capture_output=True, text=True, timeout=timeout_s)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).splitlines()[-15:])
        pytest.fail(f"materialabs {' '.join(args)} exited {result.returncode}:\n{tail}",
                    pytrace=False)
    return result.stdout


def _perovskite_csv(path: Path) -> Path:
    """Four cubic ABO3 perovskites (the upload tests' records) as a lab's CSV."""
    from pymatgen.core import Lattice, Structure
    from pymatgen.io.cif import CifWriter

    cations = [("Sr", "Ti"), ("Ba", "Ti"), ("Ca", "Zr"), ("Sr", "Hf")]
    with open(path, "w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["material_id", "cif", "formation_energy_per_atom_eV", "band_gap_eV"])
        for i, (a_site, b_site) in enumerate(cations):
            structure = Structure(Lattice.cubic(3.8 + 0.05 * i), [a_site, b_site, "O", "O", "O"],
                                  [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5],
                                   [0, 0.5, 0.5]])
            writer.writerow([f"lab-{i}", str(CifWriter(structure)), -3.0 + 0.1 * i, 1.5 + 0.5 * i])
    return path


@pytest.fixture(scope="module")
def explorer_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("explorer")
    home = root / "home"
    env = _env(home)
    _materialabs(["run", str(CAMPAIGN), "--no-progress", "--gpaw-checks", "0"], env)
    keys = root / "keys"
    _materialabs(["keys", "new", "--lab", LAB, "--out", str(keys)], env)
    _materialabs(["keys", "register", "--lab", LAB, "--public-key", str(keys / f"{LAB}.pub"),
                  "--admin-key", str(home / "keys" / "admin.key"),
                  "--ledger", str(home / "ledger")], env)
    _materialabs(["upload", str(_perovskite_csv(root / "lab.csv")),
                  "--key", str(keys / f"{LAB}.key"), "--lab", LAB, "--method", "PBE",
                  "--timeout", "120"], env)
    return home


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def gateway_url(explorer_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = tmp_path_factory.mktemp("gateway-log") / "gateway.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "materialabs", "gateway", "--host", "127.0.0.1",
             "--port", str(port)],
            env=_env(explorer_home), cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + GATEWAY_START_S
        while True:
            if process.poll() is not None:
                pytest.fail(f"`materialabs gateway` exited {process.returncode} before answering:\n"
                            + _tail(log_path), pytrace=False)
            try:
                if httpx.get(f"{url}/optimade/v1/info", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"`materialabs gateway` did not answer {url}/optimade/v1/info within "
                            f"{GATEWAY_START_S} s:\n" + _tail(log_path), pytrace=False)
            time.sleep(0.3)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _tail(path: Path, lines: int = 20) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    executable = chromium_executable()
    from playwright.sync_api import sync_playwright

    args = ["--no-sandbox"] if os.geteuid() == 0 else []
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, headless=True, args=args)
        yield chromium
        chromium.close()


@pytest.fixture()
def page(browser, gateway_url: str) -> Iterator[object]:
    context = browser.new_context(base_url=gateway_url, accept_downloads=True)
    context.set_default_timeout(15_000)
    gateway = urlsplit(gateway_url).netloc
    outside: list[str] = []
    errors: list[str] = []

    def only_the_gateway(route) -> None:
        target = urlsplit(route.request.url)
        if target.scheme in ("data", "blob") or target.netloc == gateway:
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    context.route("**/*", only_the_gateway)
    tab = context.new_page()
    tab.on("pageerror", lambda error: errors.append(str(error)))
    yield tab
    context.close()
    assert not outside, f"the explorer fetched from outside the gateway: {outside}"
    assert not errors, f"uncaught script errors: {errors}"


@pytest.fixture()
def api(gateway_url: str) -> Iterator[httpx.Client]:
    """The gateway's JSON, read directly, to compare with what the pages show."""
    with httpx.Client(base_url=gateway_url, timeout=30) as client:
        yield client
