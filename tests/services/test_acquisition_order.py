"""The acquisition service decides the same whatever order its topics interleave in."""

from __future__ import annotations

import itertools

import numpy as np
from acquisition_round import CAMPAIGN, round_events

from materialabs.crystals import Crystal
from materialabs.runtime import Context, dispatch
from services.acquisition.handlers import HANDLERS, AcquisitionPorts


class FlatHull:
    def hull_energy_per_atom(self, formula: str) -> float:
        return -1.0


def _events():
    crystals = [Crystal.from_arrays(np.eye(3) * (4 + i / 10), [a, b], [[0, 0, 0], [.5, .5, .5]])
                for i, (a, b) in enumerate(itertools.product(["Na", "K"], ["Cl", "Br"]))]
    return round_events(crystals)


def _requests(order):
    ctx = Context(service="acquisition", state={}, ports=AcquisitionPorts(hull=FlatHull()))
    out = []
    for event in order:
        out += [e for e in dispatch(HANDLERS, event, ctx) if e.type == "DftRequested"]
    return sorted(e.candidate_id for e in out)


def test_predictions_before_the_campaign_start_are_kept():
    start, predicted, finished = _events()
    in_order = _requests([start, *predicted, finished])
    assert len(in_order) == CAMPAIGN.batch_size
    assert _requests([*predicted, finished, start]) == in_order
    assert _requests([finished, *reversed(predicted), start]) == in_order
