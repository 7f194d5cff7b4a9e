"""Catalog storage: one writer projecting events while readers in other processes query.

Three candidates, each for the same time with the same workload — a writer process
upserting batches of 500 rows (each batch written twice, as a redelivery would), and 4 reader
processes running an indexed filter (crystal system + band-gap window) and counting:

* SQLite in WAL mode (what the catalog uses),
* SQLite with the default rollback journal,
* Parquet part files read with pyarrow's dataset scanner (the catalog before issue 15).

Prints per candidate: rows written per second, reader queries, reader p50/p99 latency,
reader errors (locked database, a part read while being written), and whether the
redelivered batches left duplicate rows.

    python benchmarks/catalog_storage.py            # 20 s per candidate, 200,000 rows first
    python benchmarks/catalog_storage.py --quick    # 6 s, 50,000 rows
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

READERS = 4
BATCH = 500


def _rows(start: int, count: int) -> list[dict]:
    from materialabs.catalog import make_row

    systems = ["hexagonal", "cubic", "tetragonal", "orthorhombic"]
    sg = {"hexagonal": 194, "cubic": 221, "tetragonal": 123, "orthorhombic": 62}
    return [make_row("dft", ["Sr", "Ti", "O"], record_id=f"r-{i:09d}",
                     reduced_formula="SrTiO3", crystal_system=systems[i % 4],
                     spacegroup_number=sg[systems[i % 4]], band_gap_eV=(i % 400) / 100,
                     formation_energy_per_atom_eV=-3.0, nsites=5, occurred_at_ms=1)
            for i in range(start, start + count)]


# -- SQLite ---------------------------------------------------------------------------------

def _sqlite_writer(root: str, journal: str, stop_at: float, start: int, out) -> None:
    from materialabs.catalog import Catalog

    catalog = Catalog(Path(root))
    connection = catalog._connection()
    connection.execute(f"PRAGMA journal_mode={journal}")
    written, index, errors = 0, start, 0
    while time.monotonic() < stop_at:
        batch = _rows(index, BATCH)
        for _ in range(2):  # delivered, then redelivered
            try:
                catalog.upsert(batch)
            except Exception:  # noqa: BLE001 - counted: a writer that could not write
                errors += 1
        written += BATCH
        index += BATCH
    out.put(("writer", written, errors))


def _sqlite_reader(root: str, stop_at: float, out) -> None:
    from materialabs.catalog import Catalog

    catalog = Catalog(Path(root), readonly=True)
    where = "crystal_system = ? AND band_gap_eV >= ? AND band_gap_eV <= ?"
    times, errors = [], 0
    while time.monotonic() < stop_at:
        start = time.perf_counter()
        try:
            catalog.count(where, ["hexagonal", 1.0, 2.0])
            catalog.select(where, ["hexagonal", 1.0, 2.0], limit=20)
            times.append(time.perf_counter() - start)
        except Exception:  # noqa: BLE001 - counted: a refused or failed read
            errors += 1
    out.put(("reader", times, errors))


def _sqlite_prepare(root: Path, journal: str, rows: int) -> None:
    from materialabs.catalog import Catalog

    catalog = Catalog(root)
    connection = catalog._connection()
    connection.execute(f"PRAGMA journal_mode={journal}")
    for start in range(0, rows, 50_000):
        catalog.upsert(_rows(start, min(50_000, rows - start)))
    catalog.close()


def _sqlite_duplicates(root: Path) -> int:
    from materialabs.catalog import Catalog

    catalog = Catalog(root, readonly=True)
    total = catalog.count()
    distinct = catalog.fetch("SELECT COUNT(DISTINCT record_id) AS n FROM rows")[0]["n"]
    return total - distinct


# -- Parquet --------------------------------------------------------------------------------

def _parquet_write(root: Path, rows: list[dict]) -> None:
    import uuid

    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pylist(rows)
    name = f"part-{time.time_ns():020d}-{uuid.uuid4().hex[:8]}.parquet"
    tmp = root / f".{name}.tmp"
    pq.write_table(table, tmp, compression="zstd")
    tmp.replace(root / name)


def _parquet_writer(root: str, stop_at: float, start: int, out) -> None:
    written, index, errors = 0, start, 0
    while time.monotonic() < stop_at:
        batch = _rows(index, BATCH)
        for _ in range(2):  # delivered, then redelivered: append-only parts cannot upsert
            _parquet_write(Path(root), batch)
        written += BATCH
        index += BATCH
    out.put(("writer", written, errors))


def _parquet_reader(root: str, stop_at: float, out) -> None:
    import pyarrow.dataset as ds

    times, errors = [], 0
    while time.monotonic() < stop_at:
        start = time.perf_counter()
        try:
            files = sorted(str(p) for p in Path(root).glob("part-*.parquet"))
            dataset = ds.dataset(files, format="parquet")
            expression = ((ds.field("crystal_system") == "hexagonal")
                          & (ds.field("band_gap_eV") >= 1.0) & (ds.field("band_gap_eV") <= 2.0))
            dataset.count_rows(filter=expression)
            dataset.head(20, filter=expression)
            times.append(time.perf_counter() - start)
        except Exception:  # noqa: BLE001 - counted
            errors += 1
    out.put(("reader", times, errors))


def _parquet_prepare(root: Path, rows: int) -> None:
    for start in range(0, rows, 50_000):
        _parquet_write(root, _rows(start, min(50_000, rows - start)))


def _parquet_duplicates(root: Path) -> int:
    import pyarrow.dataset as ds

    table = ds.dataset(sorted(str(p) for p in root.glob("part-*.parquet")),
                       format="parquet").to_table(columns=["record_id"])
    return table.num_rows - len(set(table.column("record_id").to_pylist()))


# -- driver ---------------------------------------------------------------------------------

def run(name: str, writer, reader, root: Path, args: tuple, seconds: float, rows: int) -> None:
    out: mp.Queue = mp.Queue()
    stop_at = time.monotonic() + seconds
    processes = [mp.Process(target=writer, args=(str(root), *args, stop_at, rows, out))]
    processes += [mp.Process(target=reader, args=(str(root), stop_at, out))
                  for _ in range(READERS)]
    for process in processes:
        process.start()
    results = [out.get(timeout=seconds + 120) for _ in processes]
    for process in processes:
        process.join()
    written = next(r for r in results if r[0] == "writer")
    times = [t for r in results if r[0] == "reader" for t in r[1]]
    errors = sum(r[2] for r in results if r[0] == "reader")
    ordered = sorted(times) or [float("nan")]
    p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
    print(f"{name:26s} {written[1] / seconds:9.0f} {len(times):8d} "
          f"{statistics.median(ordered) * 1000:8.1f} {p99 * 1000:8.1f} {errors + written[2]:7d}",
          end=" ")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    seconds, rows = (6.0, 50_000) if args.quick else (20.0, 200_000)
    print(f"{READERS} reader processes, 1 writer, {seconds:.0f} s each, {rows:,} rows first; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"{'storage':26s} {'rows/s':>9s} {'queries':>8s} {'p50 ms':>8s} {'p99 ms':>8s} "
          f"{'errors':>7s} duplicates")
    with tempfile.TemporaryDirectory() as tmp:
        for journal in ("WAL", "DELETE"):
            root = Path(tmp) / f"sqlite-{journal}"
            _sqlite_prepare(root, journal, rows)
            run(f"SQLite, journal {journal}", _sqlite_writer, _sqlite_reader, root, (journal,),
                seconds, rows)
            print(_sqlite_duplicates(root))
        root = Path(tmp) / "parquet"
        root.mkdir()
        _parquet_prepare(root, rows)

        run("Parquet parts + pyarrow", _parquet_writer_entry, _parquet_reader, root, (),
            seconds, rows)
        print(_parquet_duplicates(root))


def _parquet_writer_entry(root: str, stop_at: float, start: int, out) -> None:
    _parquet_writer(root, stop_at, start, out)


if __name__ == "__main__":
    main()
