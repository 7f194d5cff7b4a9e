"""Wait until a Kafka broker answers requests, or give up.

usage: python3 wait_ready.py HOST:PORT PID TIMEOUT_SECONDS

The broker counts as ready when it answers an ApiVersions request without error and, where
confluent-kafka (the services' client) is importable, when a metadata request lists a broker
and an active controller. The raw ApiVersions probe needs only the standard library, so this
also works before the project's virtual environment exists. Exits 0 when ready, 1 on timeout
or if PID died.
"""

from __future__ import annotations

import socket
import struct
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))
from processes import pid_alive  # noqa: E402

API_VERSIONS_KEY = 18


def broker_answers_api_versions(host: str, port: int) -> bool:
    """Send ApiVersions v0 (understood by every broker version) and check its error code."""
    client_id = b"materialabs-wait"
    correlation_id = 7
    header = struct.pack(">hhih", API_VERSIONS_KEY, 0, correlation_id, len(client_id)) + client_id
    try:
        with socket.create_connection((host, port), timeout=3) as sock:
            sock.settimeout(5)
            sock.sendall(struct.pack(">i", len(header)) + header)
            size_bytes = _read_exact(sock, 4)
            body = _read_exact(sock, struct.unpack(">i", size_bytes)[0])
    except OSError:
        return False
    got_correlation, error_code = struct.unpack(">ih", body[:6])
    return got_correlation == correlation_id and error_code == 0


def _read_exact(sock: socket.socket, n: int) -> bytes:
    chunks = b""
    while len(chunks) < n:
        chunk = sock.recv(n - len(chunks))
        if not chunk:
            raise OSError("connection closed by broker")
        chunks += chunk
    return chunks


def cluster_has_controller(bootstrap: str, timeout_s: float = 5.0) -> bool:
    """True when a metadata request shows a broker and a controller (confluent-kafka only)."""
    try:
        from confluent_kafka import KafkaException
        from confluent_kafka.admin import AdminClient
    except ImportError:
        return True  # the raw probe already passed; nothing more we can ask without a client
    # Silent (log_level 0): the exit status is the answer, and librdkafka would otherwise
    # print a connection error every 50 ms to start.sh's output while the broker starts.
    admin = AdminClient({"bootstrap.servers": bootstrap, "client.id": "materialabs-wait",
                         "log_level": 0})
    try:
        metadata = admin.list_topics(timeout=timeout_s)
    except KafkaException:
        return False
    return bool(metadata.brokers) and metadata.controller_id != -1


def main(argv: list[str]) -> int:
    bootstrap, pid, timeout_s = argv[1], int(argv[2]), float(argv[3])
    host, port = bootstrap.rsplit(":", 1)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return 1
        if broker_answers_api_versions(host, int(port)) and cluster_has_controller(
            bootstrap, timeout_s=min(5.0, max(0.5, deadline - time.monotonic()))
        ):
            return 0
        time.sleep(0.5)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
