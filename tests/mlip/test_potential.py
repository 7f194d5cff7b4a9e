"""The potential interface: relaxation restores a distorted crystal, names are checked."""

from __future__ import annotations

import numpy as np
import pytest

from materialabs.crystals import Crystal
from materialabs.mlip import KNOWN_POTENTIALS, Potential, load_potential


def distorted(crystal: Crystal, strain: float = 0.03, rattle_A: float = 0.02,
              seed: int = 0) -> Crystal:
    """The cell stretched by ``strain`` along a, and every atom moved by up to ``rattle_A``."""
    rng = np.random.default_rng(seed)
    lattice = crystal.lattice_array @ np.diag([1 + strain, 1 - strain / 2, 1 + strain / 3])
    cart = crystal.frac_array @ lattice + rng.uniform(-rattle_A, rattle_A,
                                                       (crystal.num_sites, 3))
    return Crystal.from_arrays(lattice, crystal.species, cart @ np.linalg.inv(lattice))


def test_relaxation_lowers_the_energy_and_restores_rocksalt(nacl):
    crystal, _ = nacl
    bent = distorted(crystal)
    assert bent.spacegroup_number(symprec=0.01) != 225  # the distortion broke the symmetry
    potential = load_potential("chgnet")
    relaxed = potential.relax(bent, fmax=0.02, max_steps=150)
    assert relaxed.converged, relaxed
    assert relaxed.energy_eV < relaxed.initial_energy_eV
    assert relaxed.energy_eV < potential.energy(bent)
    assert relaxed.crystal.spacegroup_number(symprec=0.1) == 225
    assert relaxed.crystal.species == crystal.species
    assert relaxed.energy_per_atom_eV == pytest.approx(relaxed.energy_eV / 2)
    # MP's own NaCl is already near the potential's minimum: the relaxed cell is close to it.
    assert relaxed.crystal.volume_angstrom3 == pytest.approx(crystal.volume_angstrom3,
                                                              rel=0.06)


def test_relaxation_stops_at_its_step_bound_and_its_time_limit(nacl):
    bent = distorted(nacl[0], strain=0.08)
    potential = load_potential("chgnet")
    bounded = potential.relax(bent, max_steps=2)
    assert bounded.steps <= 2 and not bounded.converged
    stopped = potential.relax(bent, max_steps=500, timeout_s=1e-9)
    assert stopped.timed_out and not stopped.converged and stopped.steps <= 1


def test_engines_follow_the_interface_and_give_an_ase_calculator(nacl):
    from ase.calculators.calculator import Calculator

    potential = load_potential("chgnet")
    assert isinstance(potential, Potential) and potential.name == "chgnet"
    assert isinstance(potential.calculator(), Calculator)
    assert load_potential("chgnet") is potential  # loaded once per process


def test_unknown_potential_names_the_known_ones():
    with pytest.raises(ValueError) as error:
        load_potential("mace-mp-0")
    assert "'mace-mp-0'" in str(error.value)
    assert all(name in str(error.value) for name in KNOWN_POTENTIALS)


def test_sevennet_checkpoints_ship_in_the_wheel():
    from materialabs.mlip.sevennet import CHECKPOINTS, checkpoint_path

    assert set(CHECKPOINTS) == {"sevennet-0", "sevennet-l3i5"}
    assert all(checkpoint_path(name).stat().st_size > 1_000_000 for name in CHECKPOINTS)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["sevennet-0", "sevennet-l3i5"])
def test_sevennet_relaxes_offline(nacl, name):
    relaxed = load_potential(name).relax(distorted(nacl[0]), max_steps=150)
    assert relaxed.energy_eV < relaxed.initial_energy_eV
    assert relaxed.crystal.spacegroup_number(symprec=0.1) == 225
