"""Query latency over a 10^6-row catalog, against a pandas full scan as the baseline.

Both sides start from the Parquet files and read the columns of the result table
(``DISPLAY_COLUMNS``) plus those the filters need: pyarrow pushes the filters into the scan,
pandas reads the columns and then applies a boolean mask.

Rows are drawn from the real MP formation-energy set (chemistry, space groups, energies)
and repeated with jitter to reach the requested size. Prints one line per query and the
ratio pandas/pyarrow.

    python benchmarks/query.py            # 10^6 rows
    python benchmarks/query.py --rows 200000
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from materialabs.catalog import DISPLAY_COLUMNS, Catalog, Query, make_row
from materialabs.datasets import load_mp_formation

QUERIES = {
    "contains Ti,O & gap 1.5–3.5 eV": Query(contains=["Ti", "O"],
                                            ranges={"band_gap_eV": (1.5, 3.5)}),
    "within Sr,Ba,Ti,Zr,O": Query(within=["Sr", "Ba", "Ti", "Zr", "O"]),
    "cubic & E_f ≤ -2 eV/atom": Query(crystal_system="cubic",
                                      ranges={"formation_energy_per_atom_eV": (None, -2.0)}),
    "system O-Sr-Ti, kind dft": Query(chemical_system="O-Sr-Ti", kinds=["dft"]),
}


def build(root: Path, rows: int, seed: int = 0) -> None:
    mp = load_mp_formation()
    base = [make_row("dft", crystal.elements, reduced_formula=formula,
                     spacegroup_number=int(sg), nsites=crystal.num_sites,
                     formation_energy_per_atom_eV=float(ef), band_gap_eV=float(gap),
                     source="mp-2018", method="PBE")
            for formula, sg, ef, gap, crystal in zip(mp.reduced_formula, mp.spacegroup_number,
                                                     mp.formation_energy_per_atom, mp.band_gap,
                                                     mp.crystal, strict=True)]
    frame = pd.DataFrame(base)
    rng = np.random.default_rng(seed)
    copies = -(-rows // len(frame))
    big = pd.concat([frame] * copies, ignore_index=True).iloc[:rows].copy()
    big["kind"] = rng.choice(["upload", "prediction", "dft"], size=rows)
    big["formation_energy_per_atom_eV"] += rng.normal(0, 0.02, size=rows)
    big["record_id"] = [f"r{i}" for i in range(rows)]
    catalog = Catalog(root)
    for start in range(0, rows, 250_000):
        catalog.append(big.iloc[start:start + 250_000].to_dict("records"))


FILTER_COLUMNS = ["chemical_system", "crystal_system", "kind"]


def pandas_baseline(files: list[str], query: Query) -> int:
    columns = list(dict.fromkeys([*DISPLAY_COLUMNS, *FILTER_COLUMNS, *query.ranges]))
    frame = pd.concat([pd.read_parquet(f, columns=columns) for f in files], ignore_index=True)
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
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "catalog"
        start = time.perf_counter()
        build(root, args.rows)
        print(f"built catalog: {args.rows:,} rows in {time.perf_counter() - start:.1f} s")
        catalog = Catalog(root)
        files = catalog.dataset().files
        print(f"{'query':40s} {'rows':>8s} {'pyarrow s':>10s} {'pandas s':>9s} {'ratio':>6s}")
        worst = 0.0
        for name, query in QUERIES.items():
            fast, table = timed(lambda q=query: catalog.query(q, columns=DISPLAY_COLUMNS))
            slow, count = timed(lambda q=query: pandas_baseline(files, q), repeats=3)
            assert table.num_rows == count, f"{name}: pyarrow {table.num_rows} != pandas {count}"
            worst = max(worst, fast)
            print(f"{name:40s} {table.num_rows:8d} {fast:10.3f} {slow:9.3f} {slow / fast:6.1f}x")
        verdict = "meets" if worst < 1.0 else "MISSES"
        print(f"slowest query {worst:.3f} s over {args.rows:,} rows: {verdict} the < 1 s target")


if __name__ == "__main__":
    main()
