"""Known crystals from the shared MP set (SOURCES.md §1) with their MP labels."""

from __future__ import annotations

import pytest

from materialabs.crystals import Crystal


def _mp_row(material_id: str):
    from materialabs.datasets import load_mp_formation

    frame = load_mp_formation()
    return frame[frame["material_id"] == material_id].iloc[0]


@pytest.fixture(scope="session")
def nacl() -> tuple[Crystal, float]:
    """Rocksalt NaCl (mp-22862, Fm-3m, 2 sites) and MP's formation energy (eV/atom)."""
    row = _mp_row("mp-22862")
    return row["crystal"], float(row["formation_energy_per_atom"])


@pytest.fixture(scope="session")
def mgo() -> tuple[Crystal, float]:
    """Rocksalt MgO (mp-1265, Fm-3m, 2 sites) and MP's formation energy (eV/atom)."""
    row = _mp_row("mp-1265")
    return row["crystal"], float(row["formation_energy_per_atom"])
