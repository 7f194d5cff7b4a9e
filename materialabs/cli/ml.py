"""`materialabs train`, `materialabs predict`, `materialabs evaluate`: the crystal GNN ensemble."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from materialabs.cli import UserError

DEFAULT_BUNDLE = Path(__file__).resolve().parents[1] / "ml" / "default_model" / \
    "mp-formation-ensemble.tar"

TRAIN_HELP = """\
Train a deep ensemble of crystal graph networks on the Materials Project formation-energy
set (../shared/data, SOURCES.md §1) for formation energy per atom (eV/atom) and band gap
(eV). The split is fixed: grouped by (reduced formula, space group), 80/10/10 by rows,
seed 0; early stopping uses the validation part, the test part is left for `evaluate`.
Writes one model bundle (weights + config + normaliser + training-data CIDs) and prints
its CID.

examples:
  materialabs train --out run/model.tar                         # the shipped default
  materialabs train --limit 2000 --members 2 --epochs 5 --out run/quick.tar
"""

PREDICT_HELP = """\
Predict formation energy per atom (eV/atom) and band gap (eV), mean ± σ over the ensemble,
for each structure in FILE (CIF, POSCAR/CONTCAR/.vasp, pymatgen or Crystal-record JSON,
extxyz). Uses the shipped default model unless --model is given. Files are read and
checked as `materialabs upload` reads them (docs/labs.md lists the limits).

examples:
  materialabs predict NaCl.cif POSCAR
  materialabs predict candidates.json --format csv > predictions.csv
"""

EVALUATE_HELP = """\
Evaluate a model bundle on the fixed grouped test split: MAE, RMSE, R² per target,
calibration (Spearman rank correlation of |error| with σ; coverage of the nominal 90%
interval with raw and validation-fitted σ), and a parity plot and calibration plot (PNG).

examples:
  materialabs evaluate                                  # the shipped default model
  materialabs evaluate --model run/model.tar --plots reports/ml
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    _register_train(subparsers)
    _register_predict(subparsers)
    _register_evaluate(subparsers)


def _register_train(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("train", help="train the GNN ensemble on MP data",
                                   description=TRAIN_HELP,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="bundle file to write")
    parser.add_argument("--members", type=int, default=4, help="ensemble size (default 4)")
    parser.add_argument("--workers", type=int, default=2,
                        help="processes training members in parallel on CPU (default 2)")
    parser.add_argument("--epochs", type=int, default=100, help="max epochs per member")
    parser.add_argument("--budget-min", type=float, default=None,
                        help="wall-clock minutes per member; fixes the epoch count after the "
                             "first epoch so the schedule completes")
    parser.add_argument("--patience", type=int, default=15)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--layers", type=int, default=3)
    parser.add_argument("--cutoff", type=float, default=6.0, help="neighbour cutoff, Å")
    parser.add_argument("--max-neighbors", type=int, default=12)
    parser.add_argument("--limit", type=int, default=None,
                        help="use a random subset of this many structures (quick runs)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the first member")
    parser.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda")
    parser.add_argument("--checkpoints", type=Path, default=None,
                        help="folder for per-epoch checkpoints (best and last per member)")
    parser.set_defaults(func=run_train)


def _register_predict(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("predict", help="predict properties of structure files",
                                   description=PREDICT_HELP,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE")
    parser.add_argument("--model", type=Path, default=DEFAULT_BUNDLE,
                        help="model bundle (default: the shipped model)")
    parser.add_argument("--format", choices=("table", "csv", "json"), default="table")
    parser.set_defaults(func=run_predict)


def _register_evaluate(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("evaluate", help="test-split metrics, calibration, plots",
                                   description=EVALUATE_HELP,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=DEFAULT_BUNDLE,
                        help="model bundle (default: the shipped model)")
    parser.add_argument("--plots", type=Path, default=Path("reports/ml"),
                        help="folder for parity and calibration PNGs (default reports/ml)")
    parser.add_argument("--limit", type=int, default=None,
                        help="evaluate on the split of a random subset (as `train --limit`)")
    parser.add_argument("--json", action="store_true", help="print metrics as JSON")
    parser.set_defaults(func=run_evaluate)


def run_train(args: argparse.Namespace) -> int:
    import torch

    from materialabs.ml.bundle import ensemble_to_bundle, save_bundle
    from materialabs.ml.graph import GraphConfig
    from materialabs.ml.model import ModelConfig
    from materialabs.ml.train import TrainConfig
    from materialabs.ml.workflow import fit, load_mp_splits

    if args.members < 1 or args.epochs < 1:
        raise UserError("--members and --epochs: expected at least 1")
    try:
        graph_config = GraphConfig(args.cutoff, args.max_neighbors)
        model_config = ModelConfig(hidden=args.hidden, num_layers=args.layers,
                                   cutoff_angstrom=args.cutoff)
    except ValueError as error:
        raise UserError(str(error)) from error
    train_config = TrainConfig(
        epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.lr,
        patience=args.patience, seed=args.seed, device=args.device,
        time_budget_s=None if args.budget_min is None else args.budget_min * 60)
    torch.set_num_threads(1 if args.workers > 1 else torch.get_num_threads())
    data = load_mp_splits(args.limit)
    ensemble, summary = fit(data, model_config, graph_config, train_config, args.members,
                            args.workers, args.checkpoints)
    blob = ensemble_to_bundle(ensemble, data.source_cids)
    save_bundle(blob, args.out)
    from materialabs.store.cid import cid_of_bytes

    print(json.dumps({"bundle": str(args.out), "cid": cid_of_bytes(blob), "bytes": len(blob),
                      **summary}, indent=1))
    return 0


def run_predict(args: argparse.Namespace) -> int:
    from materialabs.crystal_io import CrystalParseError, read_crystals
    from materialabs.ml.bundle import BundleError, load_bundle_file

    names, crystals = [], []
    for path in args.files:  # the files first: a bad one is refused before the model loads
        try:
            for name, crystal in read_crystals(path):
                names.append(name)
                crystals.append(crystal)
        except CrystalParseError as error:
            raise UserError(str(error)) from None
    try:
        ensemble = load_bundle_file(args.model)
    except BundleError as error:
        raise UserError(str(error)) from error
    try:
        rows = ensemble.predict(crystals).rows(names)
    except ValueError as error:
        raise UserError(str(error)) from error
    _print_rows(rows, ensemble.units(), args.format)
    return 0


def _print_rows(rows: list[dict], units: dict[str, str], fmt: str) -> None:
    if fmt == "json":
        print(json.dumps({"units": units, "predictions": rows}, indent=1))
        return
    if fmt == "csv":
        import csv

        writer = csv.DictWriter(sys.stdout, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
        return
    headers = ["structure"] + [f"{t} ({u})" for t, u in units.items()]
    table = [[str(r["name"])] + [f"{r[f'{t}_mean']:.3f} ± {r[f'{t}_std']:.3f}" for t in units]
             for r in rows]
    widths = [max(len(h), *(len(row[i]) for row in table)) for i, h in enumerate(headers)]
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
    for row in table:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))


def run_evaluate(args: argparse.Namespace) -> int:
    from materialabs.ml.bundle import BundleError, load_bundle_file
    from materialabs.ml.evaluate import evaluate_ensemble, format_report
    from materialabs.ml.workflow import load_mp_splits

    try:
        ensemble = load_bundle_file(args.model)
    except BundleError as error:
        raise UserError(str(error)) from error
    data = load_mp_splits(args.limit)
    report = evaluate_ensemble(ensemble, data, args.plots)
    print(json.dumps(report, indent=1) if args.json else format_report(report))
    return 0
