"""The ``mlip`` DFT backend: MP-scale formation energies, timeouts, output, registration."""

from __future__ import annotations

import json

import pytest

from materialabs.acquisition.stability import MP_SCALE, HullReference, KnownPhase
from materialabs.dft import make_backend
from materialabs.dft.base import DftBackend, DftStatus
from materialabs.dft.mlip import MlipBackend, MlipSettings
from tests.mlip.test_potential import distorted


@pytest.fixture(scope="module")
def backend() -> MlipBackend:
    return MlipBackend(MlipSettings(potential="chgnet"))


@pytest.mark.parametrize("fixture", ["nacl", "mgo"])
def test_formation_energy_within_0_1_eV_per_atom_of_mp(backend, fixture, request):
    crystal, label = request.getfixturevalue(fixture)
    result = backend.run(distorted(crystal), timeout_s=120)
    assert result.status is DftStatus.OK, result.message
    assert result.formation_energy_per_atom_eV == pytest.approx(label, abs=0.1)
    assert result.band_gap_eV is None and result.num_atoms == 2
    document = json.loads(result.output)
    assert document["energy_scale"] == result.energy_scale == MP_SCALE
    assert document["total_energy_eV"] == result.total_energy_eV
    assert len(document["relaxed_crystal"]["species"]) == 2


def test_its_energies_share_the_mp_hull_and_other_scales_are_refused(backend, nacl):
    result = backend.run(nacl[0], timeout_s=120)
    hull = HullReference([KnownPhase("NaCl", nacl[1])])
    assert backend.energy_scale == hull.scale == MP_SCALE
    e_hull = hull.e_above_hull("NaCl", result.formation_energy_per_atom_eV,
                               scale=backend.energy_scale)
    assert abs(e_hull) < 0.1
    assert hull.e_above_hull_of("NaCl", result) == pytest.approx(e_hull)  # the result's label
    with pytest.raises(ValueError, match="cannot share a hull"):
        hull.e_above_hull("NaCl", result.formation_energy_per_atom_eV, scale="gpaw-quick")


def test_timeout_is_reported_not_raised(backend, nacl):
    result = backend.run(distorted(nacl[0], strain=0.08), timeout_s=1e-9)
    assert result.status is DftStatus.TIMEOUT
    assert result.formation_energy_per_atom_eV is None
    assert "time limit" in result.message


def test_bad_structure_and_unknown_element_are_failed_not_raised(backend):
    from materialabs.crystals import Crystal

    squashed = Crystal.from_arrays([[1, 0, 0], [0, 1, 0], [0, 0, 0.01]], ["Na"], [[0, 0, 0]])
    assert backend.run(squashed).status is DftStatus.FAILED
    og = Crystal.from_arrays([[5, 0, 0], [0, 5, 0], [0, 0, 5]], ["Og"], [[0, 0, 0]])
    result = backend.run(og, timeout_s=60)
    assert result.status is DftStatus.FAILED and result.message


def test_registered_by_name_and_unknown_potential_refused():
    assert isinstance(make_backend("mlip"), DftBackend)
    assert make_backend("mlip").name == "mlip"
    with pytest.raises(ValueError, match="chgnet"):
        make_backend("mlip", potential="nope")


def test_dft_run_cli_and_campaign_accept_mlip(tmp_path, capsys, nacl):
    from materialabs.campaign import BACKENDS
    from materialabs.cli import main
    from materialabs.crystal_io import write_crystals

    assert "mlip" in BACKENDS
    path = tmp_path / "nacl.json"
    write_crystals([("NaCl", nacl[0])], path)
    assert main(["dft", "run", str(path), "--backend", "mlip", "--potential", "chgnet",
                 "--json"]) == 0
    record = json.loads(capsys.readouterr().out.strip())
    assert record["backend"] == "mlip" and record["status"] == "ok"
    assert record["formation_energy_per_atom_eV"] == pytest.approx(nacl[1], abs=0.1)
