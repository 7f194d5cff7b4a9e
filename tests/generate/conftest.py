"""Fixtures for the generator tests (no dataset needed)."""

from __future__ import annotations

import pytest
from gen_parents import perovskite, rutile, spinel

from materialabs.crystals import Crystal


@pytest.fixture
def srtio3() -> Crystal:
    return perovskite()


@pytest.fixture
def parents() -> list[tuple[str, Crystal]]:
    return [("SrTiO3", perovskite()), ("TiO2-rutile", rutile()), ("MgAl2O4", spinel())]
