"""Inference flushes subnormal floats to zero (speed), without changing any prediction."""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
import torch

from materialabs.ml import ensemble as ensemble_module
from materialabs.ml.bundle import load_bundle_file
from materialabs.ml.data import build_graph_table

SUBNORMAL = 1e-39  # below float32's smallest normal number (1.18e-38)
DEFAULT_MODEL = next((Path(ensemble_module.__file__).parent / "default_model").glob("*.tar"))


def test_flushing_is_on_inside_and_off_again_after() -> None:
    tiny = torch.tensor([SUBNORMAL], dtype=torch.float32)
    assert (tiny * 1.0).item() != 0.0
    with ensemble_module.denormals_flushed():
        assert (tiny * 1.0).item() == 0.0
    assert (tiny * 1.0).item() != 0.0


def test_shipped_model_predicts_bitwise_the_same_with_and_without_flushing(
        tiny_dataset, monkeypatch) -> None:
    crystals, _ = tiny_dataset
    ensemble = load_bundle_file(DEFAULT_MODEL)
    graphs = build_graph_table(crystals, ensemble.graph_config, progress=False)
    batch = graphs.batch(np.arange(len(graphs)))
    features = ensemble.members[0].distance_expansion(batch.padded().dist)
    assert ((features > 0) & (features < 1.1754944e-38)).any(), "no subnormal to flush"
    flushed = ensemble.predict_graphs(graphs, batch_size=4)
    monkeypatch.setattr(ensemble_module, "denormals_flushed", contextlib.nullcontext)
    plain = ensemble.predict_graphs(graphs, batch_size=4)
    np.testing.assert_array_equal(flushed.members, plain.members)
    np.testing.assert_array_equal(flushed.std, plain.std)
