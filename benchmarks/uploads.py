"""20 labs x 50 small signed uploads through the gateway into the distributed stack, with the
gateway and the ledger service SIGKILLed (and restarted) under the load.

It starts its own Kafka broker, Kubo node and the services (infra/ scripts, in a temporary
run folder, as `make up` does), registers 20 lab keys, then runs one client thread per lab:
each signs its uploads and POSTs them to /v1/uploads, polls until a receipt, and retries the
same signed bytes whenever the gateway is unreachable or answers a retryable refusal. Once
a third of the receipts are in, the gateway is SIGKILLed and restarted; at two thirds, the
ledger service. At the end:

* every upload has an accepted state with a receipt, and every receipt passes the same check
  as `materialabs ledger verify-proof` (inclusion under the ledger's signed head);
* the ledger holds each upload exactly once (one dataset entry per signed manifest) and
  `materialabs ledger verify` passes;
* Go's golang.org/x/mod/sumdb checks the gateway's checkpoint and every entry from tiles.

It prints p50/p99 time to receipt (from the first POST), the same for the uploads in
flight across a kill, and the throughput. Baseline in the same run: the same client doing
sequential uploads into an idle stack before the load (time to receipt of one upload alone).

    python benchmarks/uploads.py                 # 20 labs x 50 uploads
    python benchmarks/uploads.py --labs 4 --uploads 10 --no-kill   # a quick look
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
# Not benchmarks/ first on the path: benchmarks/ledger.py would shadow the ledger package.
sys.path[0] = str(ROOT)
from tests.e2e.uploads_stack import (  # noqa: E402
    RECORDS_PER_UPLOAD,
    Stack,
    Upload,
    check_receipts,
    dataset_entries,
    deliver,
    register_labs,
    signed,
)


def _outcome(upload: Upload) -> str:
    return str(upload.state.get("code", upload.state.get("state")))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def go_check(stack: Stack) -> str:
    from tests.gateway.test_transparency_log import _note_key, build_checker

    out = subprocess.run([str(build_checker()), f"{stack.url}/log", _note_key(stack.home)],
                         capture_output=True, text=True, timeout=600)
    return (out.stdout + out.stderr).strip().splitlines()[-1] if out.returncode == 0 \
        else f"FAILED: {out.stderr.strip()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--labs", type=int, default=20)
    parser.add_argument("--uploads", type=int, default=50, help="per lab")
    parser.add_argument("--no-kill", action="store_true", help="no SIGKILL under the load")
    parser.add_argument("--limit-s", type=float, default=1200, help="give up after this")
    args = parser.parse_args()

    stack = Stack(Path(tempfile.mkdtemp(prefix="bench-uploads-")))
    try:
        stack.start_infra()
        labs = register_labs(stack.home, args.labs)
        stack.start_services()
        http = httpx.Client(base_url=stack.url, timeout=30)
        # Baseline: one upload at a time into the idle stack.
        alone = []
        for index in range(5):
            upload = Upload(labs[0][0], signed(labs[0][1], labs[0][0], 0, 900 + index))
            deliver(http, upload, time.monotonic() + 120)
            assert upload.state.get("state") == "accepted", upload.state
            alone.append(upload.finished - upload.started)
        baseline_p50 = statistics.median(alone)

        plan = [[Upload(lab, signed(key, lab, li, ui)) for ui in range(args.uploads)]
                for li, (lab, key) in enumerate(labs)]
        everything = [u for lab_uploads in plan for u in lab_uploads]
        stop_at = time.monotonic() + args.limit_s

        def client(lab_uploads: list[Upload]) -> None:
            with httpx.Client(base_url=stack.url, timeout=30) as own:
                for upload in lab_uploads:
                    deliver(own, upload, stop_at)

        started = time.monotonic()
        threads = [threading.Thread(target=client, args=(u,), daemon=True) for u in plan]
        for thread in threads:
            thread.start()
        kills: list[tuple[str, float]] = []
        for instance, fraction in (() if args.no_kill else
                                   (("gateway-1", 1 / 3), ("ledger-1", 2 / 3))):
            while sum(bool(u.finished) for u in everything) < fraction * len(everything):
                time.sleep(0.2)
            stack.kill(instance)
            kills.append((instance, time.monotonic()))
            print(f"SIGKILLed {instance} at {time.monotonic() - started:.1f} s; restarting",
                  flush=True)
            stack.start_services()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - started

        accepted = [u for u in everything if u.state.get("state") == "accepted"]
        failed = [u for u in everything if u.state.get("state") != "accepted"]
        times = [u.finished - u.started for u in accepted]
        across = [u.finished - u.started for u in accepted
                  if any(u.started <= at <= u.finished for _, at in kills)]
        entries, distinct = dataset_entries(stack.home)
        seqs = [u.state["ledger_seq"] for u in accepted]
        verify = subprocess.run([str(ROOT / ".venv/bin/materialabs"), "ledger", "verify",
                                 "--ledger", str(stack.home / "ledger")], env=stack.env,
                                capture_output=True, text=True, timeout=600)
        print(f"{args.labs} labs x {args.uploads} uploads of {RECORDS_PER_UPLOAD} records "
              f"through {stack.url}/v1/uploads into the distributed stack "
              f"(kills: {', '.join(k for k, _ in kills) or 'none'})")
        print(f"  receipts: {len(accepted)}/{len(everything)} accepted "
              f"({len(failed)} not: {sorted({_outcome(u) for u in failed})}); "
              f"POSTs {sum(u.posts for u in everything)}")
        print(f"  time to receipt: p50 {statistics.median(times) * 1000:.0f} ms, p99 "
              f"{percentile(times, 0.99) * 1000:.0f} ms, max {max(times) * 1000:.0f} ms; "
              f"{len(accepted) / elapsed:.1f} uploads/s over {elapsed:.1f} s")
        if across:
            print(f"  in flight across a kill ({len(across)}): p50 "
                  f"{statistics.median(across) * 1000:.0f} ms, max {max(across) * 1000:.0f} ms")
        print(f"  baseline, one upload alone into the idle stack: p50 {baseline_p50 * 1000:.0f} ms "
              f"(ratio p50 under load / alone: {statistics.median(times) / baseline_p50:.2f})")
        print(f"  ledger: {entries} dataset entries, {distinct} distinct manifests, "
              f"{len(set(seqs))} distinct receipt sequences for {len(accepted) + len(alone)} "
              f"uploads; `ledger verify`: {'OK' if verify.returncode == 0 else 'FAILED'}")
        print(f"  receipts failing verify-proof: {check_receipts(stack.home, accepted)}")
        print(f"  Go sumdb tile check: {go_check(stack)}")
        print(f"  load average after: {os.getloadavg()[0]:.1f} (2 cores)")
        ok = (not failed and entries == distinct == len(accepted) + len(alone)
              and len(set(seqs)) == len(accepted) and verify.returncode == 0)
        print("all receipts, no duplicates, chain verifies" if ok else "FAILED")
        sys.exit(0 if ok else 1)
    finally:
        stack.stop()


if __name__ == "__main__":
    main()
