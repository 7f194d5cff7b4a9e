"""A whole campaign, embedded and distributed (real Kafka + Kubo, services as processes,
each SIGKILLed once mid-campaign and restarted): same seed, same decisions, nothing lost,
nothing done twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest

from materialabs.bus.kafka import KafkaBus
from materialabs.campaign import load_campaign
from materialabs.loop import SERVICES, run_campaign, verify_ledger
from tests.e2e.reference import CAMPAIGN
from tests.e2e.reference import run_embedded as _run_embedded

REPO = Path(__file__).resolve().parents[2]
KILL_GAP_S = 1.0


def test_embedded_campaign_finishes_with_a_report_and_a_verified_ledger(embedded):
    home, outcome = embedded
    campaign = load_campaign(CAMPAIGN)
    assert outcome.finished is not None
    assert outcome.finished["status"] in ("completed", "budget_exhausted")
    assert 0 < len(outcome.dft_requests) <= campaign.dft_budget
    assert len(set(outcome.dft_requests)) == len(outcome.dft_requests), "a DFT job ran twice"
    assert outcome.counts["DftCompleted"] == len(outcome.dft_requests)
    report = outcome.report.parent
    for name in ("summary.md", "summary.html", "parity.png", "discovery.png", "promoted.csv"):
        assert (report / name).stat().st_size > 0, name
    assert "`ledger verify` passed" in (report / "summary.md").read_text()
    assert verify_ledger(home / "ledger").startswith("`ledger verify` passed")


def test_same_seed_same_decisions(embedded, tmp_path, monkeypatch):
    _, first = embedded
    second = _run_embedded(tmp_path / "again", monkeypatch)
    assert sorted(second.dft_requests) == sorted(first.dft_requests)
    assert sorted(second.promoted) == sorted(first.promoted)


# -- distributed ----------------------------------------------------------------------------

def _start(name: str, env: dict[str, str], logs: Path) -> subprocess.Popen:
    log = (logs / f"{name}.log").open("ab")
    return subprocess.Popen([sys.executable, "-m", "materialabs", "serve", name,
                             "--engine", os.environ.get("MATERIALABS_TEST_ENGINE", "loop")],
                            env=env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO)


@pytest.mark.kafka
@pytest.mark.ipfs
@pytest.mark.slow
def test_distributed_with_each_service_killed_once_matches_embedded(
        embedded, kafka_bootstrap, kubo_api, tmp_path, monkeypatch):
    _, reference = embedded
    home = tmp_path / "home"
    env = {**os.environ, "MATERIALABS_HOME": str(home), "MATERIALABS_KAFKA": kafka_bootstrap,
           "MATERIALABS_IPFS": kubo_api}
    env.pop("MATERIALABS_STORE", None)
    for name, value in env.items():
        if name.startswith("MATERIALABS_"):
            monkeypatch.setenv(name, value)
    subprocess.run([sys.executable, "-m", "materialabs", "setup"], env=env, check=True,
                   cwd=REPO, capture_output=True)
    logs = tmp_path / "logs"
    logs.mkdir()
    processes = {name: _start(name, env, logs) for name in SERVICES}
    done = threading.Event()
    killed: list[str] = []

    def chaos() -> None:
        # Start once predictions flow (every service is up and the campaign under way),
        # then kill one service a second: a restart takes seconds (imports, group join),
        # so the campaign is still running when the last one goes down.
        bus = KafkaBus(kafka_bootstrap)
        watch = bus.consumer(f"chaos-{uuid.uuid4().hex[:8]}", ["candidates.predicted"])
        try:
            while not done.is_set() and not watch.poll(0.2):
                pass
        finally:
            watch.close()
            bus.close()
        for name in SERVICES:
            if done.is_set():
                return
            processes[name].send_signal(signal.SIGKILL)
            processes[name].wait()
            killed.append(name)
            processes[name] = _start(name, env, logs)
            time.sleep(KILL_GAP_S)

    monkey = threading.Thread(target=chaos, daemon=True)
    monkey.start()
    try:
        outcome = run_campaign(load_campaign(CAMPAIGN), home=home, distributed=True,
                               progress=False, timeout_s=900)
    finally:
        done.set()
        monkey.join(timeout=60)
        for process in processes.values():
            process.terminate()
        for process in processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
    assert killed == list(SERVICES), f"only {killed} were killed before the campaign finished"
    assert outcome.finished is not None
    # The same requests, round by round; Kafka keeps order only within a partition.
    assert sorted(outcome.dft_requests) == sorted(reference.dft_requests)
    assert sorted(outcome.promoted) == sorted(reference.promoted)
    repeated = [cid for cid, n in Counter(outcome.dft_requests).items() if n > 1]
    assert not repeated, f"DFT jobs requested twice: {repeated}"
    assert verify_ledger(home / "ledger").startswith("`ledger verify` passed")
