"""The gateway under load over a 10^6-row catalog: OPTIMADE filters through HTTP.

Rows are derived from the shared Materials Project set (structures, formulas, space groups,
energies, band gaps), repeated with perturbed energies and gaps, spread over the three kinds,
a few labs and campaigns, to reach the requested size. The catalog is cached (keyed by the
row count) under $MATERIALABS_CACHE/bench-gateway, so a second run skips the build.

It prints, for the seed's example filter (hexagonal, band gap 1.0-2.0 eV) and for a mix of
20 filters: p50/p99 latency of one client through HTTP next to the same query run in process
(the route's steps: translate, count through the same count cache, first page), as a ratio,
and the cold count (the first time a filter is counted); then 50 concurrent clients for 30 s
over the mix: requests, p50/p99 and errors.

    python benchmarks/gateway.py             # 10^6 rows
    python benchmarks/gateway.py --quick     # 10^5 rows, 10 s of load (make bench)
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

EXAMPLE = ('_materialabs_crystal_system="hexagonal" AND _materialabs_band_gap>=1.0 AND '
           "_materialabs_band_gap<=2.0")
MIX = [
    EXAMPLE,
    'elements HAS "Ti"',
    'elements HAS ALL "Ti","O"',
    'elements HAS ANY "Li","Na"',
    'elements HAS ONLY "Sr","Ti","O"',
    "nelements=3",
    "nelements>=4 AND nsites<=10",
    'chemical_formula_reduced="O3SrTi"',
    'chemical_formula_reduced STARTS WITH "Li"',
    'chemical_formula_anonymous="ABC3"',
    "_materialabs_band_gap>3.0",
    "_materialabs_formation_energy_per_atom<-3.0",
    "_materialabs_e_above_hull<=0.0",
    '_materialabs_source_kind="dft" AND _materialabs_band_gap>=1.5',
    "_materialabs_spacegroup_number=221",
    '_materialabs_crystal_system="cubic" AND elements HAS "O"',
    '_materialabs_lab="lab-b"',
    "_materialabs_ledger_sequence=3",
    'elements HAS "Fe" AND NOT elements HAS "O"',
    '(nelements=2 OR nelements=3) AND _materialabs_band_gap<0.5',
]
LABS = ["lab-a", "lab-b", "lab-c", None]


def cache_root() -> Path:
    base = os.environ.get("MATERIALABS_CACHE") or Path.home() / ".cache" / "materialabs"
    return Path(base) / "bench-gateway"


def build_catalog(root: Path, rows: int, seed: int = 0) -> None:
    """``rows`` synthetic catalog rows derived from the MP set (see the module docstring)."""
    import numpy as np

    from materialabs import ports
    from materialabs.catalog import Catalog, make_row

    mp = ports.mp_table()
    base = []
    for row in mp.itertuples():
        made = make_row("dft", row.crystal.species, crystal=row.crystal,
                        spacegroup_number=int(row.spacegroup_number), mp_id=row.material_id,
                        formation_energy_per_atom_eV=float(row.formation_energy_per_atom),
                        band_gap_eV=float(row.band_gap), occurred_at_ms=1_700_000_000_000)
        base.append(made)
    rng = np.random.default_rng(seed)
    catalog = Catalog(root)
    batch = []
    kinds = ("upload", "prediction", "dft")
    for index in range(rows):
        row = dict(base[index % len(base)])
        repeat = index // len(base)
        kind = kinds[int(rng.integers(3))]
        noise = 0.0 if repeat == 0 else float(rng.normal(0, 0.05))
        row.update(record_id=f"b-{index:08d}", kind=kind,
                   formation_energy_per_atom_eV=row["formation_energy_per_atom_eV"] + noise,
                   band_gap_eV=max(0.0, row["band_gap_eV"] + (0 if repeat == 0
                                                                else float(rng.normal(0, 0.1)))),
                   e_above_hull_eV=float(abs(rng.normal(0, 0.1))) - 0.01,
                   lab=LABS[index % 4] if kind == "upload" else None,
                   ledger_seq=index % 1000 if kind == "upload" else None,
                   campaign_id=None if kind == "upload" else f"campaign-{index % 7}",
                   round=None if kind == "upload" else index % 5,
                   occurred_at_ms=row["occurred_at_ms"] + index)
        if kind == "prediction":
            row.update(formation_energy_sigma_eV=0.1, band_gap_sigma_eV=0.2)
        batch.append(row)
        if len(batch) == 50_000:
            catalog.upsert(batch)
            batch = []
    catalog.upsert(batch)
    catalog.close()


def cached_catalog(rows: int) -> Path:
    root = cache_root() / f"rows-{rows}"
    done = root / "complete"
    if not done.exists():
        import shutil

        shutil.rmtree(root, ignore_errors=True)
        start = time.perf_counter()
        build_catalog(root, rows)
        done.write_text(json.dumps({"rows": rows}))
        print(f"built {rows:,} rows in {time.perf_counter() - start:.0f} s at {root}")
    else:
        print(f"cached catalog: {rows:,} rows at {root}")
    return root


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def serve(home: Path, workers: int) -> tuple[object, str]:
    """`materialabs gateway` as its own process (its own interpreter: the clients' threads
    here do not share its GIL)."""
    import socket
    import subprocess

    import httpx

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": str(REPO), "MATERIALABS_HOME": str(home)}
    process = subprocess.Popen([sys.executable, "-m", "materialabs", "gateway", "--host",
                                "127.0.0.1", "--port", str(port), "--workers", str(workers)],
                               env=env, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/optimade/versions", timeout=2).status_code == 200:
                return process, url
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("the gateway did not start within 60 s")


def in_process(catalog, counts, text: str) -> None:
    """What the route does, in this process: translate, count (the same count cache), page
    (the same walk-or-index choice)."""
    from materialabs.optimade.api import SCAN_ROWS
    from materialabs.optimade.filter import translate

    translation = translate(text)
    returned = counts.count(catalog, translation.where, translation.parameters)
    total = counts.count(catalog, "", [])
    catalog.select(translation.where, translation.parameters, limit=20,
                   scan=20 * total <= SCAN_ROWS * returned)


def cold_count(catalog, text: str) -> None:
    from materialabs.optimade.filter import translate

    translation = translate(text)
    catalog.count(translation.where, translation.parameters)


def measure(fn, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=None)
    parser.add_argument("--quick", action="store_true", help="10^5 rows, 10 s of load")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=None)
    parser.add_argument("--workers", type=int, default=2, help="gateway worker processes")
    args = parser.parse_args()
    rows = args.rows or (100_000 if args.quick else 1_000_000)
    seconds = args.seconds or (10.0 if args.quick else 30.0)
    import httpx

    from materialabs.catalog import Catalog

    root = cached_catalog(rows)
    home = root.parent / f"home-{rows}"
    home.mkdir(exist_ok=True)
    link = home / "catalog"
    if not link.exists():
        link.symlink_to(root)
    from materialabs.optimade.api import CountCache

    catalog = Catalog(root, readonly=True)
    counts = CountCache()
    server, url = serve(home, args.workers)
    http = httpx.Client(base_url=url, timeout=120)
    print(f"gateway: {args.workers} worker processes; load average before: "
          f"{os.getloadavg()[0]:.1f} ({os.cpu_count()} cores)")

    def over_http(text: str) -> None:
        response = http.get("/optimade/v1/structures", params={"filter": text})
        response.raise_for_status()

    print(f"{'filter':62s} {'matches':>8s} {'HTTP p50':>9s} {'p99':>7s} {'direct p50':>10s} "
          f"{'ratio':>6s} {'cold count':>10s}")
    all_http, all_direct = [], []
    for text in MIX:
        over_http(text)  # warm
        http_times = measure(lambda t=text: over_http(t), 7)
        direct_times = measure(lambda t=text: in_process(catalog, counts, t), 7)
        cold = measure(lambda t=text: cold_count(catalog, t), 1)[0]
        all_http += http_times
        all_direct += direct_times
        matches = http.get("/optimade/v1/structures",
                           params={"filter": text, "page_limit": 0}).json()["meta"][
                               "data_returned"]
        name = text if len(text) <= 60 else text[:57] + "..."
        h50, d50 = statistics.median(http_times), statistics.median(direct_times)
        h99 = percentile(http_times, 0.99)
        print(f"{name:62s} {matches:8d} {h50 * 1000:7.1f}ms {h99 * 1000:5.0f}ms "
              f"{d50 * 1000:8.1f}ms {h50 / d50:6.2f} {cold * 1000:8.0f}ms")
    print(f"mix of {len(MIX)}, one client: HTTP p50 {statistics.median(all_http) * 1000:.1f} ms, "
          f"p99 {percentile(all_http, 0.99) * 1000:.0f} ms; direct p50 "
          f"{statistics.median(all_direct) * 1000:.1f} ms; ratio "
          f"{statistics.median(all_http) / statistics.median(all_direct):.2f}")

    latencies: list[float] = []
    errors: list[str] = []
    stop = time.monotonic() + seconds
    cpu_start = resource.getrusage(resource.RUSAGE_SELF)

    def client(index: int) -> None:
        rng = random.Random(index)
        with httpx.Client(base_url=url, timeout=60) as own:
            while time.monotonic() < stop:
                text = rng.choice(MIX)
                start = time.perf_counter()
                try:
                    status = own.get("/optimade/v1/structures",
                                     params={"filter": text}).status_code
                except httpx.HTTPError as error:
                    errors.append(repr(error))
                    continue
                latencies.append(time.perf_counter() - start)
                if status != 200:
                    errors.append(f"HTTP {status}")

    threads = [threading.Thread(target=client, args=(n,)) for n in range(args.clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    used = (cpu.ru_utime - cpu_start.ru_utime) + (cpu.ru_stime - cpu_start.ru_stime)
    p99 = percentile(latencies, 0.99) if latencies else float("nan")
    print(f"{args.clients} clients for {seconds:.0f} s: {len(latencies)} requests "
          f"({len(latencies) / seconds:.0f}/s), p50 {statistics.median(latencies) * 1000:.0f} ms, "
          f"p99 {p99 * 1000:.0f} ms, errors {len(errors)}; CPU {used:.0f} s; load average "
          f"after {os.getloadavg()[0]:.1f}")
    verdict = "meets" if p99 < 1.0 and not errors else "MISSES"
    print(f"{verdict} the target (p99 < 1 s, zero errors) over {rows:,} rows")
    server.terminate()
    server.wait(30)


if __name__ == "__main__":
    main()
