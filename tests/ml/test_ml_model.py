"""The network can learn: it overfits a tiny set; training is seeded and reproducible."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from materialabs.ml.data import build_graph_table
from materialabs.ml.ensemble import fit_sigma_scale, train_ensemble
from materialabs.ml.graph import GraphConfig
from materialabs.ml.model import CrystalGNN, ModelConfig, Normaliser
from materialabs.ml.train import TrainConfig, mae_per_target, train_model

GRAPH = GraphConfig(cutoff_angstrom=5.0, max_neighbors=8)
MODEL = ModelConfig(hidden=32, num_layers=2, num_gaussians=20, cutoff_angstrom=5.0)


@pytest.mark.slow
def test_model_overfits_a_tiny_set(tiny_dataset) -> None:
    crystals, targets = tiny_dataset
    graphs = build_graph_table(crystals, GRAPH, progress=False)
    normaliser = Normaliser.fit(targets)
    before = CrystalGNN(MODEL)
    start_mae = mae_per_target(before, graphs, targets, normaliser, torch.device("cpu"))
    config = TrainConfig(epochs=300, batch_size=8, learning_rate=5e-3, patience=300, seed=1)
    result = train_model(graphs, targets, graphs, targets, MODEL, normaliser, config,
                         log=lambda _: None)
    trained = CrystalGNN(MODEL)
    trained.load_state_dict(result.state_dict)
    final_mae = mae_per_target(trained, graphs, targets, normaliser, torch.device("cpu"))
    # Labels span ~3.5 eV/atom and ~4 eV; "near zero" = below 0.05 in both units.
    assert max(final_mae) < 0.05, (start_mae, final_mae)
    assert max(start_mae) > 0.3


def test_training_is_seeded(tiny_dataset) -> None:
    crystals, targets = tiny_dataset
    graphs = build_graph_table(crystals, GRAPH, progress=False)
    normaliser = Normaliser.fit(targets)
    config = TrainConfig(epochs=3, batch_size=4, seed=5)
    runs = [train_model(graphs, targets, graphs, targets, MODEL, normaliser, config,
                        log=lambda _: None) for _ in range(2)]
    for name, tensor in runs[0].state_dict.items():
        assert torch.equal(tensor, runs[1].state_dict[name]), name


def test_checkpoints_are_written_and_load_safely(tiny_dataset, tmp_path) -> None:
    from materialabs.ml.train import load_checkpoint

    crystals, targets = tiny_dataset
    graphs = build_graph_table(crystals, GRAPH, progress=False)
    result = train_model(graphs, targets, graphs, targets, MODEL, Normaliser.fit(targets),
                         TrainConfig(epochs=2, batch_size=4, seed=2), tmp_path,
                         log=lambda _: None)
    best = load_checkpoint(tmp_path / "seed2-best.pt")
    assert best.keys() == result.state_dict.keys()
    assert (tmp_path / "seed2-last.pt").is_file()


def test_ensemble_gives_mean_and_sigma_per_target(tiny_dataset) -> None:
    crystals, targets = tiny_dataset
    graphs = build_graph_table(crystals, GRAPH, progress=False)
    ensemble, results = train_ensemble(graphs, targets, graphs, targets, MODEL, GRAPH,
                                       n_members=3, config=TrainConfig(epochs=2, batch_size=4),
                                       log=lambda _: None)
    prediction = ensemble.predict(crystals)
    assert prediction.mean.shape == prediction.std.shape == (8, 2)
    assert prediction.members.shape == (3, 8, 2)
    assert np.allclose(prediction.mean, prediction.members.mean(axis=0))
    assert (prediction.std_raw[:, 0] > 0).all()  # differently seeded members disagree
    assert (prediction.members[:, :, 1] >= 0).all()  # band gaps are never negative
    assert len(ensemble.sigma_scale) == 2
    rows = prediction.rows([f"c{i}" for i in range(8)])
    assert set(rows[0]) == {"name", "formation_energy_per_atom_mean",
                            "formation_energy_per_atom_std", "band_gap_mean", "band_gap_std"}


def test_sigma_scale_reaches_nominal_coverage_on_the_fitting_set() -> None:
    from materialabs.ml.ensemble import Prediction

    rng = np.random.default_rng(0)
    truth = rng.normal(size=(2000, 1))
    std_raw = np.full((2000, 1), 0.25)  # 4x over-confident
    prediction = Prediction(("formation_energy_per_atom",), np.zeros((2000, 1)), std_raw,
                            std_raw, np.zeros((2, 2000, 1)))
    (scale,) = fit_sigma_scale(prediction, truth)
    assert 3.6 < scale < 4.4
