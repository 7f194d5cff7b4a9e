"""The acquisition service decides the same whatever order its topics interleave in."""

from __future__ import annotations

import itertools

import numpy as np

from materialabs.campaign import Campaign, Target
from materialabs.crystals import Crystal
from materialabs.events import new_event
from materialabs.runtime import Context
from services.acquisition.handlers import handle

CAMPAIGN = Campaign(name="t", elements=("Na", "K", "Cl", "Br"),
                    targets=(Target("formation_energy_per_atom", "minimize"),),
                    dft_budget=4, rounds=2, seed=1)


class FlatHull:
    def hull_energy_per_atom(self, formula: str) -> float:
        return -1.0


def _events():
    start = new_event("CampaignStarted", CAMPAIGN.to_event_fields(), producer="t",
                      campaign_id="c")
    crystals = [Crystal.from_arrays(np.eye(3) * (4 + i / 10), [a, b], [[0, 0, 0], [.5, .5, .5]])
                for i, (a, b) in enumerate(itertools.product(["Na", "K"], ["Cl", "Br"]))]
    predicted = [new_event("CandidatePredicted", {
        "candidate_id": c.content_key(), "crystal": c.as_record(), "round": 0,
        "model_cid": "m", "predictions": [
            {"target": "formation_energy_per_atom", "mean": -1.0 - i / 10, "sigma": 0.05,
             "unit": "eV/atom"}]}, producer="t", campaign_id="c")
        for i, c in enumerate(crystals)]
    finished = new_event("GenerationFinished", {"round": 0, "count": len(crystals),
                                                "counts": {}, "wall_time_s": 0.0},
                         producer="t", campaign_id="c")
    return start, predicted, finished


def _requests(order):
    ctx = Context(service="acquisition", state={}, ports={"hull": FlatHull()})
    out = []
    for event in order:
        out += [e for e in handle(event, ctx) if e.type == "DftRequested"]
    return sorted(e["candidate_id"] for e in out)


def test_predictions_before_the_campaign_start_are_kept():
    start, predicted, finished = _events()
    in_order = _requests([start, *predicted, finished])
    assert len(in_order) == CAMPAIGN.batch_size
    assert _requests([*predicted, finished, start]) == in_order
    assert _requests([finished, *reversed(predicted), start]) == in_order
