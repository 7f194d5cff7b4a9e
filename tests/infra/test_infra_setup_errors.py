"""Bad set-up is explained: each failure prints ONE line naming what is wrong and what to do.

The infra scripts are run as a user would run them, with a PATH that lacks a tool, a port that
is taken, or a start-up timeout that cannot be met.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
INFRA = REPO_ROOT / "infra"
# What the scripts need besides the tool under test.
BASE_TOOLS = [
    "bash",
    "python3",
    "dirname",
    "cat",
    "mkdir",
    "rm",
    "sed",
    "tail",
    "grep",
    "ls",
    "wc",
    "touch",
    "mv",
    "cp",
    "chmod",
    "sleep",
    "nohup",
    "env",
    "head",
]


def _bin_dir(tmp_path: Path, tools: list[str]) -> Path:
    """A directory holding links to exactly `tools`, to use as the whole PATH."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for tool in tools:
        found = shutil.which(tool)
        assert found, f"test set-up: {tool} must exist on this machine"
        (bin_dir / tool).symlink_to(found)
    return bin_dir


def _run(
    script: str, tmp_path: Path, path: str | None = None, **env: str
) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "MATERIALABS_RUN_DIR": str(tmp_path / "run"), **env}
    if path is not None:
        full_env["PATH"] = path
    return subprocess.run(
        ["bash", str(INFRA / script)], env=full_env, capture_output=True, text=True, timeout=300
    )


def _one_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode != 0, f"expected failure, got success: {result.stdout}"
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one clear line, got: {result.stderr!r}"
    return lines[0]


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_kafka_start_without_java_says_what_to_install(tmp_path: Path) -> None:
    path = str(_bin_dir(tmp_path, BASE_TOOLS))
    line = _one_line(_run("kafka/start.sh", tmp_path, path=path))
    assert line.startswith("infra/kafka: java not found on PATH")
    assert "openjdk-17" in line


def test_kafka_start_with_old_java_says_which_version_is_needed(tmp_path: Path) -> None:
    bin_dir = _bin_dir(tmp_path, BASE_TOOLS)
    fake_java = bin_dir / "java"
    fake_java.write_text("#!/bin/sh\necho '    java.specification.version = 11' >&2\n")
    fake_java.chmod(0o755)
    line = _one_line(_run("kafka/start.sh", tmp_path, path=str(bin_dir)))
    assert "version '11'" in line and "needs 17 or newer" in line


def test_kafka_fetch_without_mvn_says_what_to_install(tmp_path: Path) -> None:
    path = str(_bin_dir(tmp_path, [*BASE_TOOLS, "java"]))
    empty_cache = str(tmp_path / "cache")
    line = _one_line(_run("kafka/fetch.sh", tmp_path, path=path, MATERIALABS_CACHE=empty_cache))
    assert line.startswith("infra/kafka: mvn not found on PATH")
    assert "apt-get install maven" in line


def test_kubo_build_without_go_says_what_to_install(tmp_path: Path) -> None:
    path = str(_bin_dir(tmp_path, BASE_TOOLS))
    empty_cache = str(tmp_path / "cache")
    line = _one_line(_run("ipfs/build.sh", tmp_path, path=path, MATERIALABS_CACHE=empty_cache))
    assert line.startswith("infra/ipfs: go not found on PATH")


def test_kafka_port_in_use_is_named(tmp_path: Path, busy_port: int) -> None:
    line = _one_line(_run("kafka/start.sh", tmp_path, KAFKA_PORT=str(busy_port)))
    assert f"port {busy_port} on 127.0.0.1 is already in use" in line
    assert "KAFKA_PORT" in line


def test_kubo_port_in_use_is_named(tmp_path: Path, busy_port: int) -> None:
    line = _one_line(_run("ipfs/start.sh", tmp_path, KUBO_API_PORT=str(busy_port)))
    assert f"port {busy_port} on 127.0.0.1 is already in use" in line
    assert "KUBO_API_PORT" in line


@pytest.mark.timeout(180)
def test_broker_that_does_not_come_up_in_time_is_reported_and_stopped(tmp_path: Path) -> None:
    result = _run("kafka/start.sh", tmp_path, KAFKA_START_TIMEOUT="1")
    line = _one_line(result)
    assert "did not answer" in line and "within 1s" in line and "KAFKA_START_TIMEOUT" in line
    pid_file = tmp_path / "run" / "kafka" / "pid"
    assert not pid_file.exists(), "a broker that failed to start must not be left registered"


def test_status_of_nothing_started_reports_down(tmp_path: Path) -> None:
    for component in ("kafka", "ipfs"):
        result = _run(f"{component}/status.sh", tmp_path)
        assert result.returncode == 3
        assert result.stdout.split() == [component, "down"]


def test_stop_when_not_running_is_harmless(tmp_path: Path) -> None:
    result = _run("kafka/stop.sh", tmp_path)
    assert result.returncode == 0 and "not running" in result.stdout


def _load_kubo_configure():
    spec = importlib.util.spec_from_file_location("kubo_configure", INFRA / "ipfs" / "configure.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["kubo_configure"] = module
    spec.loader.exec_module(module)
    return module


def test_kubo_config_is_loopback_only_and_peerless() -> None:
    configure = _load_kubo_configure()
    config = configure.local_only(
        {
            "Bootstrap": ["/dnsaddr/bootstrap.libp2p.io/p2p/Qm"],
            "Addresses": {"Swarm": ["/ip4/0.0.0.0/tcp/4001"]},
        },
        api_port=5101,
        gateway_port=8181,
    )
    assert config["Addresses"]["API"] == "/ip4/127.0.0.1/tcp/5101"
    assert config["Addresses"]["Gateway"] == "/ip4/127.0.0.1/tcp/8181"
    assert config["Bootstrap"] == []
    assert all("/ip4/127.0.0.1/" in address for address in config["Addresses"]["Swarm"])
    assert config["AutoConf"]["Enabled"] is False


def test_kafka_log_dir_with_data_but_no_meta_properties_is_not_formatted_over(
        tmp_path: Path) -> None:
    stray = tmp_path / "run" / "kafka" / "data" / "topic-0" / "00000000000000000000.log"
    stray.parent.mkdir(parents=True)
    stray.write_bytes(b"not ours")
    line = _one_line(_run("kafka/start.sh", tmp_path))
    assert "holds data but no meta.properties" in line and "make clean" in line
    assert stray.read_bytes() == b"not ours"


def test_kubo_repo_with_files_but_no_config_is_not_initialised_over(tmp_path: Path) -> None:
    stray = tmp_path / "run" / "ipfs" / "repo" / "datastore" / "000001.log"
    stray.parent.mkdir(parents=True)
    stray.write_bytes(b"not ours")
    line = _one_line(_run("ipfs/start.sh", tmp_path))
    assert "holds files but no config" in line and "make clean" in line
    assert stray.read_bytes() == b"not ours"
