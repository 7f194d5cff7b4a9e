"""`materialabs generate ...`: propose candidate crystals by substitution or random search."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from materialabs.cli import UserError

DESCRIPTION = """\
Propose new candidate crystals, each with its provenance (method, parents, parameters,
seed). Every candidate is charge balanced, has no atoms closer than 0.5 x the sum of
their covalent radii (0.7 Å at least), a density of 0.5-25 g/cm³, and is not a
duplicate of another candidate or of a known structure (pymatgen StructureMatcher).
The same seed gives the same candidates in the same order.

  saps   symmetry-aware partial substitution of parent structures
  airss  random symmetric crystals for a composition (PyXtal)

Output by suffix: .cif (one data block per candidate), .extxyz, .json (records with
provenance). A summary of why rejected candidates were dropped goes to stderr.
"""

SAPS_DESCRIPTION = """\
Substitute ions on whole Wyckoff orbits (or symmetry-distinct parts of them) of parent
structures with ions pymatgen's substitution model rates likely; keep charge-balanced,
symmetry-distinct, valid and new outcomes, most likely first.

examples:
  materialabs generate saps --parent SrTiO3.cif --n 50 -o out.cif
  materialabs generate saps --from-dataset perovskites --max-parents 20 --n 500 --seed 7 \\
      -o candidates.json
  materialabs generate saps --from-dataset mp --threshold 0.02 --max-moves 1 --n 100 -o mp.extxyz
"""

AIRSS_DESCRIPTION = """\
Random crystals with random space-group symmetry for a composition, scaled to a volume
estimated from ionic radii, checked and deduplicated.

examples:
  materialabs generate airss --composition SrTiO3 --formula-units 1-2 --n 20 -o srtio3.cif
  materialabs generate airss --composition LiFePO4 --space-groups 62,14 --n 10 --seed 3 \\
      -o lfp.extxyz
"""

DATASETS = ("perovskites", "mp")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "generate", help="propose candidate crystals (SAPS substitution, AIRSS random search)",
        description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    methods = parser.add_subparsers(dest="generate_method", metavar="METHOD", required=True)

    saps = methods.add_parser(
        "saps", help="substitute ions on symmetry orbits of parent structures",
        description=SAPS_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    source = saps.add_mutually_exclusive_group(required=True)
    source.add_argument("--parent", action="append", type=Path, metavar="FILE",
                        help="parent structure file (CIF, POSCAR, JSON, extxyz); repeatable")
    source.add_argument("--from-dataset", choices=DATASETS,
                        help="take parents from a shared dataset (shuffled by --seed)")
    saps.add_argument("--max-parents", type=int, default=50,
                      help="parents taken from --from-dataset (default 50)")
    saps.add_argument("--threshold", type=float, default=0.005,
                      help="min substitution probability P(new|old) (default 0.005)")
    saps.add_argument("--max-moves", type=int, default=2,
                      help="orbits changed at once (default 2)")
    saps.add_argument("--no-partial", action="store_true",
                      help="only substitute whole orbits")
    saps.add_argument("--max-per-parent", type=int, default=200,
                      help="most likely outcomes kept per parent (default 200)")
    _common(saps)
    saps.set_defaults(func=cmd_saps)

    airss = methods.add_parser(
        "airss", help="random symmetric crystals for a composition",
        description=AIRSS_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    airss.add_argument("--composition", action="append", required=True,
                       help="formula, e.g. SrTiO3; repeatable")
    airss.add_argument("--formula-units", default="1-2",
                       help="formula units per cell: N, N-M or N,M,... (default 1-2)")
    airss.add_argument("--space-groups", default=None,
                       help="only these space groups, e.g. 221,99 (default: all compatible)")
    _common(airss)
    airss.set_defaults(func=cmd_airss)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--n", type=int, default=100, help="candidates wanted (default 100)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--known", default="auto",
                        help="drop candidates equal to structures in these datasets: "
                             "comma list of perovskites,mp; 'none'; 'auto' = the parents' "
                             "dataset for saps, none for airss (default auto)")
    parser.add_argument("--workers", type=int, default=1, help="processes (default 1)")
    parser.add_argument("-o", "--output", type=Path, required=True,
                        help="output file: .cif, .extxyz/.xyz or .json")


def _check_output(path: Path) -> None:
    if not path.name.lower().endswith((".cif", ".extxyz", ".xyz", ".json")):
        raise UserError(f"{path}: unknown output format; expected .cif, .extxyz or .json")
    if not path.parent.exists():
        raise UserError(f"{path.parent}: output directory does not exist")


def _load_dataset(name: str) -> Any:
    from materialabs import datasets

    try:
        return datasets.load_perovskites() if name == "perovskites" else \
            datasets.load_mp_formation()
    except FileNotFoundError as error:
        raise UserError(str(error)) from None


def _known_datasets(option: str, default: list[str]) -> list[str]:
    if option == "auto":
        return default
    if option == "none":
        return []
    names = [n.strip() for n in option.split(",") if n.strip()]
    unknown = [n for n in names if n not in DATASETS]
    if unknown:
        raise UserError(f"--known: unknown dataset {unknown[0]!r}; expected "
                        f"{', '.join(DATASETS)}, 'none' or 'auto'")
    return names


def _deduplicator(names: list[str], symmetry_buckets: bool = True) -> Any:
    from materialabs.generate.dedup import Deduplicator

    deduplicator = Deduplicator(symmetry_buckets=symmetry_buckets)
    for name in names:
        table = _load_dataset(name)
        deduplicator.add_known(table["crystal"], table["material_id"])
    return deduplicator


def cmd_saps(args: argparse.Namespace) -> int:
    from materialabs.crystal_io import CrystalParseError, read_crystals
    from materialabs.generate import saps

    _check_output(args.output)
    if args.n < 1 or args.max_parents < 1 or args.max_moves < 1:
        raise UserError("--n, --max-parents and --max-moves must be at least 1")
    if args.parent:
        try:
            parents = [item for path in args.parent for item in read_crystals(path)]
        except CrystalParseError as error:
            raise UserError(str(error)) from None
        known = _known_datasets(args.known, [])
    else:
        table = _load_dataset(args.from_dataset).sample(frac=1.0, random_state=args.seed)
        table = table.head(args.max_parents)
        parents = list(zip(table["material_id"], table["crystal"], strict=True))
        known = _known_datasets(args.known, [args.from_dataset])
    config = saps.SapsConfig(threshold=args.threshold, max_moves=args.max_moves,
                             partial=not args.no_partial, max_per_parent=args.max_per_parent)
    candidates, report = saps.generate(
        parents, n=args.n, seed=args.seed, config=config, deduplicator=_deduplicator(known),
        workers=args.workers, progress=sys.stderr.isatty(),
    )
    return _finish(candidates, report, args.output)


def parse_formula_units(text: str) -> tuple[int, ...]:
    try:
        if "-" in text:
            low, high = (int(x) for x in text.split("-", 1))
            units = tuple(range(low, high + 1))
        else:
            units = tuple(int(x) for x in text.split(","))
    except ValueError:
        raise UserError(f"--formula-units {text!r}: expected N, N-M or N,M,...") from None
    if not units or min(units) < 1:
        raise UserError(f"--formula-units {text!r}: expected positive whole numbers")
    return units


def cmd_airss(args: argparse.Namespace) -> int:
    from materialabs.generate import airss
    from materialabs.generate.filters import BatchReport

    _check_output(args.output)
    if args.n < 1:
        raise UserError("--n must be at least 1")
    groups = None
    if args.space_groups:
        try:
            groups = tuple(int(g) for g in args.space_groups.split(","))
        except ValueError:
            raise UserError(f"--space-groups {args.space_groups!r}: expected numbers "
                            "like 221,99") from None
        if not all(1 <= g <= 230 for g in groups):
            raise UserError(f"--space-groups {args.space_groups!r}: numbers must be 1-230")
    config = airss.AirssConfig(formula_units=parse_formula_units(args.formula_units),
                               space_groups=groups)
    deduplicator = _deduplicator(_known_datasets(args.known, []), symmetry_buckets=False)
    for composition in args.composition:  # refuse bad input before any work
        try:
            airss.parse_composition(composition)
        except ValueError as error:
            raise UserError(str(error)) from None
    candidates, report = [], BatchReport()
    batches = airss.generate_many(args.composition, args.n, args.seed, workers=args.workers,
                                  config=config, deduplicator=deduplicator,
                                  progress=sys.stderr.isatty())
    try:
        for _, found, part in batches:
            candidates += found
            report.merge(part)
    except ValueError as error:
        raise UserError(str(error)) from None
    return _finish(candidates, report, args.output)


def write_candidates(candidates: list[Any], path: Path) -> None:
    """JSON: full records with provenance; CIF/extxyz: structures named by method + id."""
    if path.name.lower().endswith(".json"):
        path.write_text(json.dumps([c.as_record() for c in candidates], indent=1))
        return
    from materialabs.crystal_io import write_crystals

    write_crystals([(f"{c.method}-{c.candidate_id[:16]}", c.crystal) for c in candidates], path)


def _finish(candidates: list[Any], report: Any, path: Path) -> int:
    write_candidates(candidates, path)
    print(f"wrote {len(candidates)} candidates to {path}", file=sys.stderr)
    print(f"batch: {report}", file=sys.stderr)
    if not candidates:
        print("no candidates passed: loosen --threshold or add parents", file=sys.stderr)
    return 0
