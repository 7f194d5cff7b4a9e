"""Session fixtures that hand tests a real Kafka broker and a real Kubo (IPFS) node.

`kafka_bootstrap` -> "127.0.0.1:PORT" of a single-node KRaft broker.
`kubo_api`        -> "http://127.0.0.1:PORT" of an offline Kubo node's RPC API.

Both are started lazily (only when a test asks for them) through the project's own scripts
in infra/, in a temporary run folder, and stopped when the session ends. They are never
skipped: if a service cannot come up, the fixture fails with the scripts' one-line reason.

Overrides, for people iterating locally:
  MATERIALABS_TEST_KAFKA=127.0.0.1:9092 / MATERIALABS_TEST_IPFS=http://127.0.0.1:5001
      use services that are already running (e.g. after `make up`).
  MATERIALABS_TEST_INFRA=native|docker|auto (default auto)
      auto uses the native scripts, or testcontainers only when java/mvn/go are missing and
      a Docker engine answers (`docker info`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
INFRA = REPO_ROOT / "infra"
# Docker path only (never taken in CI here): Confluent Platform 8.1 ships Apache Kafka 4.1,
# the same line as the native broker; testcontainers' KafkaContainer is built for that image.
KAFKA_IMAGE = "confluentinc/cp-kafka:8.1.0"
KUBO_IMAGE = "ipfs/kubo:v0.43.1"


def _run_script(script: Path, run_dir: Path, timeout_s: float = 600) -> subprocess.CompletedProcess:
    # MATERIALABS_OWNER_PID: the services stop by themselves if this pytest process dies.
    env = {
        **os.environ,
        "MATERIALABS_RUN_DIR": str(run_dir),
        "MATERIALABS_OWNER_PID": str(os.getpid()),
    }
    return subprocess.run(
        ["bash", str(script)], env=env, capture_output=True, text=True, timeout=timeout_s
    )


def _failure_line(result: subprocess.CompletedProcess) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    return lines[-1] if lines else f"exit code {result.returncode} and no message"


def _use_docker() -> bool:
    mode = os.environ.get("MATERIALABS_TEST_INFRA", "auto")
    if mode in ("native", "docker"):
        return mode == "docker"
    native_tools = all(shutil.which(tool) for tool in ("java", "mvn", "go"))
    if native_tools or not shutil.which("docker"):
        return False
    return subprocess.run(["docker", "info"], capture_output=True).returncode == 0


def pytest_configure(config: pytest.Config) -> None:
    # kafka-python loads its protocol schemas with the legacy importlib.resources API; the
    # ~200 identical warnings per session would bury the ones that matter.
    config.addinivalue_line(
        "filterwarnings", "ignore:(read_text|open_text) is deprecated:DeprecationWarning"
    )


@pytest.fixture(scope="session")
def infra_run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Run folder (ports, pids, logs) for the services this test session starts."""
    return tmp_path_factory.mktemp("infra-run")


def _native_service(component: str, state_file: str, run_dir: Path) -> Iterator[str]:
    start = _run_script(INFRA / component / "start.sh", run_dir)
    if start.returncode != 0:
        pytest.fail(f"could not start {component}: {_failure_line(start)}", pytrace=False)
    try:
        yield (run_dir / component / state_file).read_text().strip()
    finally:
        _run_script(INFRA / component / "stop.sh", run_dir, timeout_s=120)


@pytest.fixture(scope="session")
def kafka_bootstrap(infra_run_dir: Path) -> Iterator[str]:
    """Bootstrap address "127.0.0.1:PORT" of a real single-node KRaft Kafka broker."""
    if override := os.environ.get("MATERIALABS_TEST_KAFKA"):
        yield override
    elif _use_docker():
        from testcontainers.community.kafka import KafkaContainer

        with KafkaContainer(KAFKA_IMAGE).with_kraft() as kafka:
            yield kafka.get_bootstrap_server()
    else:
        yield from _native_service("kafka", "bootstrap", infra_run_dir)


@pytest.fixture(scope="session")
def kubo_api(infra_run_dir: Path) -> Iterator[str]:
    """Base URL "http://127.0.0.1:PORT" of a real offline Kubo node's RPC API."""
    if override := os.environ.get("MATERIALABS_TEST_IPFS"):
        yield override.rstrip("/")
    elif _use_docker():
        from testcontainers.core.container import DockerContainer
        from testcontainers.core.waiting_utils import wait_for_logs

        # The image's entrypoint runs `ipfs init` then the daemon with these arguments.
        node = DockerContainer(KUBO_IMAGE).with_command("daemon --offline").with_exposed_ports(5001)
        with node:
            wait_for_logs(node, "Daemon is ready", timeout=120)
            yield f"http://{node.get_container_host_ip()}:{node.get_exposed_port(5001)}"
    else:
        yield from _native_service("ipfs", "api", infra_run_dir)
