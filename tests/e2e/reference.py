"""The small campaign of the end-to-end tests and its embedded run, the reference every
distributed run of the same file and seed must agree with."""

from __future__ import annotations

from pathlib import Path

import pytest

from materialabs.campaign import load_campaign
from materialabs.loop import run_campaign

CAMPAIGN = Path(__file__).with_name("small.toml")


def run_embedded(home: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("MATERIALABS_HOME", str(home))
    monkeypatch.delenv("MATERIALABS_KAFKA", raising=False)
    monkeypatch.delenv("MATERIALABS_IPFS", raising=False)
    monkeypatch.delenv("MATERIALABS_STORE", raising=False)
    return run_campaign(load_campaign(CAMPAIGN), home=home, progress=False, timeout_s=900)
