"""`materialabs predict`: files in, a table of mean ± σ out; clear errors for bad input."""

from __future__ import annotations

import json

import pytest

from materialabs.cli import main
from materialabs.crystal_io import write_crystals
from materialabs.ml.bundle import ensemble_to_bundle, save_bundle
from materialabs.ml.data import build_graph_table
from materialabs.ml.ensemble import train_ensemble
from materialabs.ml.graph import GraphConfig
from materialabs.ml.model import ModelConfig
from materialabs.ml.train import TrainConfig


@pytest.fixture
def bundle_path(tiny_dataset, tmp_path):
    crystals, targets = tiny_dataset
    graph = GraphConfig(cutoff_angstrom=5.0, max_neighbors=8)
    model = ModelConfig(hidden=16, num_layers=1, num_gaussians=8, cutoff_angstrom=5.0)
    graphs = build_graph_table(crystals, graph, progress=False)
    ensemble, _ = train_ensemble(graphs, targets, graphs, targets, model, graph, n_members=2,
                                 config=TrainConfig(epochs=1, batch_size=4),
                                 log=lambda _: None)
    path = tmp_path / "model.tar"
    save_bundle(ensemble_to_bundle(ensemble), path)
    return path


def test_predict_prints_one_row_per_structure(bundle_path, tiny_dataset, tmp_path,
                                              capsys) -> None:
    crystals, _ = tiny_dataset
    write_crystals([("first", crystals[0]), ("second", crystals[1])], tmp_path / "two.json")
    write_crystals([("third", crystals[2])], tmp_path / "third.cif")
    code = main(["predict", str(tmp_path / "two.json"), str(tmp_path / "third.cif"),
                 "--model", str(bundle_path), "--format", "json"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["units"] == {"formation_energy_per_atom": "eV/atom", "band_gap": "eV"}
    assert len(out["predictions"]) == 3
    assert all(row["band_gap_std"] >= 0 for row in out["predictions"])

    assert main(["predict", str(tmp_path / "third.cif"), "--model", str(bundle_path)]) == 0
    table = capsys.readouterr().out.splitlines()
    assert "formation_energy_per_atom (eV/atom)" in table[0]
    assert "±" in table[1]


def test_predict_reports_a_bad_file_in_one_line(bundle_path, tmp_path, capsys) -> None:
    bad = tmp_path / "broken.cif"
    bad.write_text("data_x\n_cell_length_a 3\n")
    assert main(["predict", str(bad), "--model", str(bundle_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "broken.cif" in err and len(err.splitlines()) == 1


def test_predict_refuses_a_model_that_is_not_a_bundle(tmp_path, tiny_dataset, capsys) -> None:
    crystals, _ = tiny_dataset
    write_crystals([("x", crystals[0])], tmp_path / "x.json")
    fake = tmp_path / "model.tar"
    fake.write_bytes(b"\x80\x04K\x01.")  # a pickle, not a bundle
    assert main(["predict", str(tmp_path / "x.json"), "--model", str(fake)]) == 2
    assert "not an uncompressed tar" in capsys.readouterr().err
