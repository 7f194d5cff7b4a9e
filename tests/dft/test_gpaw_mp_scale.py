"""GPAW on the campaign's scale: bounded cell + positions relaxation, and formation energies
on the Materials Project's scale through chemical potentials fitted at the same settings
(materialabs/dft/gpaw_references.py, table in gpaw_mp_references.json).

The fit itself and the hull's refusal of other scales are checked without GPAW; the real
runs are 2-atom cells at quick settings (seconds each)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from ase.build import bulk

from materialabs.acquisition.stability import MP_SCALE, HullReference, KnownPhase
from materialabs.crystals import Crystal
from materialabs.dft import DftStatus
from materialabs.dft.base import DftResult
from materialabs.dft.gpaw import (
    ElementalReferences,
    GpawBackend,
    GpawSettings,
    gpaw_scale,
    relaxed_crystal,
)
from materialabs.dft.gpaw_references import (
    FIT_COMPOUNDS,
    FIT_ELEMENTS,
    FitPoint,
    MissingElement,
    MissingTable,
    MpScaleReferences,
    fit_potentials,
    fit_table,
    formation_energy_per_atom,
    load_tables,
)

# campaigns/perovskite-oxides.toml less La (Debian's gpaw-data has no La setup)
CAMPAIGN_ELEMENTS = {"Li", "Na", "K", "Mg", "Ca", "Sr", "Ba", "Y", "Ti", "Zr", "Hf", "V",
                     "Nb", "Ta", "Al", "Ga", "In", "Sn", "O"}
MP_NACL_A = 5.69  # mp-22862's conventional lattice constant (PBE), Å


def crystal_of(atoms) -> Crystal:
    return Crystal.from_arrays(atoms.cell.array, atoms.get_chemical_symbols(),
                               atoms.get_scaled_positions())


def point(formula_species: list[str], mu: dict[str, float], e_f: float,
          name: str = "x") -> FitPoint:
    total = sum(mu[s] for s in formula_species) + e_f * len(formula_species)
    return FitPoint(name, name, tuple(formula_species), e_f, total, 0.0)


# -- the fit, no GPAW ------------------------------------------------------------------------

MU = {"Mg": -1.3, "Ca": -1.4, "O": 4.2, "Na": -1.1}


def test_the_fit_recovers_the_potentials_that_made_the_energies():
    points = [point(["Mg"], MU, 0.0), point(["Ca"], MU, 0.0), point(["Na"], MU, 0.0),
              point(["Mg", "O"], MU, -3.0), point(["Ca", "O"], MU, -3.3),
              point(["Na", "Na", "O"], MU, -1.45)]
    fitted = fit_potentials(points)
    assert fitted == pytest.approx(MU, abs=1e-9)
    table = fit_table(points, GpawSettings.quick())
    assert table["loo_rms_eV_per_atom"] == pytest.approx(0.0, abs=1e-9)
    assert table["loo_compounds"] == 3 and table["scale"] == MP_SCALE


def test_leave_one_out_sees_an_inconsistent_compound_that_the_fit_hides():
    # MgO 0.3 eV/atom off what the other phases imply: its LOO error shows the full offset
    points = [point(["Mg"], MU, 0.0), point(["Ca"], MU, 0.0), point(["Na"], MU, 0.0),
              point(["Mg", "O"], MU, -3.0), point(["Ca", "O"], MU, -3.3),
              point(["Na", "Na", "O"], MU, -1.45)]
    shifted = FitPoint("mgo", "MgO", ("Mg", "O"), -3.3, points[3].gpaw_energy_eV, 0.0)
    table = fit_table([*points[:3], shifted, *points[4:]], GpawSettings.quick())
    row = next(r for r in table["phases"] if r["material_id"] == "mgo")
    assert abs(row["loo_residual_eV_per_atom"]) > abs(row["residual_eV_per_atom"])
    assert row["loo_residual_eV_per_atom"] == pytest.approx(0.3, abs=0.05)


def test_an_undetermined_element_is_named():
    # O appears only together with Mg, whose own phase is missing: Mg and O are not fixed
    with pytest.raises(ValueError, match="Mg, O"):
        fit_potentials([point(["Mg", "O"], MU, -3.0), point(["Ca"], MU, 0.0)])


def test_an_element_missing_from_the_table_is_named():
    with pytest.raises(MissingElement, match="no fitted MP-scale chemical potential for As, Ge"):
        formation_energy_per_atom(["Ga", "As", "Ge"], -10.0, {"Ga": -1.0})


def test_the_stored_quick_table_covers_the_demo_chemistry_with_a_stated_residual():
    entry = load_tables()[GpawSettings.quick().key()]
    assert set(entry["mu_eV_per_atom"]) >= CAMPAIGN_ELEMENTS
    assert entry["scale"] == MP_SCALE
    assert GpawSettings(**entry["settings"]) == GpawSettings.quick()
    assert entry["loo_compounds"] >= 12
    assert 0.0 < entry["loo_rms_eV_per_atom"] < 0.3
    ids = {row["material_id"] for row in entry["phases"]}
    assert ids == set(FIT_COMPOUNDS + FIT_ELEMENTS)


def test_settings_without_a_table_are_refused_with_the_command():
    with pytest.raises(MissingTable, match="gpaw_references fit"):
        MpScaleReferences(GpawSettings(ecut_eV=321.0))


def test_keys_of_the_settings_before_relax_cell_are_unchanged():
    # the cached elemental references of existing installs are keyed by these
    assert GpawSettings.quick().key() == "ad7adaa2ce95554e"
    assert GpawSettings().key() == "9310251c24014fa1"
    assert GpawSettings.quick_relaxed().key() != GpawSettings.quick().key()


# -- one hull, one scale ------------------------------------------------------------------

def _result(scale: str, energy: float = -3.0) -> DftResult:
    return DftResult(status=DftStatus.OK, backend="gpaw", formation_energy_per_atom_eV=energy,
                     energy_scale=scale)


def test_the_hull_takes_mp_scale_gpaw_and_refuses_gpaw_own_scale_and_unlabelled():
    hull = HullReference([KnownPhase("MgO", -3.0, "mp-1265")])
    assert hull.e_above_hull_of("MgO", _result(MP_SCALE, -2.9)) == pytest.approx(0.1)
    with pytest.raises(ValueError, match="cannot share a hull"):
        hull.e_above_hull_of("MgO", _result(gpaw_scale(GpawSettings.quick())))
    with pytest.raises(ValueError, match="states no energy scale"):
        hull.e_above_hull_of("MgO", _result(""))


# -- real GPAW ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def gpaw_ok():
    probe = subprocess.run([sys.executable, "-c", "import gpaw, _gpaw"], capture_output=True,
                           text=True, check=False)
    assert probe.returncode == 0, "GPAW is not importable: bash infra/gpaw/install.sh"


@pytest.mark.slow  # about 5 CPU-s, over 10 s wall on the loaded machine
def test_relaxation_lowers_the_energy_of_strained_nacl_towards_mps_cell(gpaw_ok, tmp_path):
    settings = GpawSettings.quick_relaxed()
    backend = GpawBackend(settings, references=ElementalReferences(settings, tmp_path),
                          with_formation_energy=False)
    strained = bulk("NaCl", "rocksalt", a=MP_NACL_A * 0.96)
    result = backend.run(crystal_of(strained), timeout_s=120)
    assert result.status is DftStatus.OK, result.message
    relaxation = json.loads(result.output)["result"]["relaxation"]
    assert relaxation["cell_relaxed"] and relaxation["converged"]
    assert result.total_energy_eV < relaxation["initial_energy_eV"] - 0.01
    relaxed = relaxed_crystal(result)
    assert relaxed is not None
    mp_volume = MP_NACL_A ** 3 / 4
    assert abs(relaxed.volume_angstrom3 - mp_volume) < abs(strained.get_volume() - mp_volume) / 2
    lengths = np.linalg.norm(relaxed.lattice_array, axis=1)
    assert np.ptp(lengths) < 1e-3  # still the fcc primitive cell: symmetry kept
    assert "relaxed (cell + positions)" in result.message


def test_a_cell_over_the_relaxation_cap_is_a_single_point_saying_so(gpaw_ok, tmp_path):
    from dataclasses import replace

    settings = replace(GpawSettings.quick_relaxed(), relax_max_sites=1)
    backend = GpawBackend(settings, references=ElementalReferences(settings, tmp_path),
                          with_formation_energy=False)
    result = backend.run(crystal_of(bulk("NaCl", "rocksalt", a=5.64)), timeout_s=120)
    assert result.status is DftStatus.OK, result.message
    assert "over the relaxation cap of 1" in result.message
    assert relaxed_crystal(result) is None


@pytest.mark.slow  # one 2-atom single point and the MP table: about 10 s on the loaded machine
def test_mp_scale_nacl_reproduces_mps_value_within_the_stated_residual(gpaw_ok, tmp_path):
    from materialabs.datasets import load_mp_formation

    row = load_mp_formation().set_index("material_id").loc["mp-22862"]  # NaCl, in the fit
    settings = GpawSettings.quick()
    backend = GpawBackend(settings, references=ElementalReferences(settings, tmp_path),
                          energy_scale="mp")
    result = backend.run(row["crystal"], timeout_s=120)
    assert result.status is DftStatus.OK, result.message
    assert result.energy_scale == MP_SCALE
    stated = backend.mp_references.entry["loo_max_abs_eV_per_atom"]
    assert result.formation_energy_per_atom_eV == pytest.approx(
        row["formation_energy_per_atom"], abs=stated)
    assert "MP's scale" in result.message


def test_a_compound_with_an_element_outside_the_table_fails_naming_it(tmp_path):
    settings = GpawSettings.quick()
    backend = GpawBackend(settings, references=ElementalReferences(settings, tmp_path),
                          energy_scale="mp")
    result = backend.run(crystal_of(bulk("GaAs", "zincblende", a=5.65)), timeout_s=60)
    assert result.status is DftStatus.FAILED
    assert "no fitted MP-scale chemical potential for As" in result.message
    assert result.formation_energy_per_atom_eV is None and result.energy_scale == ""
