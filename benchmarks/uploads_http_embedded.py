"""20 sequential 5-record uploads through POST /v1/uploads into an embedded home: time to
receipt (the client polls every 0.1 s, so times are quantised by the poll). Not the issue's
distributed benchmark: that is benchmarks/uploads.py.

    PYTHONPATH=$PWD .venv/bin/python benchmarks/uploads_http_embedded.py
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[1]
# Not benchmarks/ first on the path: benchmarks/ledger.py would shadow the ledger package.
sys.path[0:1] = [str(ROOT), str(ROOT / "tests" / "upload")]
from upload_helpers import make_lab_home  # noqa: E402

from materialabs.gateway.uploads import UploadLimits  # noqa: E402
from tests.gateway.test_uploads_http import limited_server, signed_body, wait_outcome  # noqa: E402

UPLOADS = 20


def main() -> None:
    with pytest.MonkeyPatch.context() as env:
        lab = make_lab_home(Path(tempfile.mkdtemp()), env)
        times = []
        with limited_server(lab.home, UploadLimits(rate_count=1000)) as server, \
                httpx.Client(base_url=server.url, timeout=30) as http:
            for _ in range(UPLOADS):
                body = signed_body(lab, count=5)
                start = time.perf_counter()
                handle = http.post("/v1/uploads", content=body).json()["id"]
                assert wait_outcome(http, handle)["state"] == "accepted"
                times.append(time.perf_counter() - start)
    print(f"{UPLOADS} sequential 5-record HTTP uploads: p50 "
          f"{statistics.median(times) * 1000:.0f} ms, max {max(times) * 1000:.0f} ms; ledger "
          f"size {lab.ledger_size()}; cpu {time.process_time():.1f} s; load "
          f"{os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
