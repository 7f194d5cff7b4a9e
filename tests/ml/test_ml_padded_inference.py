"""The padded inference path computes the same function as the message-passing path."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from materialabs.crystals import Crystal
from materialabs.ml.data import build_graph_table
from materialabs.ml.ensemble import Ensemble
from materialabs.ml.graph import GraphConfig
from materialabs.ml.model import CrystalGNN, ModelConfig, Normaliser

# A short cutoff on a sparse cell leaves some centres with fewer than max_neighbors
# neighbours, so the table has real padding slots.
GRAPH = GraphConfig(cutoff_angstrom=4.0, max_neighbors=12)
MODEL = ModelConfig(hidden=16, num_layers=3, num_gaussians=12, cutoff_angstrom=4.0)


def _model(seed: int) -> CrystalGNN:
    torch.manual_seed(seed)
    model = CrystalGNN(MODEL)
    for conv in model.convs:  # non-trivial BatchNorm statistics, as after training
        conv.norm.running_mean.normal_()
        conv.norm.running_var.uniform_(0.5, 2.0)
    return model.eval()


def _crystals(tiny_dataset) -> list[Crystal]:
    crystals, _ = tiny_dataset
    sparse = Crystal.from_arrays(np.diag([7.0, 7.5, 9.0]), ["Na", "Cl"],
                                 np.array([[0.0, 0.0, 0.0], [0.5, 0.5, 0.5]]))
    return [*crystals, sparse]


def test_padded_forward_equals_message_passing(tiny_dataset) -> None:
    graphs = build_graph_table(_crystals(tiny_dataset), GRAPH, progress=False)
    batch = graphs.batch(np.arange(len(graphs)))
    neighbours = batch.padded()
    counts = neighbours.mask.sum(dim=(1, 2))
    assert counts.min() < counts.max(), "the test needs centres with padding"
    model = _model(3)
    with torch.no_grad():
        expected = model(batch)
        got = model.forward_padded(batch, neighbours, model.distance_expansion(neighbours.dist))
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_padded_table_holds_every_edge_once(tiny_dataset) -> None:
    graphs = build_graph_table(_crystals(tiny_dataset), GRAPH, progress=False)
    batch = graphs.batch(np.arange(len(graphs)))
    neighbours = batch.padded()
    centre, slot = torch.nonzero(neighbours.mask[..., 0], as_tuple=True)
    rebuilt = sorted(zip(neighbours.index[centre, slot].tolist(), centre.tolist(),
                         neighbours.dist[centre, slot].tolist(), strict=True))
    src, dst = batch.edge_index
    original = sorted(zip(src.tolist(), dst.tolist(), batch.edge_dist.tolist(), strict=True))
    assert rebuilt == original


def test_ensemble_prediction_matches_members_run_one_by_one(tiny_dataset) -> None:
    crystals = _crystals(tiny_dataset)
    members = [_model(seed) for seed in (1, 2, 3)]
    normaliser = Normaliser((-1.0, 1.5), (0.8, 1.2))
    ensemble = Ensemble(MODEL, GRAPH, normaliser, members)
    prediction = ensemble.predict(crystals, batch_size=4)  # several batches
    graphs = build_graph_table(crystals, GRAPH, progress=False)
    with torch.no_grad():
        one_by_one = np.stack([
            normaliser.denormalise(m(graphs.batch(np.arange(len(graphs))))).numpy()
            for m in members])
    one_by_one[:, :, 1] = np.maximum(one_by_one[:, :, 1], 0.0)  # band gap is clipped at 0
    np.testing.assert_allclose(prediction.members, one_by_one, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(prediction.mean, one_by_one.mean(axis=0), rtol=1e-5, atol=1e-5)


def test_a_table_without_padding_skips_the_mask_and_gives_the_same_bits(tiny_dataset) -> None:
    crystals, _ = tiny_dataset
    graphs = build_graph_table(list(crystals), GraphConfig(cutoff_angstrom=8.0,
                                                           max_neighbors=12), progress=False)
    batch = graphs.batch(np.arange(len(graphs)))
    neighbours = batch.padded()
    assert neighbours.full and bool((neighbours.mask == 1).all())
    model = _model(5)
    edge_attr = model.distance_expansion(neighbours.dist)
    masked = replace(neighbours, full=False)  # multiplies by the all-ones mask
    with torch.no_grad():
        skipped = model.forward_padded(batch, neighbours, edge_attr)
        multiplied = model.forward_padded(batch, masked, edge_attr)
    assert torch.equal(skipped, multiplied)


def test_a_table_with_padding_says_so(tiny_dataset) -> None:
    graphs = build_graph_table(_crystals(tiny_dataset), GRAPH, progress=False)
    assert not graphs.batch(np.arange(len(graphs))).padded().full
