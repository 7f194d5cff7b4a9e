"""`materialabs dft run` end to end: GPAW, replay, and user mistakes."""

from __future__ import annotations

import json

import pytest
from ase.build import bulk
from ase.io import write

from materialabs.cli import main
from materialabs.crystal_io import write_crystals


def test_gpaw_run_prints_energies_and_exits_zero(tmp_path, capsys):
    poscar = tmp_path / "Si.vasp"
    write(poscar, bulk("Si", "diamond", a=5.43), format="vasp")
    code = main(["dft", "run", str(poscar), "--quick", "--timeout", "120",
                 "--reference-cache", str(tmp_path / "refs"), "--json"])
    record = json.loads(capsys.readouterr().out.strip())
    assert code == 0, record
    assert record["status"] == "ok" and record["backend"] == "gpaw"
    assert record["total_energy_eV"] < 0
    assert abs(record["formation_energy_per_atom_eV"]) < 1e-6


def test_replay_known_and_unknown_structures(tmp_path, capsys):
    from materialabs.datasets import load_mp_formation

    row = load_mp_formation().iloc[0]
    known = tmp_path / "known.json"
    write_crystals([(row["material_id"], row["crystal"])], known)
    assert main(["dft", "run", str(known), "--backend", "replay", "--json"]) == 0
    record = json.loads(capsys.readouterr().out.strip())
    assert record["formation_energy_per_atom_eV"] == pytest.approx(
        row["formation_energy_per_atom"])

    unknown = tmp_path / "NaCl.vasp"
    write(unknown, bulk("NaCl", "rocksalt", a=5.0), format="vasp")
    assert main(["dft", "run", str(unknown), "--backend", "replay"]) == 1
    assert "no_label" in capsys.readouterr().out


def test_missing_file_and_bad_timeout_are_user_errors(tmp_path, capsys):
    assert main(["dft", "run", str(tmp_path / "nope.cif")]) == 2
    assert "no such file" in capsys.readouterr().err
    poscar = tmp_path / "Si.vasp"
    write(poscar, bulk("Si"), format="vasp")
    assert main(["dft", "run", str(poscar), "--timeout", "0"]) == 2
    assert "--timeout" in capsys.readouterr().err


def test_help_teaches_with_examples(capsys):
    with pytest.raises(SystemExit):
        main(["dft", "run", "--help"])
    out = capsys.readouterr().out
    assert "materialabs dft run NaCl.cif --backend gpaw" in out
    assert "install.sh" in out


def test_mp_scale_names_an_element_outside_the_fitted_table(tmp_path, capsys):
    poscar = tmp_path / "GaAs.vasp"
    write(poscar, bulk("GaAs", "zincblende", a=5.65), format="vasp")
    code = main(["dft", "run", str(poscar), "--quick", "--scale", "mp", "--json",
                 "--reference-cache", str(tmp_path / "refs")])
    record = json.loads(capsys.readouterr().out.strip())
    assert code == 1 and record["status"] == "failed"
    assert "no fitted MP-scale chemical potential for As" in record["message"]


def test_mp_scale_without_a_table_for_the_settings_is_a_usage_error(tmp_path, capsys):
    poscar = tmp_path / "Si.vasp"
    write(poscar, bulk("Si", "diamond", a=5.43), format="vasp")
    assert main(["dft", "run", str(poscar), "--quick", "--ecut", "321", "--scale", "mp"]) == 2
    assert "gpaw_references fit" in capsys.readouterr().err
