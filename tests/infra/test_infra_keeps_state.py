"""`make up` twice, `make down` then `make up`: the state in the run folder is kept; only
`make clean` gives a fresh one.

Real Kafka and Kubo are started by infra/up.sh in a temporary run folder (its own free ports;
the gateway's port is a free one too). `materialabs setup` and the ledger service are the real
ones; the other services are stand-ins that sleep, since what is checked here is the state
the scripts keep or delete, not the services' work.
"""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
from kafka import KafkaConsumer, KafkaProducer

REPO_ROOT = Path(__file__).resolve().parents[2]
INFRA = REPO_ROOT / "infra"
REAL_BIN = REPO_ROOT / ".venv" / "bin" / "materialabs"

pytestmark = [pytest.mark.kafka, pytest.mark.ipfs, pytest.mark.slow, pytest.mark.timeout(900)]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _stand_in(tmp_path: Path) -> Path:
    """A MATERIALABS_BIN: the real `setup` and `serve ledger`; any other service sleeps."""
    path = tmp_path / "materialabs"
    path.write_text(
        "#!/usr/bin/env bash\n"
        f'case "$1 ${{2:-}}" in setup*|"serve ledger") exec {REAL_BIN} "$@" ;; esac\n'
        "exec sleep 900\n"
    )
    path.chmod(0o755)
    return path


class Stack:
    def __init__(self, tmp_path: Path) -> None:
        self.run = tmp_path / "run"
        self.env = {**os.environ, "MATERIALABS_RUN_DIR": str(self.run),
                    "MATERIALABS_BIN": str(_stand_in(tmp_path)),
                    "MATERIALABS_OWNER_PID": str(os.getpid()),
                    "GATEWAY_PORT": str(_free_port()), "SERVICE_START_GRACE": "3",
                    "PYTHONPATH": str(REPO_ROOT)}
        for name in ("MATERIALABS_KAFKA", "MATERIALABS_IPFS", "MATERIALABS_STORE",
                     "MATERIALABS_HOME", "MATERIALABS_LEDGER", "SCALE", "KAFKA_PORT",
                     "KAFKA_CONTROLLER_PORT", "KUBO_API_PORT", "KUBO_GATEWAY_PORT"):
            self.env.pop(name, None)

    def script(self, name: str) -> str:
        result = subprocess.run(["bash", str(INFRA / name)], env=self.env, capture_output=True,
                                text=True, timeout=600)
        assert result.returncode == 0, f"infra/{name} failed:\n{result.stdout}\n{result.stderr}"
        print(f"-- infra/{name}\n{result.stdout}", file=sys.stderr)
        return result.stdout

    @property
    def bootstrap(self) -> str:
        return (self.run / "kafka" / "bootstrap").read_text().strip()

    @property
    def kubo(self) -> str:
        return (self.run / "ipfs" / "api").read_text().strip()

    def home_state(self) -> dict[str, str]:
        """sha256 of the ledger and of every key in the home."""
        home = self.run / "home"
        files = [home / "ledger" / "ledger.log", *sorted((home / "keys").glob("*"))]
        return {str(path.relative_to(home)): hashlib.sha256(path.read_bytes()).hexdigest()
                for path in files}


def _publish(stack: Stack) -> tuple[str, bytes, str]:
    """A Kafka record and a Kubo block; returns (topic, value, cid)."""
    topic, value = f"keep-{uuid.uuid4().hex[:8]}", f"kept {uuid.uuid4()}".encode()
    producer = KafkaProducer(bootstrap_servers=stack.bootstrap, acks="all")
    producer.send(topic, value=value).get(timeout=60)
    producer.close()
    added = httpx.post(f"{stack.kubo}/api/v0/add", params={"pin": "true", "cid-version": "1"},
                       files={"file": ("kept.txt", value)}, timeout=30)
    added.raise_for_status()
    return topic, value, added.json()["Hash"]


def _records(stack: Stack, topic: str) -> list[bytes]:
    consumer = KafkaConsumer(topic, bootstrap_servers=stack.bootstrap,
                             group_id=f"keep-{uuid.uuid4().hex[:6]}",
                             auto_offset_reset="earliest", enable_auto_commit=False,
                             consumer_timeout_ms=15000)
    try:
        return [record.value for record in consumer]
    finally:
        consumer.close()


def _pinned(stack: Stack) -> set[str]:
    answer = httpx.post(f"{stack.kubo}/api/v0/pin/ls", params={"type": "recursive"}, timeout=30)
    answer.raise_for_status()
    return set(answer.json().get("Keys", {}))


def _wait_for(log: Path, line: str, limit_s: float = 120) -> None:
    deadline = time.monotonic() + limit_s
    while line not in (log.read_text() if log.exists() else ""):
        assert time.monotonic() < deadline, f"{log}: no {line!r} within {limit_s:.0f} s"
        time.sleep(0.5)


def test_up_twice_and_down_up_keep_the_ledger_keys_and_records_clean_starts_fresh(
        tmp_path: Path) -> None:
    stack = Stack(tmp_path)
    try:
        stack.script("up.sh")
        first = stack.home_state()
        assert "keys/admin.key" in first and "keys/retrainer.key" in first, first
        cluster = (stack.run / "kafka" / "data" / "meta.properties").read_text()
        topic, value, cid = _publish(stack)

        # A second `make up` on a running stack starts nothing new and deletes nothing.
        kafka_pid = (stack.run / "kafka" / "pid").read_text()
        again = stack.script("up.sh")
        assert "already running" in again
        assert (stack.run / "kafka" / "pid").read_text() == kafka_pid
        assert stack.home_state() == first

        # `make down` then `make up`: the same ledger and keys, the same cluster, and what
        # was published before is still there.
        stack.script("down.sh")
        restarted = stack.script("up.sh")
        assert "ledger-1: started" in restarted
        # The real ledger service opens the kept ledger and leads on it.
        _wait_for(stack.run / "logs" / "ledger-1.log", "ledger-1: leading ledger")
        assert stack.home_state() == first
        assert (stack.run / "kafka" / "data" / "meta.properties").read_text() == cluster
        assert _records(stack, topic) == [value]
        assert cid in _pinned(stack)
        cat = httpx.post(f"{stack.kubo}/api/v0/cat", params={"arg": cid}, timeout=30)
        assert cat.status_code == 200 and cat.content == value

        # `make clean` then `make up`: an empty home (a new ledger and admin key), a new
        # cluster, no old topic, no old content.
        cleaned = stack.script("clean.sh")
        assert "removed home/ kafka/ ipfs/" in cleaned
        assert not (stack.run / "home").exists()
        stack.script("up.sh")
        fresh = stack.home_state()
        assert fresh["keys/admin.key"] != first["keys/admin.key"]
        assert fresh["ledger/ledger.log"] != first["ledger/ledger.log"]
        assert (stack.run / "kafka" / "data" / "meta.properties").read_text() != cluster
        assert topic not in KafkaConsumer(bootstrap_servers=stack.bootstrap).topics()
        assert cid not in _pinned(stack)
    finally:
        subprocess.run(["bash", str(INFRA / "down.sh")], env=stack.env, capture_output=True,
                       timeout=300)


def test_up_refuses_a_home_whose_kubo_repo_is_gone(tmp_path: Path) -> None:
    """A kept ledger naming content in a Kubo repo that was deleted by hand is not started
    on a new, empty node: one line says what is missing and that `make clean` starts fresh."""
    stack = Stack(tmp_path)
    (stack.run / "home" / "ledger").mkdir(parents=True)
    (stack.run / "kafka" / "data").mkdir(parents=True)
    (stack.run / "kafka" / "data" / "meta.properties").write_text("cluster.id=x\n")
    result = subprocess.run(["bash", str(INFRA / "up.sh")], env=stack.env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Kubo's repo" in lines[0] and "make clean" in lines[0]
    assert "Kafka" not in lines[0].split("holds a ledger but")[1].split("is gone")[0]
    assert not (stack.run / "kafka" / "pid").exists()
