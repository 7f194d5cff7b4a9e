"""Small synthetic crystals for the ML tests (no dataset needed)."""

from __future__ import annotations

import numpy as np
import pytest

from materialabs.crystals import Crystal

_SPECIES = ["Na", "Cl", "Mg", "O", "Fe", "Si", "Li", "F"]


def random_crystal(rng: np.random.Generator, n_atoms: int) -> Crystal:
    lattice = np.diag(rng.uniform(3.5, 6.0, 3)) + rng.normal(0, 0.4, (3, 3))
    species = [str(s) for s in rng.choice(_SPECIES, n_atoms)]
    return Crystal.from_arrays(lattice, species, rng.random((n_atoms, 3)))


@pytest.fixture
def tiny_dataset() -> tuple[list[Crystal], np.ndarray]:
    """Eight crystals with made-up (formation energy eV/atom, band gap eV) labels."""
    rng = np.random.default_rng(11)
    crystals = [random_crystal(rng, int(n)) for n in rng.integers(1, 6, 8)]
    targets = np.column_stack([rng.uniform(-3, 0.5, 8), rng.uniform(0, 4, 8)])
    return crystals, targets
