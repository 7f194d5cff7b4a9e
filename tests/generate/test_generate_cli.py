from __future__ import annotations

import json

import pytest
from gen_parents import perovskite

from materialabs.cli import main
from materialabs.crystal_io import read_crystals
from materialabs.generate.candidate import Candidate


@pytest.fixture
def parent_cif(tmp_path):
    path = tmp_path / "SrTiO3.cif"
    perovskite().to_structure().to(filename=str(path))
    return path


def test_saps_json_has_provenance(parent_cif, tmp_path):
    out = tmp_path / "out.json"
    assert main(["generate", "saps", "--parent", str(parent_cif), "--n", "7", "--seed", "3",
                 "-o", str(out)]) == 0
    records = json.loads(out.read_text())
    assert len(records) == 7
    for record in records:
        candidate = Candidate.from_record(record)
        assert candidate.candidate_id == record["candidate_id"]
        assert candidate.parent_ids == ("SrTiO3",)
        assert record["method"] == "saps" and record["seed"] == 3
        assert record["params"]["substitutions"]


@pytest.mark.parametrize("suffix", ["cif", "extxyz"])
def test_structures_round_trip_through_files(parent_cif, tmp_path, suffix):
    out = tmp_path / f"out.{suffix}"
    assert main(["generate", "saps", "--parent", str(parent_cif), "--n", "4",
                 "-o", str(out)]) == 0
    if suffix == "cif":  # crystal_io.read_crystals reads only a CIF's first data block
        from pymatgen.io.cif import CifParser

        structures = CifParser(str(out)).parse_structures(primitive=False)
    else:
        structures = list(read_crystals(out))
    assert len(structures) == 4


def test_airss_command(tmp_path):
    out = tmp_path / "a.json"
    assert main(["generate", "airss", "--composition", "SrTiO3", "--formula-units", "1",
                 "--n", "3", "--seed", "2", "-o", str(out)]) == 0
    assert len(json.loads(out.read_text())) == 3


@pytest.mark.parametrize("argv, message", [
    (["saps", "--parent", "missing.cif", "--n", "2", "-o", "x.json"], "no such file"),
    (["saps", "--parent", "p.cif", "-o", "x.txt"], "unknown output format"),
    (["airss", "--composition", "NaTiO3", "-o", "x.json"], "not charge balanced"),
    (["airss", "--composition", "SrTiO3", "--formula-units", "two", "-o", "x.json"],
     "--formula-units"),
])
def test_user_mistakes_are_one_clear_line(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["generate", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
