"""Model bundles: deterministic bytes, identical predictions after a round trip, and refusal
of anything tampered with or holding more than tensors."""

from __future__ import annotations

import io
import json
import pickle
import tarfile

import numpy as np
import pytest
import torch

from materialabs.ml.bundle import (
    BundleError,
    ensemble_from_bundle,
    ensemble_to_bundle,
    read_manifest,
)
from materialabs.ml.data import build_graph_table
from materialabs.ml.ensemble import train_ensemble
from materialabs.ml.graph import GraphConfig
from materialabs.ml.model import ModelConfig
from materialabs.ml.train import TrainConfig

GRAPH = GraphConfig(cutoff_angstrom=5.0, max_neighbors=8)
MODEL = ModelConfig(hidden=16, num_layers=2, num_gaussians=16, cutoff_angstrom=5.0)


@pytest.fixture
def trained(tiny_dataset):
    crystals, targets = tiny_dataset
    graphs = build_graph_table(crystals, GRAPH, progress=False)
    ensemble, _ = train_ensemble(graphs, targets, graphs, targets, MODEL, GRAPH, n_members=2,
                                 config=TrainConfig(epochs=2, batch_size=4),
                                 log=lambda _: None)
    return ensemble, crystals


def test_round_trip_gives_identical_predictions(trained) -> None:
    ensemble, crystals = trained
    blob = ensemble_to_bundle(ensemble, ["bafkreitestcid"])
    loaded = ensemble_from_bundle(blob)
    before, after = ensemble.predict(crystals), loaded.predict(crystals)
    assert np.array_equal(before.mean, after.mean)
    assert np.array_equal(before.std, after.std)
    assert loaded.sigma_scale == ensemble.sigma_scale
    manifest = read_manifest(blob)
    assert manifest["training_data_cids"] == ["bafkreitestcid"]
    assert manifest["units"] == {"formation_energy_per_atom": "eV/atom", "band_gap": "eV"}


def test_bundle_bytes_are_deterministic(trained) -> None:
    ensemble, _ = trained
    assert ensemble_to_bundle(ensemble, ["x"]) == ensemble_to_bundle(ensemble, ["x"])
    reloaded = ensemble_from_bundle(ensemble_to_bundle(ensemble, ["x"]))
    assert ensemble_to_bundle(reloaded, ["x"]) == ensemble_to_bundle(ensemble, ["x"])


def _entries(blob: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(blob)) as archive:
        return {m.name: archive.extractfile(m).read() for m in archive}


def _tar(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_a_flipped_weight_byte_is_refused(trained) -> None:
    entries = _entries(ensemble_to_bundle(trained[0]))
    weights = bytearray(entries["member-00.pt"])
    weights[-200] ^= 0x01
    entries["member-00.pt"] = bytes(weights)
    with pytest.raises(BundleError, match="member-00.pt: SHA-256 differs"):
        ensemble_from_bundle(_tar(entries))


class _Exploit:
    """Unpickling this would create a file: proof that code ran."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_pickled_object_is_refused_even_with_matching_hashes(trained, tmp_path) -> None:
    import hashlib

    marker = tmp_path / "code-ran"
    entries = _entries(ensemble_to_bundle(trained[0]))
    payload = io.BytesIO()
    torch.save({"embedding.weight": _Exploit(str(marker))}, payload)
    entries["member-00.pt"] = payload.getvalue()
    manifest = json.loads(entries["manifest.json"])
    manifest["files"]["member-00.pt"] = hashlib.sha256(payload.getvalue()).hexdigest()
    entries["manifest.json"] = json.dumps(manifest).encode()
    with pytest.raises(BundleError, match="refused"):
        ensemble_from_bundle(_tar(entries))
    assert not marker.exists()


def test_a_raw_pickle_instead_of_a_bundle_is_refused(tmp_path) -> None:
    marker = tmp_path / "code-ran"
    with pytest.raises(BundleError, match="not an uncompressed tar"):
        ensemble_from_bundle(pickle.dumps(_Exploit(str(marker))))
    assert not marker.exists()


def test_unexpected_entries_and_missing_files_are_refused(trained) -> None:
    entries = _entries(ensemble_to_bundle(trained[0]))
    with pytest.raises(BundleError, match="expected manifest.json or member-NN.pt"):
        ensemble_from_bundle(_tar({**entries, "../evil.py": b"print(1)"}))
    del entries["member-01.pt"]
    with pytest.raises(BundleError, match="files: lists"):
        ensemble_from_bundle(_tar(entries))


def test_weights_of_another_shape_are_refused(trained) -> None:
    blob = ensemble_to_bundle(trained[0])
    entries = _entries(blob)
    manifest = json.loads(entries["manifest.json"])
    manifest["model_config"]["hidden"] = 24
    entries["manifest.json"] = json.dumps(manifest).encode()
    with pytest.raises(BundleError, match="do not fit the model config"):
        ensemble_from_bundle(_tar(entries))
