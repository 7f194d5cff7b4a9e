"""Benchmark the candidate generators: throughput, validity and uniqueness.

    python benchmarks/generate.py            # ~2-4 minutes on 2 cores
    python benchmarks/generate.py --quick    # ~1 minute

SAPS runs over Castelli perovskite parents and Materials Project parents (<= 20 sites)
from ../shared/data, deduplicated against the whole dataset the parents come from.
AIRSS runs over a few ternary compositions. Rates count *valid unique* candidates per
wall-clock second with ``--workers`` processes (default 2), after the one-off loading
of the datasets and the substitution model. Because the machine may be shared, each
line also gives candidates per CPU-second (this process and its workers); on an
otherwise idle machine the wall rate approaches workers x that figure.

Baselines, measured in the same run on the first parents:
  SAPS   (1) the same substitutions deduplicated with StructureMatcher only (every pair
         of equal formula is matched), and a check that both keep the same candidates;
         (2) naive substitution (every subset of every orbit, no symmetry merging) with
         StructureMatcher-only deduplication.
  AIRSS  the same random crystals deduplicated with StructureMatcher only.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from materialabs import datasets  # noqa: E402
from materialabs.generate import airss, saps  # noqa: E402
from materialabs.generate.dedup import Deduplicator  # noqa: E402
from materialabs.generate.filters import BatchReport  # noqa: E402

TERNARIES = ("SrTiO3", "Li2MnO3", "NaAlO2", "Mg2SiO4", "CaTiO3", "LiCoO2")


def cpu_seconds() -> float:
    """CPU time of this process and its reaped workers (user + system)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


class Clock:
    """Wall and CPU seconds of a block: the machine is shared, so both are printed."""

    def __enter__(self) -> Clock:
        self.wall, self.cpu = time.perf_counter(), cpu_seconds()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.wall
        self.cpu = cpu_seconds() - self.cpu


def _line(name: str, count: int, clock: Clock, report: BatchReport, extra: str = "") -> float:
    rate = count / clock.wall if clock.wall else 0.0
    per_cpu = count / clock.cpu if clock.cpu else 0.0
    print(f"  {name:<38} {count:6d} in {clock.wall:6.1f} s = {rate:7.1f}/s "
          f"({per_cpu:6.1f} per CPU-s)  validity {report.validity_rate:6.1%}  "
          f"uniqueness {report.uniqueness_rate:6.1%}{extra}")
    return rate


def bench_saps(table, n_parents: int, seed: int, workers: int, label: str,
               baseline_parents: int) -> tuple[float, float, float]:
    shuffled = table.sample(frac=1.0, random_state=seed)
    parents = list(zip(shuffled["material_id"], shuffled["crystal"], strict=True))[:n_parents]
    known = Deduplicator()
    known.add_known(table["crystal"], table["material_id"])
    with Clock() as clock:
        found, report = saps.generate(parents, seed=seed, deduplicator=known, workers=workers)
    stats = known.stats
    rate = _line(f"SAPS {label} ({len(parents)} parents)", len(found), clock, report,
                 f"   [matcher {stats.matcher_calls}, exact {stats.exact_hits}, "
                 f"prefilter {stats.prefilter_skips}]")
    print(f"    batch: {report}")

    base_parents = parents[:baseline_parents]
    plain = Deduplicator(use_fingerprint=False)
    plain.add_known(table["crystal"], table["material_id"])
    with Clock() as clock:
        same, same_report = saps.generate(base_parents, seed=seed, deduplicator=plain,
                                          workers=workers)
    plain_rate = _line(f"  baseline matcher-only dedup ({len(base_parents)})", len(same),
                       clock, same_report)
    ours = Deduplicator()
    ours.add_known(table["crystal"], table["material_id"])
    check, _ = saps.generate(base_parents, seed=seed, deduplicator=ours, workers=workers)
    extra = len({c.candidate_id for c in check} - {c.candidate_id for c in same})
    print(f"    fingerprint+matcher keeps {len(check)}, matcher-only {len(same)}: {extra} kept "
          f"only by the fingerprint route (distorted variants the matcher's stol=0.3 equates "
          f"with a higher-symmetry crystal)")

    naive_config = saps.SapsConfig(use_symmetry=False)
    naive_known = Deduplicator(use_fingerprint=False)
    naive_known.add_known(table["crystal"], table["material_id"])
    with Clock() as clock:
        naive, naive_report = saps.generate(base_parents, seed=seed, config=naive_config,
                                            deduplicator=naive_known, workers=workers)
    naive_rate = _line(f"  baseline naive substitution ({len(base_parents)})", len(naive),
                       clock, naive_report)
    return rate, plain_rate, naive_rate


def bench_airss(n_each: int, seed: int, workers: int, compositions: tuple[str, ...]) -> tuple[
        float, float]:
    config = airss.AirssConfig(formula_units=(1, 2))
    for composition in compositions:  # PyXtal's group tables, once per composition
        species, counts = airss.parse_composition(composition)
        for units in config.formula_units:
            airss.compatible_space_groups(tuple(c * units for c in counts))
    rates = []
    for use_fingerprint in (True, False):
        total, report = 0, BatchReport()
        with Clock() as clock:
            batches = airss.generate_many(
                compositions, n_each, seed, workers=workers, config=config,
                deduplicator=Deduplicator(use_fingerprint=use_fingerprint,
                                          symmetry_buckets=False))
            for _, found, part in batches:
                total += len(found)
                report.merge(part)
        name = "AIRSS" if use_fingerprint else "  baseline matcher-only dedup"
        rates.append(_line(f"{name} ({len(compositions)} compositions)", total, clock, report))
        if use_fingerprint:
            print(f"    batch: {report}")
    return rates[0], rates[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer parents and compositions")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"generate benchmark: {args.workers} worker processes, {cores} cores visible, "
          f"load average {os.getloadavg()[0]:.1f}")
    start = time.perf_counter()
    perovskites = datasets.load_perovskites()
    mp = datasets.load_mp_formation()
    mp = mp[mp["nsites"] <= 20].reset_index(drop=True)
    saps.substitution_model()
    print(f"  setup (datasets + substitution model): {time.perf_counter() - start:.1f} s")

    n_perov, n_mp, n_base = (40, 40, 10) if args.quick else (150, 150, 30)
    perov = bench_saps(perovskites, n_perov, args.seed, args.workers, "perovskites", n_base)
    mp_rates = bench_saps(mp, n_mp, args.seed, args.workers, "MP", n_base)
    compositions = TERNARIES[:3] if args.quick else TERNARIES
    airss_rate, airss_base = bench_airss(8 if args.quick else 20, args.seed, args.workers,
                                         compositions)

    print("summary")
    for name, (rate, plain, naive) in (("perovskites", perov), ("MP", mp_rates)):
        print(f"  SAPS {name:<12}{rate:7.1f}/s  (target 200)  x{rate / plain:.1f} vs "
              f"matcher-only dedup, x{rate / naive:.1f} vs naive substitution")
    print(f"  AIRSS            {airss_rate:7.1f}/s  (target 20)   "
          f"x{airss_rate / airss_base:.2f} vs matcher-only dedup")
    return 0


if __name__ == "__main__":
    sys.exit(main())
