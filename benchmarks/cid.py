"""CID throughput: our importer vs `ipfs add --only-hash --cid-version=1`, same file, same run.

usage: python benchmarks/cid.py [--size-mb 100] [--repeat 3] [--quick] [--kubo PATH]

Writes SIZE MB of random bytes to a temporary file, computes its CID with
materialabs.store.cid_of_file and with the Kubo binary (in a throw-away IPFS_PATH),
checks both CIDs agree, and prints MB/s (1 MB = 10^6 bytes) for each and the ratio.
Best of --repeat runs each, page cache warm for both. Kubo's figure includes its process
start; the 0-byte add line shows how much of its time that is.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from materialabs.store.cid import cid_of_file  # noqa: E402

KUBO_VERSION = "v0.43.1"


def find_kubo(explicit: str | None) -> Path:
    candidates = [explicit, os.environ.get("MATERIALABS_KUBO_BIN"), os.environ.get("KUBO_BIN")]
    cache = os.environ.get("MATERIALABS_CACHE") or str(
        Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "materialabs"
    )
    candidates += [str(Path(cache) / "kubo" / KUBO_VERSION / "ipfs"), shutil.which("ipfs")]
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return Path(candidate)
    raise SystemExit(
        "benchmarks/cid.py: no Kubo binary found (tried --kubo, $MATERIALABS_KUBO_BIN, "
        f"$KUBO_BIN, {cache}/kubo/{KUBO_VERSION}/ipfs, PATH); build it with infra/ipfs/build.sh"
    )


def write_random_file(path: Path, size: int) -> None:
    with open(path, "wb") as handle:
        remaining = size
        while remaining:
            piece = min(remaining, 8 * 1024 * 1024)
            handle.write(os.urandom(piece))
            remaining -= piece


def best_time(run, repeat: int) -> tuple[float, str]:
    best = float("inf")
    result = ""
    for _ in range(repeat):
        start = time.perf_counter()
        result = run()
        best = min(best, time.perf_counter() - start)
    return best, result


def kubo_runner(kubo: Path, env: dict[str, str], path: Path):
    def run() -> str:
        completed = subprocess.run(
            [str(kubo), "add", "--only-hash", "--cid-version=1", "-Q", str(path)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        return completed.stdout.strip()

    return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=float, default=100.0, help="file size (default 100)")
    parser.add_argument("--repeat", type=int, default=3, help="best of N runs (default 3)")
    parser.add_argument("--quick", action="store_true", help="20 MB, best of 2")
    parser.add_argument("--kubo", help="path to the ipfs binary")
    args = parser.parse_args(argv)
    size_mb, repeat = (20.0, 2) if args.quick else (args.size_mb, args.repeat)
    size = int(size_mb * 1e6)
    kubo = find_kubo(args.kubo)

    with tempfile.TemporaryDirectory(prefix="materialabs-bench-cid-") as tmp:
        tmp_dir = Path(tmp)
        data_path = tmp_dir / "random.bin"
        empty_path = tmp_dir / "empty.bin"
        write_random_file(data_path, size)
        empty_path.write_bytes(b"")
        env = {**os.environ, "IPFS_PATH": str(tmp_dir / "ipfs"), "IPFS_TELEMETRY": "off"}
        subprocess.run(
            [str(kubo), "init", "--profile=test", "--empty-repo"],
            env=env,
            capture_output=True,
            check=True,
        )
        version = subprocess.run(
            [str(kubo), "version", "--number"], env=env, capture_output=True, text=True
        ).stdout.strip()
        data_path.read_bytes()  # warm the page cache for both contenders

        ours_s, ours_cid = best_time(lambda: cid_of_file(data_path), repeat)
        kubo_s, kubo_cid = best_time(kubo_runner(kubo, env, data_path), repeat)
        start_s, _ = best_time(kubo_runner(kubo, env, empty_path), repeat)

    ours_mbs = size / 1e6 / ours_s
    kubo_mbs = size / 1e6 / kubo_s
    print(f"file: {size_mb:g} MB random bytes, best of {repeat}; Kubo {version} at {kubo}")
    print(f"  materialabs cid_of_file          {ours_s:7.3f} s  {ours_mbs:8.1f} MB/s  {ours_cid}")
    print(f"  ipfs add --only-hash (Kubo)      {kubo_s:7.3f} s  {kubo_mbs:8.1f} MB/s  {kubo_cid}")
    print(f"  ipfs add of 0 bytes (start cost) {start_s:7.3f} s")
    print(f"ratio ours/Kubo throughput: {ours_mbs / kubo_mbs:.2f}x (target >= 0.5x)")
    if ours_cid != kubo_cid:
        print("MISMATCH: the CIDs differ", file=sys.stderr)
        return 1
    print("CIDs identical")
    return 0


if __name__ == "__main__":
    sys.exit(main())
