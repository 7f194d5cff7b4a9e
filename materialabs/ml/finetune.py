"""Warm-start retraining: an ensemble plus new DFT labels in, a candidate successor out.

Each member continues from its own weights with the parent's normaliser (a new
normaliser would silently shift what the old weights mean). New examples are mixed with
a fixed sample of the original training set so a few new labels do not make the model
forget the rest of chemistry. The caller decides whether the successor is published.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from materialabs.crystals import Crystal
from materialabs.ml.data import build_graph_table
from materialabs.ml.ensemble import Ensemble, fit_sigma_scale
from materialabs.ml.model import CrystalGNN
from materialabs.ml.train import TrainConfig, train_model


def mae(ensemble: Ensemble, crystals: Sequence[Crystal], targets: np.ndarray) -> np.ndarray:
    """Per-target mean absolute error (physical units) of ``ensemble`` on a labelled set."""
    prediction = ensemble.predict(list(crystals))
    return np.nanmean(np.abs(prediction.mean - targets), axis=0)


def fine_tune(ensemble: Ensemble, new_crystals: Sequence[Crystal], new_targets: np.ndarray,
              replay_crystals: Sequence[Crystal], replay_targets: np.ndarray,
              val_crystals: Sequence[Crystal], val_targets: np.ndarray,
              epochs: int = 4, seed: int = 0, learning_rate: float = 1e-3) -> Ensemble:
    graphs_config = ensemble.graph_config
    crystals = list(new_crystals) + list(replay_crystals)
    targets = np.concatenate([np.asarray(new_targets, float), np.asarray(replay_targets, float)])
    train_graphs = build_graph_table(crystals, graphs_config)
    val_graphs = build_graph_table(list(val_crystals), graphs_config)
    members = []
    for k, member in enumerate(ensemble.members):
        config = TrainConfig(epochs=epochs, batch_size=64, learning_rate=learning_rate,
                             patience=epochs, seed=seed + k, device="cpu")
        result = train_model(train_graphs, targets, val_graphs, val_targets,
                             ensemble.model_config, ensemble.normaliser, config,
                             init_state=copy.deepcopy(member.state_dict()), log=lambda _: None)
        successor = CrystalGNN(ensemble.model_config)
        successor.load_state_dict(result.state_dict)
        members.append(successor.eval())
    tuned = replace(ensemble, members=members, metadata=dict(ensemble.metadata))
    if len(members) > 1:
        tuned.sigma_scale = fit_sigma_scale(tuned.predict_graphs(val_graphs), val_targets)
    return tuned
