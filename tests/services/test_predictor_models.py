"""The predictor loads a model only when the ledger records it and its bytes match the CID."""

from __future__ import annotations

import numpy as np
import pytest

from ledger.view import LedgerView
from materialabs import ports
from materialabs.crystals import Crystal
from materialabs.events import new_event
from materialabs.models import ModelRefused, ModelRegistry
from materialabs.platform import default_model_path, ensure_platform, publish_default_model
from materialabs.runtime import Context, dispatch
from services.predictor.handlers import HANDLERS, PredictorPorts

ROCKSALT = Crystal.from_arrays(np.eye(3) * 4.2, ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("MATERIALABS_HOME", str(tmp_path))
    for name in ("MATERIALABS_STORE", "MATERIALABS_IPFS", "MATERIALABS_KAFKA"):
        monkeypatch.delenv(name, raising=False)
    ports.store.cache_clear()
    yield tmp_path
    ports.store.cache_clear()


def _registry(home):
    return ModelRegistry(ports.store(), LedgerView(home / "ledger"))


def test_ledgered_model_loads_and_unledgered_one_is_refused(home):
    platform = ensure_platform(home)
    cid = publish_default_model(platform)
    registry = _registry(home)
    assert registry.latest() == cid
    assert registry.load(cid).targets
    blob = default_model_path().read_bytes()
    unrecorded = ports.store().put_bytes(blob + b"\0" * 512)  # other bytes, never ledgered
    with pytest.raises(ModelRefused, match="no model entry in the ledger"):
        registry.load(unrecorded)
    assert unrecorded in registry.refused


def test_predictor_refuses_an_unledgered_model_and_keeps_the_current_one(home):
    platform = ensure_platform(home)
    current = publish_default_model(platform)
    rogue = ports.store().put_bytes(default_model_path().read_bytes() + b"rogue")
    ctx = Context(service="predictor", state={}, ports=PredictorPorts(models=_registry(home)))
    event = new_event("CandidateGenerated", {
        "candidate_id": ROCKSALT.content_key(), "crystal": ROCKSALT.as_record(),
        "method": "saps", "parent_ids": [], "params_json": "{}", "seed": 0, "round": 0,
        "model_cid": rogue}, producer="test", campaign_id="c1")
    [predicted] = list(dispatch(HANDLERS, event, ctx))
    assert predicted.model_cid == current
    assert {p.target for p in predicted.predictions} >= {"formation_energy_per_atom"}
    assert rogue in ctx.ports.models.refused
