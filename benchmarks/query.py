"""`materialabs query` latency over a 10^6-row catalog, against a pandas full scan.

The catalog is the SQLite file (indexes, the distinct-system table); the baseline holds the
columns of the result table (``DISPLAY_COLUMNS``) plus those the filters need in a pandas
DataFrame in memory and applies a boolean mask, so it pays no I/O at all.

Rows are built by benchmarks/gateway.py (the MP set repeated with jitter; cached). Prints one
line per query and the ratio pandas/SQLite.

    python benchmarks/query.py            # 10^6 rows
    python benchmarks/query.py --rows 200000
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gateway import cached_catalog  # noqa: E402  (the shared row builder)

from materialabs.catalog import DISPLAY_COLUMNS, NUMERIC_COLUMNS, Catalog, Query  # noqa: E402

QUERIES = {
    "contains Ti,O & gap 1.5–3.5 eV": Query(contains=["Ti", "O"],
                                            ranges={"band_gap_eV": (1.5, 3.5)}),
    "within Sr,Ba,Ti,Zr,O": Query(within=["Sr", "Ba", "Ti", "Zr", "O"]),
    "cubic & E_f ≤ -2 eV/atom": Query(crystal_system="cubic",
                                      ranges={"formation_energy_per_atom_eV": (None, -2.0)}),
    "system O-Sr-Ti, kind dft": Query(chemical_system="O-Sr-Ti", kinds=["dft"]),
}


FILTER_COLUMNS = ["chemical_system", "crystal_system", "kind"]


def pandas_baseline(frame: pd.DataFrame, query: Query) -> int:
    mask = np.ones(len(frame), dtype=bool)
    system = frame["chemical_system"]
    for element in query.contains:
        mask &= system.str.contains(f"-{element}-", regex=False).to_numpy()
    if query.within:
        allowed = set(query.within)
        mask &= system.map(lambda s: set(s.strip("-").split("-")) <= allowed).to_numpy()
    if query.chemical_system:
        tag = "-" + "-".join(sorted(query.chemical_system.split("-"))) + "-"
        mask &= (system == tag).to_numpy()
    if query.crystal_system:
        mask &= (frame["crystal_system"] == query.crystal_system).to_numpy()
    if query.kinds:
        mask &= frame["kind"].isin(query.kinds).to_numpy()
    for column, (low, high) in query.ranges.items():
        if low is not None:
            mask &= (frame[column] >= low).to_numpy()
        if high is not None:
            mask &= (frame[column] <= high).to_numpy()
    return int(mask.sum())


def timed(fn, repeats: int = 5) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true", help="10^5 rows")
    args = parser.parse_args()
    rows = 100_000 if args.quick else args.rows
    catalog = Catalog(cached_catalog(rows), readonly=True)
    columns = list(dict.fromkeys([*DISPLAY_COLUMNS, *FILTER_COLUMNS, *NUMERIC_COLUMNS]))
    frame = pd.DataFrame(catalog.select(columns=columns))
    print(f"{'query':40s} {'rows':>8s} {'SQLite s':>9s} {'pandas s':>9s} {'ratio':>6s}")
    worst = 0.0
    for name, query in QUERIES.items():
        fast, table = timed(lambda q=query: catalog.query(q, columns=DISPLAY_COLUMNS))
        slow, count = timed(lambda q=query: pandas_baseline(frame, q), repeats=3)
        assert table.num_rows == count, f"{name}: SQLite {table.num_rows} != pandas {count}"
        worst = max(worst, fast)
        print(f"{name:40s} {table.num_rows:8d} {fast:9.3f} {slow:9.3f} {slow / fast:6.1f}x")
    verdict = "meets" if worst < 1.0 else "MISSES"
    print(f"slowest query {worst:.3f} s over {rows:,} rows: {verdict} the < 1 s target")


if __name__ == "__main__":
    main()
