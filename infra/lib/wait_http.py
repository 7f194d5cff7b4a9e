"""Wait until an HTTP endpoint answers 200 to a POST, or give up.

usage: python3 wait_http.py URL PID TIMEOUT_SECONDS

Kubo's RPC API only accepts POST, so /api/v0/id doubles as a health check. Standard library
only. Exits 0 when healthy, 1 on timeout or if PID (the server process) died meanwhile.
"""

from __future__ import annotations

import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from processes import pid_alive  # noqa: E402


def answers(url: str) -> bool:
    request = urllib.request.Request(url, data=b"", method="POST")
    try:
        with urllib.request.urlopen(request, timeout=3) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def main(argv: list[str]) -> int:
    url, pid, timeout_s = argv[1], int(argv[2]), float(argv[3])
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return 1
        if answers(url):
            return 0
        time.sleep(0.3)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
