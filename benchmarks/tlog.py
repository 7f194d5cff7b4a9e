"""The ledger's C2SP transparency log through a real gateway: Go sumdb check and verify --url.

    python benchmarks/tlog.py [--entries N]   (default 10,000 signed uploads)

Builds a ledger of N signed uploads in a temporary home, serves it with uvicorn on a free
port, then times (wall and this process's CPU): the Go checker (tests/ledger/tlogcheck:
checkpoint signature, an inclusion proof from tiles for every entry), and
`ledger.witness.audit_remote` (what `materialabs ledger verify --url` runs: bundles, tiles,
root, full audit, consistency with the state). Prints the load average, since wall times
on a shared machine follow it.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402

from ledger import init_ledger, public_bytes, read_private_key, upload_payload  # noqa: E402
from ledger.tlog import default_origin, verifier_key  # noqa: E402
from ledger.witness import audit_remote  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=10_000)
    args = parser.parse_args()
    from tests.gateway.conftest import Server
    from tests.gateway.test_transparency_log import build_checker

    print(f"load average at start: {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        ledger, admin_path = init_ledger(home / "ledger", admin_dir=home / "keys")
        lab = Ed25519PrivateKey.generate()
        ledger.register_key(read_private_key(admin_path), "bench", public_bytes(lab))
        started = time.perf_counter()
        with ledger.batch():
            for n in range(args.entries):
                cid = f"bafkreibench{n:08d}"
                metadata = {"n": n, "lab": "bench", "record_count": 10}
                payload = upload_payload("dataset", cid, metadata)
                ledger.append_signed("dataset", cid, metadata, payload, public_bytes(lab),
                                     lab.sign(payload))
        size, public = len(ledger), ledger.ledger_public
        ledger.close()
        print(f"ledger of {size} entries built in {time.perf_counter() - started:.1f} s")
        binary = build_checker()
        with Server(home) as server:
            url = f"{server.url}/log"
            vkey = verifier_key(default_origin(public), public)
            wall = time.perf_counter()
            out = subprocess.run([str(binary), url, vkey], capture_output=True, text=True)
            wall = time.perf_counter() - wall
            print(f"Go sumdb check (note + tlog, proof per entry from tiles): {wall:.2f} s wall, "
                  f"rc {out.returncode}: {out.stdout.strip() or out.stderr.strip()}")
            for label in ("first run", "second run (consistency with the state)"):
                wall, cpu = time.perf_counter(), time.process_time()
                audit = audit_remote(url, public, home / "state.json", workers=1)
                wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
                print(f"verify --url, {label}: ok={audit.ok} {wall:.2f} s wall, {cpu:.2f} CPU-s "
                      f"in this process (which also serves the gateway), "
                      f"{1e6 * wall / size:.0f} us per entry")
    print(f"load average at end: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
