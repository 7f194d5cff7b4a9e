"""Real GPAW (installed by infra/gpaw/install.sh): sane energies, right signs, timeouts.

Coarse settings (GpawSettings.quick: 250 eV, 1.5 k-points/Å⁻¹) keep each 2-atom cell to
seconds; the physics checked here does not need converged numbers.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
from ase.build import bulk

from materialabs.crystals import Crystal
from materialabs.dft import DftStatus, RetryingBackend
from materialabs.dft import gpaw as gpaw_module
from materialabs.dft.gpaw import ElementalReferences, GpawBackend, GpawSettings


def crystal_of(atoms) -> Crystal:
    return Crystal.from_arrays(atoms.cell.array, atoms.get_chemical_symbols(),
                               atoms.get_scaled_positions())


@pytest.fixture(scope="module")
def backend(tmp_path_factory) -> GpawBackend:
    probe = subprocess.run([sys.executable, "-c", "import gpaw, _gpaw"], capture_output=True,
                           text=True, check=False)
    assert probe.returncode == 0, (
        "GPAW is not importable; install it with `bash infra/gpaw/install.sh`: "
        + probe.stderr[-500:])
    settings = GpawSettings.quick()
    references = ElementalReferences(settings, tmp_path_factory.mktemp("gpaw-refs"))
    return GpawBackend(settings, references=references)


@pytest.fixture(scope="module")
def nacl(backend):
    return backend.run(crystal_of(bulk("NaCl", "rocksalt", a=5.64)), timeout_s=120)


def test_single_point_on_two_atom_silicon_is_sane(backend):
    started = time.monotonic()
    result = backend.run(crystal_of(bulk("Si", "diamond", a=5.43)), timeout_s=60)
    assert result.status is DftStatus.OK, result.message
    assert time.monotonic() - started < 60
    per_atom = result.total_energy_eV / 2
    assert -7.0 < per_atom < -3.5  # GPAW's PBE Si sits near -5.4 eV/atom
    assert 0.2 < result.band_gap_eV < 1.5  # PBE Si gap ~0.6 eV; a semiconductor, not a metal
    # Si is its own reference: the formation energy must vanish on one consistent scale
    assert result.formation_energy_per_atom_eV == pytest.approx(0.0, abs=1e-6)
    output = json.loads(result.output)
    assert output["settings"]["ecut_eV"] == 250.0 and "gpaw_log" in output


def test_rocksalt_nacl_has_negative_formation_energy_and_a_wide_gap(nacl):
    assert nacl.status is DftStatus.OK, nacl.message
    # PBE gives about -1.9 eV/atom (experiment -2.1): right sign and magnitude
    assert -3.0 < nacl.formation_energy_per_atom_eV < -1.0
    assert nacl.band_gap_eV > 3.0


def test_aluminium_is_a_metal(backend):
    result = backend.run(crystal_of(bulk("Al", "fcc", a=4.05)), timeout_s=60)
    assert result.status is DftStatus.OK, result.message
    assert result.band_gap_eV == 0.0


def test_reference_energies_are_cached_and_reused(backend, nacl, monkeypatch):
    assert nacl.status is DftStatus.OK
    for element in ("Na", "Cl"):
        entry = backend.references.cached(element)
        assert entry is not None and entry["settings"]["ecut_eV"] == 250.0
    assert backend.references.cached("Cl")["reference_kind"] == "dimer"

    def no_more_dft(*args, **kwargs):
        raise AssertionError("a cached reference was recomputed")

    monkeypatch.setattr(gpaw_module, "run_worker", no_more_dft)
    fresh = ElementalReferences(backend.settings, backend.references.directory.parent)
    assert fresh.energy_per_atom("Na") == backend.references.energy_per_atom("Na")


def test_job_over_its_time_limit_is_reported_timeout(backend):
    started = time.monotonic()
    result = backend.run(crystal_of(bulk("NaCl", "rocksalt", a=5.64)), timeout_s=0.5)
    assert result.status is DftStatus.TIMEOUT
    assert "time limit" in result.message
    assert time.monotonic() - started < 10  # killed, not waited for


def test_timeouts_are_retried_then_reported_failed(backend):
    result = RetryingBackend(backend, max_attempts=2).run(crystal_of(bulk("Si")), timeout_s=0.3)
    assert result.status is DftStatus.FAILED
    assert result.attempts == 2
    assert result.message.count("timeout") == 2


def test_a_crashing_job_is_failed_with_the_reason(backend):
    nonsense = Crystal.from_arrays([[3, 0, 0], [0, 3, 0], [0, 0, 3]], ["Qq"], [[0, 0, 0]])
    result = backend.run(nonsense, timeout_s=60)
    assert result.status is DftStatus.FAILED
    assert "Qq" in result.message


def test_settings_key_ignores_threads_but_not_physics():
    assert GpawSettings(threads=1).key() == GpawSettings(threads=2).key()
    assert GpawSettings(ecut_eV=300).key() != GpawSettings(ecut_eV=400).key()


def test_references_with_other_settings_are_refused(tmp_path):
    with pytest.raises(ValueError, match="two energy scales"):
        GpawBackend(GpawSettings(), references=ElementalReferences(GpawSettings.quick(), tmp_path))


@pytest.mark.parametrize(("symbol", "kind", "atoms"), [
    ("O", "dimer", 2), ("Cl", "dimer", 2), ("Ne", "atom", 1), ("Si", "bulk", 2),
    ("Fe", "bulk", 1), ("S", "approximate-fcc", 1), ("Ga", "approximate-fcc", 1),
])
def test_reference_structure_choice(symbol, kind, atoms):
    from materialabs.dft.gpaw_worker import DIATOMIC_BOND_A, reference_atoms

    structure, got_kind = reference_atoms(symbol, box_A=8.0)
    assert got_kind == kind and len(structure) == atoms
    if kind == "dimer":
        assert structure.get_distance(0, 1) == pytest.approx(DIATOMIC_BOND_A[symbol])
