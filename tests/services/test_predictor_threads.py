"""The predictor scores with its configured torch threads and gives the old count back."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from materialabs import config
from materialabs.crystals import Crystal
from materialabs.events import EventRecord, new_event
from materialabs.runtime import Context, dispatch
from services.predictor.handlers import HANDLERS, PredictorPorts, score_batch

ROCKSALT = Crystal.from_arrays(np.eye(3) * 4.2, ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])


class RecordingEnsemble:
    def __init__(self) -> None:
        self.threads_seen: list[int] = []

    def predict(self, crystals, batch_size=512):
        self.threads_seen.append(torch.get_num_threads())
        n = len(crystals)
        return SimpleNamespace(targets=("formation_energy_per_atom",),
                               mean=np.full((n, 1), -1.5), std=np.full((n, 1), 0.1))

    def units(self):
        return {"formation_energy_per_atom": "eV/atom"}


class OneModel:
    def __init__(self, ensemble) -> None:
        self.ensemble = ensemble

    def latest(self) -> str:
        return "cid-1"

    def load(self, cid: str):
        return self.ensemble


def candidate(index: int):
    return new_event("CandidateGenerated", {
        "candidate_id": f"c{index}", "crystal": ROCKSALT.as_record(), "method": "saps",
        "parent_ids": [], "params_json": "{}", "seed": 0, "round": 0, "model_cid": None},
        producer="test", campaign_id="camp")


@pytest.mark.parametrize("threads", [1, 2])
def test_inference_runs_with_the_configured_threads_and_restores_them(threads):
    ensemble = RecordingEnsemble()
    ctx = Context(service="predictor", state={},
                  ports=PredictorPorts(models=OneModel(ensemble), inference_threads=threads))
    before = torch.get_num_threads()
    events = [EventRecord.from_event(candidate(i)) for i in range(3)]
    score_batch(events, ctx)
    outputs = [out for event in events for out in dispatch(HANDLERS, event, ctx)]
    assert ensemble.threads_seen == [threads]  # one call for the batch
    assert torch.get_num_threads() == before
    assert [o.predictions[0].mean for o in outputs] == [-1.5] * 3


def test_thread_setting_is_read_from_the_environment(monkeypatch):
    monkeypatch.setenv("MATERIALABS_PREDICTOR_THREADS", "3")
    assert config.predictor_threads() == 3
    monkeypatch.delenv("MATERIALABS_PREDICTOR_THREADS")
    assert config.predictor_threads() == 1
    monkeypatch.setenv("MATERIALABS_PREDICTOR_THREADS", "zero")
    with pytest.raises(ValueError, match="MATERIALABS_PREDICTOR_THREADS='zero'"):
        config.predictor_threads()
