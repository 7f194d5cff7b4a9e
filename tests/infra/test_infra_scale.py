"""`make up SCALE=...`: infra/services.sh starts, shows and stops every instance.

A bad SCALE is refused with one line naming the entry. The instance bookkeeping (one pid
file and one log per instance, rescaling a running stack, stopping them all) is checked with
a stand-in for the `materialabs` executable that only sleeps, so no broker is needed; the
real services on the real broker are started the same way by tests/e2e/test_e2e_scale.py.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SERVICES_SH = REPO_ROOT / "infra" / "services.sh"
STAND_IN = """#!/usr/bin/env bash
# setup succeeds; `serve NAME --instance I` sleeps until SIGTERM, like a service would.
case "$1" in
    setup) exit 0 ;;
    serve) trap 'exit 0' TERM; echo "$2 $4 serving"; while true; do sleep 0.1; done ;;
esac
exit 2
"""


@pytest.fixture
def run_dir(tmp_path: Path) -> Iterator[Path]:
    run = tmp_path / "run"
    (run / "kafka").mkdir(parents=True)
    (run / "ipfs").mkdir()
    # Nothing listens there: the services are stand-ins and status finds no lease roles.
    (run / "kafka" / "bootstrap").write_text("127.0.0.1:9\n")
    (run / "ipfs" / "api").write_text("http://127.0.0.1:9\n")
    yield run
    _services(run, "stop")  # whatever a failing test left running


def _services(run: Path, command: str, scale: str | None = None,
              stand_in: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "MATERIALABS_RUN_DIR": str(run), "SERVICE_START_GRACE": "0.5",
           "SERVICE_STOP_TIMEOUT": "5"}
    env.pop("SCALE", None)
    if scale is not None:
        env["SCALE"] = scale
    if stand_in is not None:
        env["MATERIALABS_BIN"] = str(stand_in)
    return subprocess.run(["bash", str(SERVICES_SH), command], env=env, capture_output=True,
                          text=True, timeout=120)


@pytest.mark.parametrize(("scale", "expected"), [
    ("bogus=2", "SCALE entry 'bogus=2': no service 'bogus' (services: ingest generator"),
    ("predictor=0", "SCALE entry 'predictor=0': the count must be a whole number from 1 to 16"),
    ("predictor=two", "SCALE entry 'predictor=two': the count must be a whole number"),
    ("predictor=17", "the count must be a whole number from 1 to 16"),
    ("predictor", "SCALE entry 'predictor' is not SERVICE=COUNT"),
])
def test_a_bad_scale_is_refused_in_one_line(run_dir: Path, scale: str, expected: str) -> None:
    result = _services(run_dir, "start", scale)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode != 0 and len(lines) == 1, result.stderr
    assert lines[0].startswith("infra/services: ") and expected in lines[0]
    assert not list((run_dir / "services").glob("*.pid")), "nothing may start on a bad SCALE"


def _pids(run: Path) -> dict[str, int]:
    return {p.stem: int(p.read_text()) for p in (run / "services").glob("*.pid")}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"


def test_each_instance_has_its_pid_and_log_a_rescale_and_down_stop_them(
        run_dir: Path, tmp_path: Path) -> None:
    stand_in = tmp_path / "materialabs"
    stand_in.write_text(STAND_IN)
    stand_in.chmod(0o755)
    started = _services(run_dir, "start", "predictor=3 dft-runner=2", stand_in)
    assert started.returncode == 0, started.stderr
    expected = {"ingest-1", "generator-1", "predictor-1", "predictor-2", "predictor-3",
                "acquisition-1", "dft_runner-1", "dft_runner-2", "retrainer-1", "ledger-1",
                "catalog-1", "gateway-1"}
    pids = _pids(run_dir)
    assert set(pids) == expected and all(map(_alive, pids.values()))
    for instance in expected:
        name, _ = instance.rsplit("-", 1)
        log = run_dir / "logs" / f"{instance}.log"
        assert log.read_text().strip() == f"{name} {instance} serving"
    status = _services(run_dir, "status")
    assert status.returncode == 0, status.stdout
    lines = {line.split()[0]: line.split()[1:] for line in status.stdout.splitlines()}
    assert set(lines) == expected
    assert all(line[:2] == ["up", "pid"] and line[2] == f"{pids[i]}," for i, line in lines.items())

    # Again with a smaller SCALE: what is running stays, the instances beyond it stop.
    rescaled = _services(run_dir, "start", "predictor=2", stand_in)
    assert rescaled.returncode == 0, rescaled.stderr
    assert "predictor-1: already running" in rescaled.stdout
    after = _pids(run_dir)
    assert set(after) == expected - {"predictor-3", "dft_runner-2"}
    assert all(after[i] == pids[i] for i in after)
    assert not _alive(pids["predictor-3"]) and not _alive(pids["dft_runner-2"])

    stopped = _services(run_dir, "stop")
    assert stopped.returncode == 0, stopped.stderr
    assert not _pids(run_dir)
    deadline = time.monotonic() + 10
    while any(map(_alive, after.values())) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(map(_alive, after.values()))
    down = _services(run_dir, "status")
    assert down.returncode != 0
    assert all(line.split()[1] == "down" for line in down.stdout.splitlines())
