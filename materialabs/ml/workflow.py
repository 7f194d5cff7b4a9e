"""End-to-end steps shared by the CLI and the benchmark: data -> split -> graphs -> ensemble.

The split is the project's fixed grouped split (``materialabs.datasets.grouped_split``,
80/10/10 by rows, seed 0): no (reduced formula, space group) group appears on two sides.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from materialabs.ml.data import GraphTable, build_graph_table
from materialabs.ml.ensemble import Ensemble, train_ensemble
from materialabs.ml.graph import GraphConfig
from materialabs.ml.model import ModelConfig
from materialabs.ml.train import TrainConfig

SPLIT_FRACTIONS = (0.8, 0.1, 0.1)
SPLIT_SEED = 0


@dataclass
class SplitData:
    table: pd.DataFrame
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    source_cids: list[str]


def load_mp_splits(limit: int | None = None, seed: int = SPLIT_SEED) -> SplitData:
    """The MP formation-energy set and its fixed grouped split.

    ``limit`` keeps a random subset of that many rows *before* splitting (quick runs);
    the full set is used when it is None.
    """
    from materialabs import datasets

    table = datasets.load_mp_formation()
    if limit is not None and limit < len(table):
        keep = np.sort(np.random.default_rng(seed).choice(len(table), limit, replace=False))
        table = table.iloc[keep].reset_index(drop=True)
    train, val, test = datasets.grouped_split(table, SPLIT_FRACTIONS, seed)
    return SplitData(table, train, val, test, _source_cids())


def _source_cids() -> list[str]:
    """CID of the raw file the set is parsed from, as ``ipfs add --cid-version=1`` names it."""
    try:
        from materialabs.datasets import data_root
        from materialabs.store.cid import cid_of_file

        return [cid_of_file(data_root() / "raw" / "kdmsit_mp_cgcnn" / "mp_cgcnn_shared.csv.gz")]
    except Exception:  # the CID is provenance, not a reason to refuse training
        return []


def targets_of(table: pd.DataFrame, rows: np.ndarray, targets: tuple[str, ...]) -> np.ndarray:
    return table[list(targets)].to_numpy(dtype=np.float64)[rows]


def graphs_of(table: pd.DataFrame, rows: np.ndarray, config: GraphConfig) -> GraphTable:
    return build_graph_table(list(table["crystal"].iloc[rows]), config)


def fit(
    data: SplitData,
    model_config: ModelConfig,
    graph_config: GraphConfig,
    train_config: TrainConfig,
    n_members: int,
    workers: int = 1,
    checkpoint_dir: Path | None = None,
    log: Callable[[str], None] | None = None,
) -> tuple[Ensemble, dict[str, Any]]:
    """Train an ensemble on ``data.train`` with early stopping on ``data.val``.

    Returns the ensemble (its ``metadata`` filled with split sizes and timings) and a
    summary dict of the same facts.
    """
    log = log or (lambda message: print(message, file=sys.stderr))
    started = time.perf_counter()
    train_graphs = graphs_of(data.table, data.train, graph_config)
    val_graphs = graphs_of(data.table, data.val, graph_config)
    graph_seconds = time.perf_counter() - started
    log(f"graphs: {len(train_graphs)} train, {len(val_graphs)} validation "
        f"({graph_seconds:.0f} s)")
    ensemble, results = train_ensemble(
        train_graphs, targets_of(data.table, data.train, model_config.targets),
        val_graphs, targets_of(data.table, data.val, model_config.targets),
        model_config, graph_config, n_members, train_config, checkpoint_dir, log=log,
        workers=workers)
    summary = {
        "dataset": "materials-project-cgcnn-2018 (SOURCES.md §1, shared 85%)",
        "split": {"method": "grouped by (reduced_formula, spacegroup_number)",
                  "fractions": list(SPLIT_FRACTIONS), "seed": SPLIT_SEED,
                  "train": int(len(data.train)), "validation": int(len(data.val)),
                  "test": int(len(data.test))},
        "train_config": train_config.as_dict(),
        "members": n_members,
        "workers": workers,
        "train_wall_seconds": round(time.perf_counter() - started, 1),
        "member_epochs": [r.epochs_run for r in results],
        "member_best_epoch": [r.best_epoch + 1 for r in results],
        "member_val_mae": [r.best_val_mae for r in results],
    }
    ensemble.metadata.update(summary)
    return ensemble, summary
