"""The embedded reference run, run once a session and shared by the end-to-end modules."""

from __future__ import annotations

import pytest

from tests.e2e.reference import run_embedded


@pytest.fixture(scope="session")
def embedded(tmp_path_factory: pytest.TempPathFactory):
    """(home, outcome) of the small campaign on the embedded runtime."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        home = tmp_path_factory.mktemp("embedded-home")
        return home, run_embedded(home, monkeypatch)
